"""GET /health: can this process reach its database and Redis, and how big is it."""

from __future__ import annotations

import asyncio
import os
import time

import psutil
from sanic import Blueprint, Request
from sanic.response import HTTPResponse, json

from sanic_trace import __version__

bp = Blueprint("health")

_PROCESS = psutil.Process(os.getpid())
# A health check must answer fast even when a dependency hangs.
_CHECK_TIMEOUT_SECONDS = 2.0


async def _check_database(request: Request) -> dict:
    source = request.app.ctx.source
    started = time.perf_counter()
    try:
        await asyncio.wait_for(asyncio.to_thread(source.ping), _CHECK_TIMEOUT_SECONDS)
    except Exception as exc:  # noqa: BLE001 - any failure is reported, none is raised
        return {"ok": False, "kind": source.name, "error": f"{type(exc).__name__}: {exc}"}
    return {"ok": True, "kind": source.name, "latency_ms": round((time.perf_counter() - started) * 1000, 2)}


async def _check_redis(request: Request) -> dict:
    started = time.perf_counter()
    try:
        await asyncio.wait_for(request.app.ctx.redis.ping(), _CHECK_TIMEOUT_SECONDS)
    except Exception as exc:  # noqa: BLE001
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
    return {"ok": True, "latency_ms": round((time.perf_counter() - started) * 1000, 2)}


@bp.get("/health")
async def health(request: Request) -> HTTPResponse:
    database, redis_state = await asyncio.gather(_check_database(request), _check_redis(request))
    healthy = database["ok"] and redis_state["ok"]
    body = {
        "status": "ok" if healthy else "degraded",
        "version": __version__,
        "database": database,
        "redis": redis_state,
        "process": {"pid": _PROCESS.pid, "rss_mb": round(_PROCESS.memory_info().rss / 2**20, 1)},
    }
    pool_state = getattr(request.app.ctx, "pool_state", None)
    if pool_state is not None and redis_state["ok"]:
        try:
            body["pool"] = await asyncio.wait_for(pool_state(), _CHECK_TIMEOUT_SECONDS)
        except Exception as exc:  # noqa: BLE001
            body["pool"] = {"error": f"{type(exc).__name__}: {exc}"}
    return json(body, status=200 if healthy else 503)
