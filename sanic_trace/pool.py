"""The service's side of the job pool: its PoolConfig, and starting/stopping the supervisor.

The supervisor is one process per host, started and stopped with the service by Sanic's
worker manager. Where no manager runs (`--single-process`, the ASGI test client) it runs as
a thread of the one process instead.
"""

from __future__ import annotations

import asyncio
import logging
import os

from sanic import Sanic

from jobs import PoolConfig, start_supervisor_thread
from jobs.supervisor import run_supervisor
from sanic_trace.settings import Settings

log = logging.getLogger("sanic_trace.pool")

TRACE_EVENTS_KIND = "trace-events"
JOB_KINDS = {TRACE_EVENTS_KIND: "sanic_trace.trace.job:run_events"}


def pool_config(settings: Settings) -> PoolConfig:
    """The pool this service runs, from its settings (load_settings validates it at start-up)."""
    return PoolConfig(
        redis_url=settings.redis_url,
        prefix=settings.redis_prefix,
        job_kinds=JOB_KINDS,
        worker_count=settings.worker_count,
        queue_max=settings.job_queue_max,
        job_ttl_seconds=settings.job_ttl_seconds,
        job_timeout_seconds=settings.job_timeout_seconds,
        max_rss_mb=settings.job_max_rss_mb,
        min_available_mb=settings.min_available_mb,
        shutdown_grace_seconds=settings.job_shutdown_grace_seconds,
        heartbeat_seconds=settings.supervisor_heartbeat_seconds,
        host_id=settings.effective_host_id,
        # The job child runs with this host's settings (sanic_trace.trace.job).
        job_config=settings,
    )


def embed_supervisor(app: Sanic, settings: Settings) -> None:
    """Start the supervisor with the service and stop it with the service."""
    config = pool_config(settings)

    @app.main_process_ready
    async def start_managed_supervisor(app: Sanic) -> None:
        # Sanic starts managed processes with spawn: only the (pickleable) config crosses over.
        app.manager.manage("TraceJobSupervisor", run_supervisor, {"config": config})
        log.info("job_supervisor_managed host=%s workers=%d", config.host_id, config.worker_count)

    @app.before_server_start
    async def start_thread_supervisor(app: Sanic) -> None:
        # A managed HTTP worker has SANIC_WORKER_NAME; without it no worker manager runs,
        # so main_process_ready never fired and this one process hosts the supervisor.
        if os.environ.get("SANIC_WORKER_NAME"):
            return
        app.ctx.supervisor_thread = start_supervisor_thread(config)
        log.info("job_supervisor_thread host=%s workers=%d", config.host_id, config.worker_count)

    @app.after_server_stop
    async def stop_thread_supervisor(app: Sanic) -> None:
        supervisor = getattr(app.ctx, "supervisor_thread", None)
        if supervisor is None:
            return
        supervisor.stop()
        await asyncio.to_thread(supervisor.join, config.shutdown_grace_seconds + 5)
