"""Redis key prefixes of the tests: each test (or each module-wide server) writes under a prefix of its
own, and everything under it is deleted afterwards.

conftest's `redis_prefix` fixture (one test) and `own_prefix` (a server shared by a module) are the
same two steps: `new_prefix()`, then `delete_prefix()`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import redis


def new_prefix() -> str:
    return f"tt{uuid.uuid4().hex[:10]}"


def delete_prefix(redis_url: str, prefix: str) -> None:
    """Delete every key under `prefix`, and under the prefixes made by appending to it."""
    client = redis.Redis.from_url(redis_url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=1000))
        for start in range(0, len(keys), 500):
            client.delete(*keys[start : start + 500])
    finally:
        client.close()


@contextmanager
def own_prefix(redis_url: str) -> Iterator[str]:
    """A prefix for a server that serves a whole module (conftest's redis_prefix is per test)."""
    prefix = new_prefix()
    try:
        yield prefix
    finally:
        delete_prefix(redis_url, prefix)


def cache_keys(client: redis.Redis, prefix: str, stage: str = "*") -> list[str]:
    """The stage cache's keys under `prefix` (of one stage, or of all), sorted."""
    return sorted(k.decode() for k in client.scan_iter(match=f"{prefix}:cache:{stage}:*"))


def job_keys(client: redis.Redis, prefix: str, job_id: str) -> list[bytes]:
    """Every key of one job (all carry `{ID}` as a hash tag)."""
    return sorted(client.scan_iter(match=f"{prefix}:job:{{{job_id}}}*", count=1000))
