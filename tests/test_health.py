"""GET /health against real Redis and a real SQLite warehouse (and with each one missing)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from sanic_testing.testing import SanicASGITestClient

from sanic_trace import __version__
from sanic_trace.app import create_app
from sanic_trace.settings import load_settings
from support.warehouses import WarehouseBuilder


@pytest.fixture
def empty_warehouse(tmp_path: Path) -> Path:
    return WarehouseBuilder(tmp_path / "wh.sqlite").close()  # the schema, no rows


def _client(db_url: str, redis_url: str, prefix: str) -> SanicASGITestClient:
    settings = load_settings({"TRACE_DB_URL": db_url, "REDIS_URL": redis_url, "TRACE_REDIS_PREFIX": prefix})
    return SanicASGITestClient(create_app(settings, name=f"t{uuid.uuid4().hex}"))


async def test_health_ok(empty_warehouse: Path, redis_url: str, redis_prefix: str) -> None:
    client = _client(f"sqlite:///{empty_warehouse}", redis_url, redis_prefix)
    _, response = await client.get("/health")
    assert response.status == 200
    body = response.json
    assert body["status"] == "ok" and body["version"] == __version__
    assert body["database"]["ok"] is True and body["database"]["kind"] == "sqlite"
    assert body["redis"]["ok"] is True
    assert body["process"]["rss_mb"] > 10
    assert response.headers["X-Request-ID"]
    assert body["checked_at"].endswith("Z") and body["age_ms"] >= 0


async def test_health_answers_from_the_latest_probe_round(
    empty_warehouse: Path, redis_url: str, redis_prefix: str
) -> None:
    """Within a round, /health does no dependency round trips of its own: it reports the round's result."""
    settings = load_settings(
        {"TRACE_DB_URL": f"sqlite:///{empty_warehouse}", "REDIS_URL": redis_url, "TRACE_REDIS_PREFIX": redis_prefix}
    )
    app = create_app(settings, name=f"t{uuid.uuid4().hex}", with_supervisor=False)
    client = SanicASGITestClient(app)

    @app.get("/probe-twice")
    async def probe_twice(request):  # type: ignore[no-untyped-def]
        from sanic.response import json as json_response

        probe = request.app.ctx.health_probe
        first, _ = await probe.current()
        checked_at = probe.checked_at
        second, age = await probe.current()
        return json_response({"same_round": first is second and probe.checked_at == checked_at, "age": age})

    _, response = await client.get("/probe-twice")
    assert response.json["same_round"] is True and response.json["age"] < 3.0


async def test_health_reports_unreachable_redis_and_missing_db(tmp_path: Path, redis_prefix: str) -> None:
    client = _client(f"sqlite:///{tmp_path / 'missing.sqlite'}", "redis://127.0.0.1:1/0", redis_prefix)
    _, response = await client.get("/health")
    assert response.status == 503
    body = response.json
    assert body["status"] == "degraded"
    assert body["redis"]["ok"] is False and "Connection" in body["redis"]["error"]
    assert body["database"]["ok"] is False and "does not exist" in body["database"]["error"]


async def test_unknown_route_uses_error_envelope(empty_warehouse: Path, redis_url: str, redis_prefix: str) -> None:
    client = _client(f"sqlite:///{empty_warehouse}", redis_url, redis_prefix)
    _, response = await client.get("/nope", headers={"X-Request-ID": "abc-123"})
    assert response.status == 404
    assert response.json["error"]["code"] == "NOT_FOUND"
    assert response.json["meta"]["request_id"] == "abc-123"
    assert response.json["success"] is False
