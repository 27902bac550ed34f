"""Ours: the real job path. A pool supervisor of the bench runs the `trace-events` job in its child.

The supervisor is the service's own (`jobs.Supervisor` on a thread of the bench, configured by
`sanic_trace.pool.pool_config(settings)`); the job is submitted exactly as the API submits it
(`JobClient.submit` with `EventsRequest.to_payload()`). The bench's own sampler follows the child the
supervisor spawns, at the same interval as the other variants; the supervisor's own peak
(status `peak_rss_mb`, sampled every 0.2 s) is kept beside it as a cross-check.
"""

from __future__ import annotations

import time
from typing import Any

import redis

from jobs import ACTIVE, JobClient, Status, start_supervisor_thread
from sanic_trace.pool import TRACE_EVENTS_KIND, pool_config
from sanic_trace.settings import Settings
from sanic_trace.trace.events import EventsRequest
from trace_tools.bench.sampler import RssSampler, RssTrace


class JobRunFailed(RuntimeError):
    """The job did not finish (failed, cancelled, or ran past the bench's time limit)."""


class PoolRunner:
    """Owns a supervisor thread and a Redis client; runs one job at a time, measured."""

    def __init__(self, settings: Settings, sample_interval: float) -> None:
        self.settings = settings
        self.config = pool_config(settings)
        self.sample_interval = sample_interval
        self.client = redis.Redis.from_url(settings.redis_url)
        self.jobs = JobClient(self.client, self.config)
        self.supervisor = start_supervisor_thread(self.config)

    def run(
        self, profile: str, ids: list[str], domains: list[str], timeout_s: float
    ) -> tuple[dict[str, Any], RssTrace]:
        return self.run_payload(EventsRequest(profile, ids, domains).to_payload(), timeout_s)

    def run_payload(self, payload: dict[str, Any], timeout_s: float) -> tuple[dict[str, Any], RssTrace]:
        """Submit one `trace-events` job with this payload (`EventsRequest.to_payload()`), measured."""
        sampler = RssSampler(self.sample_interval).start()
        job_id = None
        # [seconds since submit, phase]: the progress phases the status showed, and — from the job's
        # notifications, since progress is written at most 4 times a second — the end of its last domain
        # ("finish": what the job does after its records, e.g. the MSD index and aggregation).
        phases: list[list[Any]] = []
        status_phase = None
        last_domain = (payload.get("domains") or [None])[-1]
        try:
            started = time.perf_counter()
            job_id = self.jobs.submit(TRACE_EVENTS_KIND, payload)
            deadline = started + timeout_s
            with self.jobs.events(job_id) as events:
                pid = self._wait_for_child(job_id, deadline)
                if pid is not None:
                    sampler.attach(pid)
                status = self.jobs.status(job_id)
                while status is not None and status["status"] in ACTIVE:
                    phase = (status.get("progress") or {}).get("phase")
                    if phase and phase != status_phase and not (phases and phases[-1][1] == "finish"):
                        status_phase = phase
                        phases.append([time.perf_counter() - started, phase])
                    if time.perf_counter() > deadline:
                        raise JobRunFailed(f"job {job_id} ran past {timeout_s:g} s")
                    event = events.wait(0.5) or {}
                    if event.get("event") == "domain_end" and event.get("domain") == last_domain:
                        phases.append([time.perf_counter() - started, "finish"])
                    status = self.jobs.status(job_id)
            wall = time.perf_counter() - started
        finally:
            trace = sampler.stop()
            if job_id is not None:
                self._cancel_if_active(job_id)
        if status is None or status["status"] != Status.FINISHED:
            raise JobRunFailed(f"job {job_id} ended as {status and status['status']}: {status and status.get('error')}")
        result = status.get("result") or {}
        return {
            "job_id": job_id,
            "pid": pid,
            "domains": result.get("domains", {}),
            "total_records": result.get("total_records", 0),
            "wall_s": wall,
            "run_s": status.get("run_seconds"),
            "supervisor_peak_rss_mb": status.get("peak_rss_mb"),
            "phases": phases,
        }, trace

    def _wait_for_child(self, job_id: str, deadline: float) -> int | None:
        """The child's pid, from the supervisor's own table (it has it before Redis does)."""
        while time.perf_counter() < deadline:
            pid = self.supervisor.running_jobs.get(job_id)
            if pid is not None:
                return pid
            status = self.jobs.status(job_id)
            if status is not None and status["status"] not in ACTIVE:
                return None  # over before we saw it: the sampler has nothing to follow
            time.sleep(0.002)
        return None

    def _cancel_if_active(self, job_id: str) -> None:
        try:
            status = self.jobs.status(job_id)
            if status is not None and status["status"] in ACTIVE:
                self.jobs.cancel(job_id)
        except redis.RedisError:
            pass

    def close(self) -> None:
        """Stop the supervisor; running jobs were cancelled by run(), so this is quick."""
        self.supervisor.stop()
        self.supervisor.join(self.config.shutdown_grace_seconds + 5)
        self.client.close()
