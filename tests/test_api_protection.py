"""Protection of the inline path: per-client rate limits shared through Redis, and bounded DB slots.

Both run on live servers (Sanic's HTTP server in this event loop): two app instances on one
Redis prefix for the shared rate limit, with clients on two loopback addresses; and for TOO_BUSY
one slot held by a request whose query is genuinely slow, watched through the app's own slot
count rather than guessed with sleeps.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import redis

from support.apps import live_server
from support.asserts import assert_error
from support.faults import slow_variant, write_override
from support.settings import make_settings
from support.standard_warehouse import NAMES, R1, S3, T1
from support.waits import wait_until

WINDOW = 3600


EVENTS = {"profile": "query_tool", "container_ids": [S3], "domains": ["holds"]}
SEEDS = {"profile": "query_tool", "params": {"resolve_type": "lot_id", "values": [NAMES[S3]]}}
LINEAGE = {"profile": "query_tool", "container_ids": [R1]}


def client_from(server: Any, address: str) -> httpx.AsyncClient:
    """An HTTP client whose requests come from `address` (any 127.x.y.z reaches a loopback server)."""
    return httpx.AsyncClient(base_url=server.url, transport=httpx.AsyncHTTPTransport(local_address=address), timeout=30)


async def wait_for_room_in_the_window() -> None:
    """Fixed windows are aligned to multiples of WINDOW: start at least 10 s before the next boundary."""
    await wait_until(lambda: WINDOW - time.time() % WINDOW > 10, timeout=15, what="a fresh rate window")


async def test_rate_limit_is_shared_by_instances_and_counted_per_client_and_endpoint(
    standard_warehouse: Path, redis_url: str, redis_prefix: str, redis_client: redis.Redis
) -> None:
    settings = make_settings(
        standard_warehouse,
        redis_url,
        redis_prefix,
        TRACE_RATE_LIMIT_WINDOW_SECONDS=WINDOW,
        TRACE_RATE_LIMIT_EVENTS=3,
        TRACE_RATE_LIMIT_SEED_RESOLVE=2,
        TRACE_CACHE_TTL_SECONDS=0,
    )
    await wait_for_room_in_the_window()
    async with live_server(settings) as one, live_server(settings) as two:
        a1, a2, b2 = client_from(one, "127.0.0.1"), client_from(two, "127.0.0.1"), client_from(two, "127.0.0.2")
        async with a1, a2, b2:
            # Client A: 3 events requests spread over both instances use up its limit on both.
            for http in (a1, a2, a1):
                assert (await http.post("/api/trace/events", json=EVENTS)).status_code == 200
            for http in (a2, a1):
                response = await http.post("/api/trace/events", json=EVENTS)
                error = assert_error(
                    response,
                    429,
                    "RATE_LIMITED",
                    message_has=["more than 3 events requests in 3600 s from 127.0.0.1"],
                )["error"]
                retry_after = int(response.headers["Retry-After"])
                assert abs(retry_after - (WINDOW - time.time() % WINDOW)) <= 2
                assert f"retry after {retry_after} s" in error["message"]
            # Invalid requests count too: the limit is checked before the body is read.
            assert (await a1.post("/api/trace/events", content=b"not json")).status_code == 429
            # Another endpoint has its own count; another client address its own too.
            for _ in range(2):
                assert (await a2.post("/api/trace/seed-resolve", json=SEEDS)).status_code == 200
            assert_error(await a1.post("/api/trace/seed-resolve", json=SEEDS), 429, "RATE_LIMITED")
            assert (await a1.post("/api/trace/lineage", json=LINEAGE)).status_code == 200
            assert (await b2.post("/api/trace/events", json=EVENTS)).status_code == 200

    window_start = int(time.time() // WINDOW) * WINDOW
    key = f"{redis_prefix}:ratelimit:events:127.0.0.1:{window_start}"
    assert redis_client.get(key) == b"6"
    assert 0 < redis_client.ttl(key) <= WINDOW + 1
    assert redis_client.get(f"{redis_prefix}:ratelimit:events:127.0.0.2:{window_start}") == b"1"


async def test_another_prefix_is_another_deployment(
    standard_warehouse: Path, redis_url: str, redis_prefix: str, redis_client: redis.Redis
) -> None:
    await wait_for_room_in_the_window()
    limited = make_settings(
        standard_warehouse, redis_url, redis_prefix, TRACE_RATE_LIMIT_WINDOW_SECONDS=WINDOW, TRACE_RATE_LIMIT_LINEAGE=1
    )
    other = make_settings(
        standard_warehouse,
        redis_url,
        f"{redis_prefix}o",
        TRACE_RATE_LIMIT_WINDOW_SECONDS=WINDOW,
        TRACE_RATE_LIMIT_LINEAGE=1,
    )
    try:
        async with live_server(limited) as one, live_server(other) as two:
            async with one.client() as h1, two.client() as h2:
                assert (await h1.post("/api/trace/lineage", json=LINEAGE)).status_code == 200
                assert_error(await h1.post("/api/trace/lineage", json=LINEAGE), 429, "RATE_LIMITED")
                assert (await h2.post("/api/trace/lineage", json=LINEAGE)).status_code == 200
    finally:
        for key in redis_client.scan_iter(match=f"{redis_prefix}o:*"):
            redis_client.delete(key)


async def test_too_busy_while_every_db_slot_is_taken(
    standard_warehouse: Path, tmp_path: Path, redis_url: str, redis_prefix: str
) -> None:
    # One DB slot, taken by an events request whose holds query counts to 10^9 (minutes): only
    # the 2 s DB timeout ends it.
    write_override(tmp_path / "sql", "events_holds", slow_variant("events_holds"))
    settings = make_settings(
        standard_warehouse,
        redis_url,
        redis_prefix,
        TRACE_INLINE_MAX_CONCURRENCY=1,
        DB_QUERY_TIMEOUT_SECONDS=2,
        TRACE_SQL_OVERRIDE_DIR=tmp_path / "sql",
    )
    async with live_server(settings) as server, server.client() as http:
        cached_lineage = await http.post("/api/trace/lineage", json=LINEAGE)
        assert cached_lineage.headers["X-Cache"] == "miss"
        slots = server.app.ctx.db_slots
        assert slots.in_use == 0

        started = time.monotonic()
        slow = asyncio.create_task(
            http.post("/api/trace/events", json={"profile": "query_tool", "container_ids": [T1], "domains": ["holds"]})
        )
        await wait_until(lambda: slots.in_use == 1, timeout=5, what="the slow request to take the slot")

        refused = [
            await http.post("/api/trace/seed-resolve", json=SEEDS),
            await http.post("/api/trace/lineage", json={"profile": "query_tool_reverse", "container_ids": [S3]}),
            await http.post("/api/trace/events", json=EVENTS),
        ]
        assert not slow.done()
        for response in refused:
            assert_error(response, 429, "TOO_BUSY", message_has=["all 1 database slots"])
            assert response.headers["Retry-After"] == "2"
        # A cache hit takes no DB slot: it is served while the slot is busy.
        hit = await http.post("/api/trace/lineage", json=LINEAGE)
        assert (hit.status_code, hit.headers["X-Cache"], hit.content) == (200, "hit", cached_lineage.content)

        response = await slow
        assert_error(response, 504, "EVENTS_TIMEOUT")
        assert time.monotonic() - started >= 2
        # The slot is free again once the slow request is over.
        assert slots.in_use == 0
        assert (await http.post("/api/trace/seed-resolve", json=SEEDS)).status_code == 200


async def test_behind_a_proxy_the_forwarded_client_address_is_counted_and_only_when_configured(
    standard_warehouse: Path, redis_url: str, redis_prefix: str
) -> None:
    limits = {
        "TRACE_RATE_LIMIT_WINDOW_SECONDS": WINDOW,
        "TRACE_RATE_LIMIT_SEED_RESOLVE": 1,
        "TRACE_CACHE_TTL_SECONDS": 0,
    }
    await wait_for_room_in_the_window()

    async def seeds_from(http: httpx.AsyncClient, address: str) -> httpx.Response:
        # What a proxy in front appends last: the address it saw the client connect from.
        headers = {"X-Forwarded-For": f"203.0.113.77, {address}"}
        return await http.post("/api/trace/seed-resolve", json=SEEDS, headers=headers)

    behind = make_settings(standard_warehouse, redis_url, f"{redis_prefix}p", TRACE_PROXIES_COUNT=1, **limits)
    async with live_server(behind) as server, server.client() as http:
        assert (await seeds_from(http, "198.51.100.1")).status_code == 200
        # Another client behind the same proxy (same socket peer) has a count of its own...
        assert (await seeds_from(http, "198.51.100.2")).status_code == 200
        # ...and the first one is over its limit, named by its real address, not the proxy's.
        assert_error(
            await seeds_from(http, "198.51.100.1"),
            429,
            "RATE_LIMITED",
            message_has=["from 198.51.100.1"],
        )
    # Without TRACE_PROXIES_COUNT a client cannot pick its address with a forwarding header.
    direct = make_settings(standard_warehouse, redis_url, f"{redis_prefix}d", **limits)
    async with live_server(direct) as server, server.client() as http:
        assert (await seeds_from(http, "198.51.100.1")).status_code == 200
        assert_error(
            await seeds_from(http, "198.51.100.2"),
            429,
            "RATE_LIMITED",
            message_has=["from 127.0.0.1"],
        )
