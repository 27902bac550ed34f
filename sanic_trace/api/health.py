"""GET /health: can this process reach its database and Redis, and how big is it.

The dependency checks (DB ping in a thread, Redis ping, pool state) run in a background task
of each worker, once a second, and /health answers from the latest round — its age is in the
body. So a health check costs a busy event loop one response rather than several round trips
queued behind the streams it is serving, and frequent load-balancer probes never multiply DB
pings. A round older than STALE_SECONDS (the task is behind, or has not run yet) is redone
before answering.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import psutil
from sanic import Blueprint, Request, Sanic
from sanic.response import HTTPResponse, json

from sanic_trace import __version__
from sanic_trace.errors import utc_now_iso

bp = Blueprint("health")

_PROCESS = psutil.Process(os.getpid())
# A health check must answer fast even when a dependency hangs.
_CHECK_TIMEOUT_SECONDS = 2.0
PROBE_INTERVAL_SECONDS = 1.0
STALE_SECONDS = 3.0


async def _check_database(app: Sanic) -> dict:
    source = app.ctx.source
    started = time.perf_counter()
    try:
        await asyncio.wait_for(asyncio.to_thread(source.ping), _CHECK_TIMEOUT_SECONDS)
    except Exception as exc:  # noqa: BLE001 - any failure is reported, none is raised
        return {"ok": False, "kind": source.name, "error": f"{type(exc).__name__}: {exc}"}
    return {"ok": True, "kind": source.name, "latency_ms": round((time.perf_counter() - started) * 1000, 2)}


async def _check_redis(app: Sanic) -> dict:
    started = time.perf_counter()
    try:
        await asyncio.wait_for(app.ctx.redis.ping(), _CHECK_TIMEOUT_SECONDS)
    except Exception as exc:  # noqa: BLE001
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    return {"ok": True, "latency_ms": round((time.perf_counter() - started) * 1000, 2)}


async def _check_pool(app: Sanic) -> dict:
    try:
        return await asyncio.wait_for(app.ctx.jobs.pool_state(), _CHECK_TIMEOUT_SECONDS)
    except Exception as exc:  # noqa: BLE001
        return {"error": f"{type(exc).__name__}: {exc}"}


class HealthProbe:
    def __init__(self, app: Sanic) -> None:
        self.app = app
        self.checks: dict[str, Any] | None = None
        self.checked_at = 0.0
        self.checked_at_iso = ""
        self._lock = asyncio.Lock()
        self._task: asyncio.Task | None = None

    async def refresh(self) -> None:
        async with self._lock:
            database, redis_state, pool = await asyncio.gather(
                _check_database(self.app), _check_redis(self.app), _check_pool(self.app)
            )
            self.checks = {"database": database, "redis": redis_state, "pool": pool}
            self.checked_at = time.monotonic()
            self.checked_at_iso = utc_now_iso()

    async def current(self) -> tuple[dict[str, Any], float]:
        if self._task is None:
            self._task = asyncio.create_task(self._run())
        if self.checks is None or time.monotonic() - self.checked_at > STALE_SECONDS:
            await self.refresh()
        assert self.checks is not None
        return self.checks, time.monotonic() - self.checked_at

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(PROBE_INTERVAL_SECONDS)
            await self.refresh()

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None


def install(app: Sanic) -> None:
    app.blueprint(bp)

    @app.before_server_start
    async def start_probe(app: Sanic) -> None:
        app.ctx.health_probe = HealthProbe(app)

    @app.before_server_stop
    async def stop_probe(app: Sanic) -> None:
        app.ctx.health_probe.stop()


@bp.get("/health")
async def health(request: Request) -> HTTPResponse:
    probe: HealthProbe = request.app.ctx.health_probe
    checks, age = await probe.current()
    database, redis_state, pool = checks["database"], checks["redis"], checks["pool"]
    healthy = database["ok"] and redis_state["ok"]
    body = {
        "status": "ok" if healthy else "degraded",
        "version": __version__,
        "checked_at": probe.checked_at_iso,
        "age_ms": round(age * 1000, 1),
        "database": database,
        "redis": redis_state,
        "process": {"pid": _PROCESS.pid, "rss_mb": round(_PROCESS.memory_info().rss / 2**20, 1)},
    }
    if redis_state["ok"]:
        body["pool"] = pool
    return json(body, status=200 if healthy else 503)
