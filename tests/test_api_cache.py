"""Stage caches: what is cached, that a hit is the same bytes, and that Redis trouble never corrupts a body.

Real Redis throughout; Redis outages are made real with a TCP relay the test cuts (RedisProxy),
and a cached body is made to expire mid-replay by deleting its key while it is being read.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from support.apps import asgi_client, live_server
from support.expected import DOMAINS5, EXPECTED
from support.faults import RedisProxy, slow_variant, write_override
from support.redis_keys import cache_keys
from support.servers import free_port
from support.settings import make_settings
from support.standard_warehouse import F1, NAMES, R1, S3, T1
from support.warehouses import DemoWarehouses, container_ids

MSD = "mid_section_defect"
MSD_RANGE = {"start_date": "2025-01-09", "end_date": "2025-01-10"}


@pytest.fixture(scope="module")
def demo(demo_warehouses: DemoWarehouses) -> Path:
    return demo_warehouses(2000)


async def post(client: Any, path: str, body: Any) -> Any:
    _, response = await client.post(f"/api/trace/{path}", json=body)
    assert response.status == 200, response.text[:500]
    return response


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("seed-resolve", {"profile": "query_tool", "params": {"resolve_type": "wafer_lot", "values": ["WAF-A"]}}),
        (
            "seed-resolve",
            {"profile": "query_tool_reverse", "params": {"resolve_type": "serial_number", "values": ["SN-0001"]}},
        ),
        ("seed-resolve", {"profile": MSD, "params": MSD_RANGE}),
        ("lineage", {"profile": "query_tool", "container_ids": [R1, T1]}),
        ("lineage", {"profile": "query_tool_reverse", "container_ids": [F1]}),
        ("events", {"profile": "query_tool", "container_ids": [S3, T1], "domains": DOMAINS5}),
    ],
)
async def test_a_hit_is_the_same_bytes(
    standard_warehouse: Path,
    redis_url: str,
    redis_prefix: str,
    redis_client: redis.Redis,
    path: str,
    body: dict[str, Any],
) -> None:
    settings = make_settings(standard_warehouse, redis_url, redis_prefix, TRACE_CACHE_TTL_SECONDS=120)
    first = await post(asgi_client(settings), path, body)
    assert first.headers["X-Cache"] == "miss"
    stage = path
    [key] = cache_keys(redis_client, redis_prefix, stage)
    assert 0 < redis_client.ttl(key) <= 120
    assert redis_client.get(key) == first.content
    # Another app instance on the same Redis prefix: the cache is shared, and a hit needs no database.
    elsewhere = make_settings(Path("/nonexistent/warehouse.sqlite"), redis_url, redis_prefix)
    second = await post(asgi_client(elsewhere), path, body)
    assert second.headers["X-Cache"] == "hit"
    assert second.content == first.content
    assert second.headers["content-type"] == "application/json"
    if path == "events":
        assert first.headers["X-Trace-Path"] == second.headers["X-Trace-Path"] == "inline"
    else:
        assert second.json["cache_key"] == key.rsplit(":", 1)[1]


async def test_equal_requests_share_a_key_and_different_ones_do_not(
    standard_warehouse: Path, redis_url: str, redis_prefix: str, redis_client: redis.Redis
) -> None:
    client = asgi_client(make_settings(standard_warehouse, redis_url, redis_prefix))
    lot = {"profile": "query_tool", "params": {"resolve_type": "lot_id", "values": [NAMES[S3]]}}
    first = await post(client, "seed-resolve", lot)
    # Normalised values (trimmed, deduplicated) and unused params are the same request.
    same = {
        "profile": "query_tool",
        "params": {"resolve_type": "lot_id", "values": [f" {NAMES[S3]}", NAMES[S3]], "x": 1},
    }
    second = await post(client, "seed-resolve", same)
    assert (second.headers["X-Cache"], second.content) == ("hit", first.content)
    other = await post(
        client, "seed-resolve", {"profile": "query_tool", "params": {"resolve_type": "lot_id", "values": [NAMES[T1]]}}
    )
    assert other.headers["X-Cache"] == "miss" and other.json["cache_key"] != first.json["cache_key"]
    events = {"profile": "query_tool", "container_ids": [S3], "domains": ["holds"]}
    await post(client, "events", events)
    assert (await post(client, "events", {**events, "domains": ["holds", "jobs"]})).headers["X-Cache"] == "miss"
    assert (await post(client, "events", {**events, "container_ids": [f" {S3} ", S3]})).headers["X-Cache"] == "hit"
    assert len(cache_keys(redis_client, redis_prefix)) == 4


async def test_msd_seed_resolve_key_ignores_loss_reasons(
    standard_warehouse: Path, redis_url: str, redis_prefix: str, redis_client: redis.Redis
) -> None:
    client = asgi_client(make_settings(standard_warehouse, redis_url, redis_prefix))
    first = await post(client, "seed-resolve", {"profile": MSD, "params": {**MSD_RANGE, "loss_reasons": ["VOID"]}})
    assert first.headers["X-Cache"] == "miss" and first.json["seed_count"] == 4
    for params in (
        {**MSD_RANGE, "loss_reasons": ["OPEN", "SHORT"]},
        MSD_RANGE,
        {"date_range": list(MSD_RANGE.values())},
    ):
        again = await post(client, "seed-resolve", {"profile": MSD, "params": params})
        assert (again.headers["X-Cache"], again.content) == ("hit", first.content), params
    # The dates and the station do make a different request.
    other = await post(client, "seed-resolve", {"profile": MSD, "params": {**MSD_RANGE, "station": "TMTT"}})
    assert other.headers["X-Cache"] == "miss" and other.json["cache_key"] != first.json["cache_key"]
    assert len(cache_keys(redis_client, redis_prefix, "seed-resolve")) == 2


async def test_msd_events_are_never_cached(
    standard_warehouse: Path, redis_url: str, redis_prefix: str, redis_client: redis.Redis
) -> None:
    client = asgi_client(make_settings(standard_warehouse, redis_url, redis_prefix))
    body = {"profile": MSD, "container_ids": [S3, T1]}
    first = await post(client, "events", body)
    second = await post(client, "events", body)
    assert first.headers["X-Cache"] == second.headers["X-Cache"] == "bypass"
    assert first.content == second.content
    assert list(first.json["results"]) == ["upstream_history", "materials"]
    assert cache_keys(redis_client, redis_prefix) == []


async def test_events_over_the_skip_threshold_are_not_cached(
    standard_warehouse: Path, redis_url: str, redis_prefix: str, redis_client: redis.Redis
) -> None:
    client = asgi_client(make_settings(standard_warehouse, redis_url, redis_prefix, TRACE_CACHE_SKIP_CID_THRESHOLD=3))
    over = {"profile": "query_tool", "container_ids": [S3, T1, R1, F1], "domains": ["rejects"]}
    assert (await post(client, "events", over)).headers["X-Cache"] == "bypass"
    assert (await post(client, "events", over)).headers["X-Cache"] == "bypass"
    assert cache_keys(redis_client, redis_prefix) == []
    at = {**over, "container_ids": [S3, T1, R1]}  # the threshold itself is cached
    assert (await post(client, "events", at)).headers["X-Cache"] == "miss"
    assert (await post(client, "events", at)).headers["X-Cache"] == "hit"
    assert len(cache_keys(redis_client, redis_prefix, "events")) == 1


async def test_ttl_zero_turns_every_cache_off(
    standard_warehouse: Path, redis_url: str, redis_prefix: str, redis_client: redis.Redis
) -> None:
    client = asgi_client(make_settings(standard_warehouse, redis_url, redis_prefix, TRACE_CACHE_TTL_SECONDS=0))
    requests = [
        ("seed-resolve", {"profile": "query_tool", "params": {"resolve_type": "lot_id", "values": [NAMES[S3]]}}),
        ("lineage", {"profile": "query_tool", "container_ids": [R1]}),
        ("events", {"profile": "query_tool", "container_ids": [S3], "domains": ["holds"]}),
    ]
    for path, body in requests * 2:
        assert (await post(client, path, body)).headers["X-Cache"] == "bypass"
    assert cache_keys(redis_client, redis_prefix) == []


# --- Redis trouble -----------------------------------------------------------------------------------
async def test_unreachable_redis_answers_from_the_database(standard_warehouse: Path, redis_prefix: str) -> None:
    # Nothing listens on this port: every Redis call fails at once. The rate limiter lets requests
    # through (its documented choice) and the caches are skipped: the inline path still works.
    url = f"redis://127.0.0.1:{free_port()}/15"
    client = asgi_client(make_settings(standard_warehouse, url, redis_prefix, TRACE_RATE_LIMIT_EVENTS=1))
    requests = [
        ("seed-resolve", {"profile": "query_tool", "params": {"resolve_type": "lot_id", "values": [NAMES[S3]]}}),
        ("lineage", {"profile": "query_tool", "container_ids": [R1]}),
        ("events", {"profile": "query_tool", "container_ids": [S3], "domains": ["holds"]}),
        ("events", {"profile": "query_tool", "container_ids": [S3], "domains": ["holds"]}),
    ]
    for path, body in requests:
        response = await post(client, path, body)
        assert response.headers["X-Cache"] == "bypass"
    assert response.json["results"]["holds"]["count"] == 1


async def test_redis_lost_while_an_events_body_streams_neither_breaks_nor_caches_it(
    demo: Path, tmp_path: Path, redis_url: str, redis_prefix: str, redis_client: redis.Redis, caplog: Any
) -> None:
    db = sqlite3.connect(demo)
    ids = container_ids(db)[:500]
    expected = {domain: EXPECTED[domain](db, ids) for domain in ("holds", "history")}
    db.close()
    # history (the second domain) runs a finite but slow query (~1 s here): the body is still
    # streaming, and its pieces still being appended to the cache, when Redis goes away.
    write_override(tmp_path / "sql", "events_history", slow_variant("events_history", steps=2_000_000))
    async with RedisProxy(redis_url) as proxy:
        settings = make_settings(demo, proxy.url, redis_prefix, TRACE_SQL_OVERRIDE_DIR=tmp_path / "sql")
        request = {"profile": "query_tool", "container_ids": ids, "domains": ["holds", "history"]}
        async with live_server(settings) as server, server.client() as http:
            with caplog.at_level(logging.WARNING, logger="sanic_trace"):
                async with http.stream("POST", "/api/trace/events", json=request) as response:
                    assert response.status_code == 200
                    assert response.headers["X-Cache"] == "miss"
                    chunks = []
                    async for chunk in response.aiter_bytes():
                        if not chunks:
                            await proxy.cut()
                        chunks.append(chunk)
    body = json.loads(b"".join(chunks))
    assert "code" not in body
    for domain, records in expected.items():
        assert body["results"][domain] == {"data": records, "count": len(records)}
    assert any("cache_write_abandoned" in r.message for r in caplog.records), "Redis was cut too late"
    # Nothing was published; the pieces appended before the cut expire on their own.
    assert [k for k in cache_keys(redis_client, redis_prefix) if ":partial:" not in k] == []
    for key in cache_keys(redis_client, redis_prefix):
        assert 0 < redis_client.ttl(key) <= 600


async def test_a_cached_body_expiring_mid_replay_is_cut_off_not_ended(
    demo_warehouses: DemoWarehouses, redis_url: str, redis_prefix: str, redis_client: redis.Redis
) -> None:
    warehouse = demo_warehouses(25000)
    db = sqlite3.connect(warehouse)
    ids = container_ids(db)[:10000]
    db.close()
    # ~28 MB of history: far more than the socket buffers between server and client hold, so the
    # server is still replaying when the key goes away (as when its TTL runs out).
    settings = make_settings(warehouse, redis_url, redis_prefix)
    request = {"profile": "query_tool", "container_ids": ids, "domains": ["history"]}
    async with live_server(settings) as server, server.client() as http:
        first = await http.post("/api/trace/events", json=request)
        assert first.status_code == 200 and first.headers["X-Cache"] == "miss"
        size = len(first.content)
        assert size > 20 * 2**20
        del first
        [key] = cache_keys(redis_client, redis_prefix)
        received = 0
        # Identity: 28 MB on the wire (gzip would make it ~4 MB, within what the buffers can hold).
        identity = {"Accept-Encoding": "identity"}
        with pytest.raises(httpx.RemoteProtocolError, match="incomplete"):
            async with http.stream("POST", "/api/trace/events", json=request, headers=identity) as response:
                assert response.headers["X-Cache"] == "hit"
                redis_client.delete(key)
                async for chunk in response.aiter_raw():
                    received += len(chunk)
        assert 0 < received < size
