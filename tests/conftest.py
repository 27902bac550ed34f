"""Shared fixtures: a real Redis (a dedicated database and a key prefix per test) and paths."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
import redis

# Tests use their own Redis database number so they never see the service's keys;
# each test also writes under its own prefix and deletes everything under it.
TEST_REDIS_DB = 15


def _test_redis_url() -> str:
    base = os.environ.get("TRACE_TEST_REDIS_URL") or os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
    head, _, _ = base.rpartition("/")
    if not head.startswith("redis"):  # a URL without a database part
        head = base.rstrip("/")
    return f"{head}/{TEST_REDIS_DB}"


@pytest.fixture(scope="session")
def redis_url() -> str:
    url = _test_redis_url()
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:  # pragma: no cover - a broken environment, not a test result
        pytest.fail(f"no Redis answers at {url}: {exc} (run the suite with `make test`)")
    return url


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    """A key prefix of this test's own; every key under it, and under prefixes made by appending to it,
    is deleted afterwards."""
    prefix = f"tt{uuid.uuid4().hex[:10]}"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
    for start in range(0, len(keys), 500):
        client.delete(*keys[start : start + 500])
    client.close()


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()
