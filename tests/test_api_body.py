"""The stage bodies through the one body writer: gzip on every 200 (misses, cache hits, uncached
inline events), the cache storing the identity bytes, and the Accept-Encoding rules.

A live server (Sanic's HTTP server), so that the bytes compared are the bytes on the wire.
"""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from sanic_trace.api.body_writer import accepts_gzip
from support.apps import live_server
from support.expected import DOMAINS5
from support.settings import make_settings
from support.standard_warehouse import F1, R1, S3, T1

MSD = "mid_section_defect"


async def fetch(http: httpx.AsyncClient, path: str, body: Any, encoding: str) -> tuple[httpx.Response, bytes]:
    """A stage's response and its body exactly as sent (not decoded)."""
    async with http.stream("POST", f"/api/trace/{path}", json=body, headers={"Accept-Encoding": encoding}) as r:
        raw = b"".join([piece async for piece in r.aiter_raw()])
    assert r.status_code == 200, raw[:300]
    assert "accept-encoding" in r.headers["vary"].lower()
    assert r.headers["content-type"] == "application/json"
    return r, raw


def gunzip(response: httpx.Response, raw: bytes) -> bytes:
    assert response.headers["content-encoding"] == "gzip"
    assert raw[:2] == b"\x1f\x8b"
    return gzip.decompress(raw)


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("seed-resolve", {"profile": "query_tool", "params": {"resolve_type": "wafer_lot", "values": ["WAF-A"]}}),
        ("lineage", {"profile": "query_tool", "container_ids": [R1, T1]}),
        ("lineage", {"profile": "query_tool_reverse", "container_ids": [F1]}),
        ("events", {"profile": "query_tool", "container_ids": [S3, T1], "domains": DOMAINS5}),
    ],
)
async def test_misses_and_hits_honour_gzip_and_the_cache_stores_the_identity_body(
    standard_warehouse: Path,
    redis_url: str,
    redis_prefix: str,
    redis_client: redis.Redis,
    path: str,
    body: dict[str, Any],
) -> None:
    settings = make_settings(standard_warehouse, redis_url, redis_prefix)
    async with live_server(settings) as server, server.client() as http:
        miss, raw_miss = await fetch(http, path, body, "gzip")
        assert miss.headers["X-Cache"] == "miss"
        identity = gunzip(miss, raw_miss)
        hit, raw_hit = await fetch(http, path, body, "identity")
        assert hit.headers["X-Cache"] == "hit" and "content-encoding" not in hit.headers
        assert raw_hit == identity
        zipped_hit, raw_zipped_hit = await fetch(http, path, body, "gzip")
        assert zipped_hit.headers["X-Cache"] == "hit"
        assert gunzip(zipped_hit, raw_zipped_hit) == identity
    # Stored once, uncompressed: each replay is compressed (or not) for the client that asks.
    [key] = list(redis_client.scan_iter(match=f"{redis_prefix}:cache:{path}:*"))
    assert redis_client.get(key) == identity
    if path == "events":
        assert miss.headers["X-Trace-Path"] == hit.headers["X-Trace-Path"] == "inline"
        assert identity.startswith(b'{"stage":"events","results":{"history":{"data":[{"CONTAINERID":')


async def test_an_uncached_inline_events_body_honours_gzip(
    standard_warehouse: Path, redis_url: str, redis_prefix: str, redis_client: redis.Redis
) -> None:
    settings = make_settings(standard_warehouse, redis_url, redis_prefix)
    body = {"profile": MSD, "container_ids": [S3, T1]}  # MSD events are never cached
    async with live_server(settings) as server, server.client() as http:
        plain, raw_plain = await fetch(http, "events", body, "identity")
        zipped, raw_zipped = await fetch(http, "events", body, "gzip")
    assert plain.headers["X-Cache"] == zipped.headers["X-Cache"] == "bypass"
    assert "content-encoding" not in plain.headers
    assert gunzip(zipped, raw_zipped) == raw_plain
    assert raw_plain.startswith(b'{"stage":"events","results":{"upstream_history":{"data":[')
    assert list(redis_client.scan_iter(match=f"{redis_prefix}:cache:*")) == []


@pytest.mark.parametrize(
    ("header", "gzipped"),
    [
        ("", False),
        ("identity", False),
        ("gzip", True),
        ("GZIP", True),
        ("x-gzip", True),
        ("deflate, gzip;q=0.5", True),
        ("gzip;q=0", False),
        ("gzip;q=0.0, *", False),  # an explicit gzip entry wins over the wildcard
        ("gzip;q=abc", False),  # a malformed q is not acceptance
        ("br, *", True),
        ("*;q=0", False),
        ("*;q=0, gzip;q=0.5", True),
    ],
)
def test_accept_encoding(header: str, gzipped: bool) -> None:
    assert accepts_gzip(header) is gzipped
