"""The bench's second half: a real server subprocess, and the checks made against it."""

from __future__ import annotations

from typing import Any

import redis

from sanic_trace.pool import pool_config
from sanic_trace.settings import Settings
from trace_tools.bench.checkout import code_version
from trace_tools.bench.http_checks import (
    JobSubmitter,
    first_records,
    health_idle,
    health_under_load,
    stream_read_rate,
)
from trace_tools.bench.plan import PLAIN_PROFILE, Plan
from trace_tools.bench.report import Reporter
from trace_tools.bench.server import ServerProcess
from trace_tools.bench.space import bench_environment, delete_matching


def run_http_phase(
    plan: Plan, settings: Settings, client: redis.Redis, ids: list[str], reporter: Reporter
) -> dict[str, Any]:
    domains = plan.domain_sets[0]
    profile = PLAIN_PROFILE
    # The server runs the jobs with its own supervisor; the bench only submits them.
    env = bench_environment(plan.warehouse, plan.redis_url, plan.prefix, "server")
    env["TRACE_LOG_LEVEL"] = "WARNING"  # an INFO line per job event would be bench noise on a 2-core box
    jobs = JobSubmitter(settings, pool_config(settings), client)
    out: dict[str, Any] = {"server": "sanic-trace serve --single-process"}
    # The server imports the code on disk when it starts, which in a shared checkout may differ from the start's.
    out["code_at_server_start"] = code_version()
    with ServerProcess(env, plan.work_dir / f"server-{plan.prefix}.log") as server:
        try:
            reporter.note(f"server up at {server.url} (pid {server.pid})")
            out["first_records"] = first_records(
                server.url, jobs, profile, ids, domains, plan.first_records_runs, plan.timeout_s
            )
            reporter.first_records_done(out["first_records"])
            finished = out["first_records"]["finished_job"]
            if finished:
                out["stream_read"] = stream_read_rate(server.url, client, plan.prefix, finished, plan.read_repeats)
                reporter.stream_read_done(out["stream_read"])
                delete_matching(client, f"{plan.prefix}:job:{{{finished}}}*")
            health: dict[str, Any] = {
                "idle": health_idle(server.url, plan.health_idle_samples, plan.health_interval, 60.0)
            }
            # Browsers ask for gzip (the target is judged on that); identity shows what compression costs.
            for encoding in ("gzip", "identity"):
                health[encoding] = health_under_load(
                    server.url,
                    jobs,
                    profile,
                    ids,
                    domains,
                    encoding=encoding,
                    n_jobs=plan.health_jobs,
                    n_clients=plan.health_clients,
                    max_samples=plan.health_samples,
                    interval_s=plan.health_interval,
                    max_seconds=plan.health_max_seconds,
                )
                reporter.health_done(health["idle"], health[encoding])
            out["health"] = health
        finally:
            jobs.cancel_active()
    return out
