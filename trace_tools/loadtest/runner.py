"""Running the load: discovery, N virtual users, the monitors, and the deadlines that end it all.

Time limits, from the moment the users start:
- `duration`: after it no user starts a new request (a 202 already received is still
  followed to the end of its stream — it is part of a request already made);
- `duration + grace`: the final deadline. Users still running are cancelled, which cuts
  their in-flight streams (counted as aborted, not as errors), and the jobs whose streams
  were cut are cancelled with DELETE so they do not outlive the run.
Each user also stops after --max-requests requests. Ctrl-C acts as the final deadline now.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from trace_tools import tools_version
from trace_tools.loadtest import discovery, report, rss
from trace_tools.loadtest.calls import Budget, Caller, RequestFailed, StopUser
from trace_tools.loadtest.health import HealthTimeline, poll_health
from trace_tools.loadtest.progress import show_progress
from trace_tools.loadtest.scenarios import SCENARIOS, ScenarioSettings, Session, picker
from trace_tools.loadtest.stats import Stats
from trace_tools.loadtest.target import Target

# A failed session without a Retry-After waits this long before the next one: a dead server
# must not turn the harness into a busy loop of connection errors.
FAILURE_PAUSE_SECONDS = 0.2
CANCEL_TIMEOUT_SECONDS = 5.0


@dataclass
class RunConfig:
    target: Target
    users: int
    duration: float
    scenario: str
    mix: dict[str, float]
    max_requests: int
    grace: float
    ramp_up: float
    think_time: float
    max_backoff: float
    timeout: float
    gzip: bool
    seed: int
    msd_range: tuple[str, str] | None
    msd_max_days: int
    large_ids: int
    server_pid: int | None
    sample_interval: float
    health_interval: float
    progress: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "users": self.users,
            "duration_s": self.duration,
            "scenario": self.scenario,
            "mix": self.mix if self.scenario == "mixed" else None,
            "max_requests_per_user": self.max_requests,
            "grace_s": self.grace,
            "ramp_up_s": self.ramp_up,
            "think_time_s": self.think_time,
            "max_backoff_s": self.max_backoff,
            "read_timeout_s": self.timeout,
            "gzip": self.gzip,
            "seed": self.seed,
            "msd_range": list(self.msd_range) if self.msd_range else None,
            "msd_max_days": self.msd_max_days,
            "large_ids": self.large_ids,
            "rss_interval_s": self.sample_interval,
            "health_interval_s": self.health_interval,
        }


def make_client(config: RunConfig, max_connections: int) -> httpx.AsyncClient:
    headers = {
        "User-Agent": f"sanic-trace-loadtest/{tools_version()}",
        # A browser asks for gzip; the server compresses job streams and results when asked.
        "Accept-Encoding": "gzip" if config.gzip else "identity",
    }
    if config.target.host_header:
        headers["Host"] = config.target.host_header
    return httpx.AsyncClient(
        base_url=config.target.connect_url,
        headers=headers,
        timeout=httpx.Timeout(config.timeout, connect=10.0),
        limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
        follow_redirects=False,
        trust_env=False,  # a proxy from the environment would send loopback traffic elsewhere
    )


class _OpenJobs:
    """Jobs whose streams are being read: the ones left when the run is cut get cancelled."""

    def __init__(self) -> None:
        self.ids: set[str] = set()

    def update(self, job_id: str, is_open: bool) -> None:
        if is_open:
            self.ids.add(job_id)
        else:
            self.ids.discard(job_id)


async def _user(
    index: int,
    config: RunConfig,
    pool: discovery.SeedPool,
    stats: Stats,
    run_id: str,
    start_at: float,
    stop_at: float,
    open_jobs: _OpenJobs,
) -> None:
    rng = random.Random(f"{config.seed}-{index}")
    choose = picker(config.scenario, config.mix)
    settings = ScenarioSettings(msd_max_days=config.msd_max_days, large_ids=config.large_ids)
    budget = Budget(config.max_requests, stop_at)
    await asyncio.sleep(max(0.0, start_at - time.monotonic()))
    async with make_client(config, max_connections=2) as client:
        caller = Caller(client, stats, budget, f"lt{run_id}-u{index}", open_jobs.update)
        session = Session(caller, rng, pool, settings)
        while True:
            if budget.requests_left <= 0:
                stats.notes["users stopped by --max-requests"] += 1
                return
            if time.monotonic() >= stop_at:
                return
            name = choose(rng)
            pause = 0.0
            try:
                outcome = await SCENARIOS[name](session)
            except StopUser:
                stats.session(name, "cut at the end of the run")
                continue  # the loop's checks end the user
            except RequestFailed as failed:
                stats.session(name, "failed")
                pause = min(failed.retry_after or FAILURE_PAUSE_SECONDS, config.max_backoff)
            except asyncio.CancelledError:
                stats.session(name, "aborted at the final deadline")
                raise
            except Exception as exc:  # noqa: BLE001 - a harness bug must show in the report, not kill the user
                stats.error("harness", "HARNESS_ERROR", f"{name}: {type(exc).__name__}: {exc}")
                stats.session(name, "failed")
                pause = FAILURE_PAUSE_SECONDS
            else:
                stats.session(name, outcome)
            if config.think_time > 0:
                pause += rng.uniform(0, config.think_time)
            if pause > 0:
                await asyncio.sleep(max(0.0, min(pause, stop_at - time.monotonic())))


async def _cancel_jobs(config: RunConfig, job_ids: set[str]) -> int:
    if not job_ids:
        return 0
    cancelled = 0
    async with make_client(config, max_connections=4) as client:
        async def cancel(job_id: str) -> bool:
            try:
                response = await client.delete(f"/api/trace/job/{job_id}", timeout=CANCEL_TIMEOUT_SECONDS)
                return response.status_code == 200 and bool(response.json().get("cancelled"))
            except (httpx.HTTPError, ValueError, AttributeError):
                return False

        results = await asyncio.gather(*(cancel(j) for j in sorted(job_ids)))
        cancelled = sum(results)
    return cancelled


def _memory_line(timeline: rss.RssTimeline | None) -> str:
    if timeline is None or not timeline.samples:
        return ""
    _, server, jobs, count = timeline.samples[-1]
    return f"server {server:.0f} MB  jobs {count} / {jobs:.0f} MB"


async def run_load(config: RunConfig) -> dict[str, Any]:
    """Discover, load, measure; return the report (raises discovery.DiscoveryFailed)."""
    started_at = datetime.now(UTC)
    async with make_client(config, max_connections=2) as client:
        pool = await discovery.discover(
            client,
            msd_range=config.msd_range,
            need_large_pool=config.scenario == "large" or (config.scenario == "mixed" and "large" in config.mix),
            rng=random.Random(config.seed),
        )

    timeline: rss.RssTimeline | None = None
    sampler: rss.TreeSampler | None = None
    if config.server_pid is not None:
        timeline = rss.RssTimeline(config.sample_interval, config.server_pid, "--server-pid")
    elif config.target.loopback:
        pid, found_by = rss.find_server_pid(config.target.port)
        timeline = rss.RssTimeline(config.sample_interval, pid, found_by)
    else:
        timeline = rss.RssTimeline(config.sample_interval, None, "remote target: psutil sees only this host")
    if timeline.root_pid is not None:
        try:
            sampler = rss.TreeSampler(timeline.root_pid)
        except Exception as exc:  # noqa: BLE001 - psutil.Error and friends: memory is then just not sampled
            timeline = rss.RssTimeline(config.sample_interval, None, f"pid {timeline.root_pid}: {exc}")

    stats = Stats()
    health = HealthTimeline(config.health_interval)
    stop_monitors = asyncio.Event()
    interrupted = asyncio.Event()
    open_jobs = _OpenJobs()
    run_id = uuid.uuid4().hex[:6]
    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
        loop.add_signal_handler(signal.SIGINT, interrupted.set)

    monitor_client = make_client(config, max_connections=1)
    monitors = [asyncio.create_task(poll_health(monitor_client, health, stats.started, stop_monitors))]
    if sampler is not None:
        monitors.append(asyncio.create_task(_sample_with_hints(timeline, sampler, health, stats, stop_monitors)))
    if config.progress:
        monitors.append(asyncio.create_task(
            show_progress(stats, config.duration, stop_monitors, lambda: _memory_line(timeline))
        ))

    stop_at = stats.started + config.duration
    final_deadline = stop_at + config.grace
    users = [
        asyncio.create_task(
            _user(i, config, pool, stats, run_id, stats.started + config.ramp_up * i / config.users, stop_at, open_jobs)
        )
        for i in range(config.users)
    ]
    stopped_by = "duration"
    try:
        waiter = asyncio.create_task(interrupted.wait())
        pending: set[asyncio.Task[Any]] = set(users)
        while pending:
            remaining = final_deadline - time.monotonic()
            if remaining <= 0:
                stopped_by = "final deadline"
                break
            done, pending = await asyncio.wait(pending | {waiter}, timeout=remaining,
                                               return_when=asyncio.FIRST_COMPLETED)
            if waiter in done:
                stopped_by = "interrupt"
                break
            pending.discard(waiter)
        for task in pending:
            task.cancel()
        await asyncio.gather(*users, return_exceptions=True)
        waiter.cancel()
    finally:
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.remove_signal_handler(signal.SIGINT)
        stats.ended = time.monotonic()
        stop_monitors.set()
        await asyncio.gather(*monitors, return_exceptions=True)
        await monitor_client.aclose()
    cancelled = await _cancel_jobs(config, set(open_jobs.ids))
    return report.build_report(
        config=config,
        pool=pool,
        stats=stats,
        rss_timeline=timeline,
        health=health,
        started_at=started_at,
        stopped_by=stopped_by,
        jobs_cancelled=cancelled,
    )


async def _sample_with_hints(
    timeline: rss.RssTimeline, sampler: rss.TreeSampler, health: HealthTimeline, stats: Stats, stop: asyncio.Event
) -> None:
    """psutil sampling, told by the /health poller which pids are the supervisor and the jobs."""

    async def share_hints() -> None:
        while not stop.is_set():
            sampler.supervisor_pids = set(health.supervisor_pids)
            sampler.job_pids_from_health = set(health.job_pids)
            sampler.worker_pids = set(health.worker_pids)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeline.interval)

    hints = asyncio.create_task(share_hints())
    try:
        await rss.sample_rss(timeline, sampler, stats.started, stop)
    finally:
        hints.cancel()
        await asyncio.gather(hints, return_exceptions=True)
