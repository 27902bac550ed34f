"""Where the bench writes: its own Redis database and key prefix, and the settings built on them.

The service's settings come from the environment as usual (so an operator's TRACE_* values are
what gets measured); the bench only points them at its warehouse, its Redis database and a
random prefix of its own, and deletes every key under that prefix when it ends.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import redis

DEFAULT_REDIS_DB = 14
DELETE_BATCH = 500


def redis_url_with_db(base: str, db: int) -> str:
    """The URL of database `db` on the Redis that `base` names (redis://, rediss:// or unix://)."""
    parts = urlsplit(base)
    if parts.scheme == "unix":  # the database of a socket URL is a query parameter
        query = [(k, v) for k, v in parse_qsl(parts.query) if k != "db"] + [("db", str(db))]
        return f"unix://{parts.path}?{urlencode(query)}"
    return urlunsplit(parts._replace(path=f"/{db}"))


def default_redis_url() -> str:
    return redis_url_with_db(os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0", DEFAULT_REDIS_DB)


def new_prefix() -> str:
    return f"bench-{secrets.token_hex(4)}"


def bench_environment(warehouse: Path, redis_url: str, prefix: str, role: str) -> dict[str, str]:
    """The process environment with the bench's warehouse, Redis and prefix; `role` names its supervisor."""
    return {
        **os.environ,
        "TRACE_DB_URL": f"sqlite:///{warehouse.resolve()}",
        "REDIS_URL": redis_url,
        "TRACE_REDIS_PREFIX": prefix,
        # Each supervisor needs a host id of its own (the bench's and the server's may overlap in time).
        "TRACE_HOST_ID": f"{prefix}-{role}",
    }


def delete_prefix(client: redis.Redis, prefix: str) -> int:
    """Delete every key under `prefix:`; returns how many."""
    return delete_matching(client, f"{prefix}:*")


def delete_matching(client: redis.Redis, pattern: str) -> int:
    """Delete every key matching a SCAN pattern; returns how many."""
    deleted = 0
    batch: list[bytes] = []
    for key in client.scan_iter(match=pattern, count=1000):
        batch.append(key)
        if len(batch) >= DELETE_BATCH:
            deleted += client.delete(*batch)
            batch.clear()
    if batch:
        deleted += client.delete(*batch)
    return deleted
