"""The checks made against the real server: first live records, stream read rate, /health under load.

Jobs are submitted with JobClient.submit exactly as the API does (only the HTTP round trip of the
POST is skipped, so the clock starts at the submit itself); the server's own supervisor runs
them. Every loop here is bounded in count and in time.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import httpx
import redis

from jobs import ACTIVE, JobClient, PoolConfig, Status
from sanic_trace.pool import TRACE_EVENTS_KIND
from sanic_trace.settings import Settings
from sanic_trace.trace.events import EventsRequest
from trace_tools.bench.load_clients import stream_clients
from trace_tools.bench.streams import chunk_keys, drain_stream, get_loop, read_stream
from trace_tools.percentiles import percentile

MB = 2**20
HTTP_TIMEOUT = httpx.Timeout(30.0, read=300.0)


def _epoch(iso: str | None) -> float | None:
    return None if iso is None else datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def _wait_ended(client: redis.Redis, prefix: str, job_id: str, timeout_s: float) -> dict[str, Any] | None:
    deadline = time.monotonic() + timeout_s
    jobs = JobClient(client, prefix)
    status = jobs.status(job_id)
    while status is not None and status["status"] in ACTIVE and time.monotonic() < deadline:
        time.sleep(0.05)
        status = jobs.status(job_id)
    return status


class JobSubmitter:
    """Submits trace-events jobs to the server's pool and remembers them, to cancel what still runs."""

    def __init__(self, settings: Settings, config: PoolConfig, client: redis.Redis) -> None:
        self.settings = settings
        self.config = config
        self.client = client
        self.jobs = JobClient(client, config)
        self.job_ids: list[str] = []

    def submit(self, profile: str, ids: list[str], domains: list[str]) -> str:
        payload = EventsRequest(profile, ids, domains).to_payload()
        job_id = self.jobs.submit(TRACE_EVENTS_KIND, payload)
        self.job_ids.append(job_id)
        return job_id

    def status(self, job_id: str) -> dict[str, Any] | None:
        return self.jobs.status(job_id)

    def cancel_active(self) -> None:
        for job_id in self.job_ids:
            try:
                status = self.status(job_id)
                if status is not None and status["status"] in ACTIVE:
                    self.jobs.cancel(job_id)
            except redis.RedisError:
                pass


def first_records(
    server_url: str, jobs: JobSubmitter, profile: str, ids: list[str], domains: list[str], runs: int, timeout_s: float
) -> dict[str, Any]:
    """Job start → first records line on a live stream opened right after the submit.

    The first run is followed to its end and checked (records lines add up to the complete
    line and to the job's result); it is the finished job the stream read rate is measured
    on. Later runs are cancelled once their first records arrived.
    """
    measured: list[dict[str, Any]] = []
    finished_job: str | None = None
    with httpx.Client(base_url=server_url, timeout=HTTP_TIMEOUT) as http:
        for run in range(runs):
            submitted = time.time()
            job_id = jobs.submit(profile, ids, domains)
            path = f"/api/trace/job/{job_id}/stream"
            read = read_stream(http, path, stop_after_first_records=run > 0)
            if run > 0:
                http.delete(f"/api/trace/job/{job_id}")
            status = _wait_ended(jobs.client, jobs.config.prefix, job_id, timeout_s) or {}
            started = _epoch(status.get("started_at"))
            entry: dict[str, Any] = {
                "job_id": job_id,
                "status": status.get("status"),
                "start_after_submit_s": None if started is None else started - submitted,
                "first_records_after_start_s": (
                    None if started is None or read.first_records_at is None else read.first_records_at - started
                ),
                "first_records_after_submit_s": (
                    None if read.first_records_at is None else read.first_records_at - submitted
                ),
            }
            if run == 0:
                result_total = (status.get("result") or {}).get("total_records")
                entry.update(
                    streamed_records=read.records,
                    complete_total=read.complete_total,
                    job_total=result_total,
                    stream_error=read.error,
                    stream_mb=read.bytes / MB,
                    stream_s=read.seconds,
                    counts_agree=read.error is None and read.records == read.complete_total == result_total,
                )
                if status.get("status") == Status.FINISHED:
                    finished_job = job_id
            measured.append(entry)
    delays = [m["first_records_after_start_s"] for m in measured if m["first_records_after_start_s"] is not None]
    return {
        "cids": len(ids),
        "domains": domains,
        "runs": measured,
        "median_s": percentile(delays, 50),
        "max_s": max(delays) if delays else None,
        "finished_job": finished_job,
    }


def stream_read_rate(server_url: str, client: redis.Redis, prefix: str, job_id: str, repeats: int) -> dict[str, Any]:
    """The finished job read whole through the stream endpoint, against a bare GET loop over its chunks.

    Alternated, best of `repeats` each (the machine is shared: the best run is the one least
    disturbed). The ratio compares the times for the same chunk bytes; the NDJSON and HTTP
    framing around them is a few dozen bytes a line.
    """
    keys = chunk_keys(client, prefix, job_id)
    http_runs: list[tuple[int, float]] = []
    get_runs: list[tuple[int, float]] = []
    url = urlsplit(server_url)
    host, port, path = url.hostname or "127.0.0.1", url.port or 80, f"/api/trace/job/{job_id}/stream"
    get_loop(client, keys)  # once untimed: both sides then read from a warm Redis and a warm process
    for _ in range(repeats):
        size, seconds, tail = drain_stream(host, port, path)
        if b'{"type":"complete"' not in tail:
            raise RuntimeError(f"the stream of job {job_id} did not end with a complete line: {tail[-300:]!r}")
        http_runs.append((size, seconds))
        get_runs.append(get_loop(client, keys))
    http_bytes, http_s = min(http_runs, key=lambda run: run[1])
    chunk_bytes, get_s = min(get_runs, key=lambda run: run[1])
    return {
        "job_id": job_id,
        "chunks": len(keys),
        "chunk_mb": chunk_bytes / MB,
        "stream_mb": http_bytes / MB,
        "repeats": repeats,
        "stream_s": [round(s, 4) for _, s in http_runs],
        "get_loop_s": [round(s, 4) for _, s in get_runs],
        "stream_mb_s": http_bytes / MB / http_s,
        "get_loop_mb_s": chunk_bytes / MB / get_s,
        "stream_over_get": get_s / http_s,
    }


def _probe_health(
    http: httpx.Client, max_samples: int, interval_s: float, keep_going: Callable[[], bool]
) -> tuple[list[float], int]:
    """GET /health every interval_s while keep_going(); latencies in ms, and the failures."""
    latencies: list[float] = []
    failures = 0
    next_at = time.perf_counter()
    while len(latencies) + failures < max_samples and keep_going():
        started = time.perf_counter()
        try:
            ok = http.get("/health").status_code == 200
        except httpx.HTTPError:
            ok = False
        elapsed_ms = (time.perf_counter() - started) * 1000
        if ok:
            latencies.append(elapsed_ms)
        else:
            failures += 1
        next_at += interval_s
        time.sleep(max(0.0, next_at - time.perf_counter()))
    return latencies, failures


def _latency_summary(latencies: list[float], failures: int) -> dict[str, Any]:
    return {
        "samples": len(latencies),
        "failures": failures,
        "p50_ms": percentile(latencies, 50),
        "p95_ms": percentile(latencies, 95),
        "p99_ms": percentile(latencies, 99),
        "max_ms": max(latencies) if latencies else None,
    }


def health_idle(server_url: str, samples: int, interval_s: float, max_seconds: float) -> dict[str, Any]:
    """/health latency with nothing else going on: what the loaded figures are compared with."""
    deadline = time.monotonic() + max_seconds
    with httpx.Client(base_url=server_url, timeout=10.0) as http:
        latencies, failures = _probe_health(http, samples, interval_s, lambda: time.monotonic() < deadline)
    return _latency_summary(latencies, failures)


def health_under_load(
    server_url: str,
    jobs: JobSubmitter,
    profile: str,
    ids: list[str],
    domains: list[str],
    *,
    encoding: str,
    n_jobs: int,
    n_clients: int,
    max_samples: int,
    interval_s: float,
    max_seconds: float,
) -> dict[str, Any]:
    """/health latency while n_jobs fresh jobs run and n_clients follow their live streams."""
    deadline = time.monotonic() + max_seconds
    with httpx.Client(base_url=server_url, timeout=10.0) as http:
        job_ids = [jobs.submit(profile, ids, domains) for _ in range(n_jobs)]

        def statuses() -> list[str]:
            return [(jobs.status(job_id) or {}).get("status", "missing") for job_id in job_ids]

        while time.monotonic() < deadline and any(s == Status.QUEUED for s in statuses()):
            time.sleep(0.02)
        paths = [f"/api/trace/job/{job_ids[i % n_jobs]}/stream" for i in range(n_clients)]
        ctx = multiprocessing.get_context("spawn")
        stop = ctx.Event()
        receiver, sender = ctx.Pipe(duplex=False)
        streamers = ctx.Process(
            target=stream_clients,
            args=(server_url, paths, encoding, stop, max(1.0, deadline - time.monotonic()), sender),
            name="bench-stream-clients",
            daemon=True,
        )
        streamers.start()
        sender.close()
        checked = {"at": 0.0, "running": True}

        def all_running() -> bool:
            # Redis is asked twice a second, not at every probe.
            if time.monotonic() - checked["at"] >= 0.5:
                checked["at"] = time.monotonic()
                checked["running"] = all(s == Status.STARTED for s in statuses())
            return checked["running"] and time.monotonic() < deadline

        load_before = os.getloadavg()
        try:
            time.sleep(min(1.0, interval_s * 10))  # let the clients connect before timing anything
            started = time.monotonic()
            loaded, failures = _probe_health(http, max_samples, interval_s, all_running)
            window_s = time.monotonic() - started
            ended_by = statuses()
        finally:
            stop.set()
            totals = receiver.recv() if receiver.poll(15) else {}
            streamers.join(10)
            if streamers.is_alive():
                streamers.kill()
                streamers.join(5)
            receiver.close()
            jobs.cancel_active()
    return {
        "jobs": n_jobs,
        "clients": n_clients,
        "client_encoding": encoding,
        "cids_per_job": len(ids),
        "domains": domains,
        "interval_s": interval_s,
        "under_load": _latency_summary(loaded, failures),
        "window_s": window_s,
        "job_states_at_end": ended_by,
        "stream_clients": totals,
        "load_avg_before": load_before,
        "load_avg_after": os.getloadavg(),
    }
