"""The pool's admission errors as the HTTP client sees them (in-process app, real Redis, no supervisor).

- the queue is bounded: past TRACE_JOB_QUEUE_MAX queued jobs, 429 JOB_QUEUE_FULL with Retry-After;
- memory admission: below TRACE_MIN_AVAILABLE_MB available, 503 MEMORY_PRESSURE with Retry-After;
- what was already queued is kept: a refusal loses nothing stored.
"""

from __future__ import annotations

from pathlib import Path

import psutil
import redis

import jobs
from support.apps import asgi_client
from support.asserts import assert_error
from support.settings import make_settings


def _events(n: int) -> dict:
    # Made-up ids are fine: the request is refused or queued before any database work.
    return {"profile": "query_tool", "container_ids": [f"{i:016x}" for i in range(n)], "domains": ["history"]}


async def test_queue_full_is_429_and_keeps_the_queued_job(
    standard_warehouse: Path, redis_url: str, redis_prefix: str, redis_client: redis.Redis
) -> None:
    settings = make_settings(
        standard_warehouse,
        redis_url,
        redis_prefix,
        TRACE_ASYNC_CID_THRESHOLD=2,
        TRACE_JOB_QUEUE_MAX=1,
        TRACE_MIN_AVAILABLE_MB=0,
    )
    client = asgi_client(settings)  # no supervisor: the first job stays queued
    _, first = await client.post("/api/trace/events", json=_events(3))
    assert first.status == 202
    job_id = first.json["job_id"]

    _, refused = await client.post("/api/trace/events", json=_events(3))
    body = assert_error(refused, 429, "JOB_QUEUE_FULL")
    assert int(refused.headers["Retry-After"]) > 0
    assert "1" in body["error"]["message"]

    status = jobs.JobClient(redis_client, redis_prefix).status(job_id)
    assert status["status"] == "queued" and status["queue_position"] == 0
    assert redis_client.llen(jobs.PoolKeys(redis_prefix).queue) == 1


async def test_memory_pressure_is_503_before_anything_is_stored(
    standard_warehouse: Path, redis_url: str, redis_prefix: str, redis_client: redis.Redis
) -> None:
    # A floor above all the memory this machine has: admission must refuse.
    above_everything = int(psutil.virtual_memory().total / 2**20) + 1024
    settings = make_settings(
        standard_warehouse,
        redis_url,
        redis_prefix,
        TRACE_ASYNC_CID_THRESHOLD=2,
        TRACE_MIN_AVAILABLE_MB=above_everything,
    )
    client = asgi_client(settings)
    _, refused = await client.post("/api/trace/events", json=_events(3))
    body = assert_error(refused, 503, "MEMORY_PRESSURE")
    assert int(refused.headers["Retry-After"]) > 0
    assert str(above_everything) in body["error"]["message"].replace(",", "")
    assert list(redis_client.scan_iter(match=f"{redis_prefix}:job:*")) == []
    assert redis_client.llen(jobs.PoolKeys(redis_prefix).queue) == 0
