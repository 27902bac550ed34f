"""Settings of the service under test: the test Redis, and the environment a test service runs with.

`service_env` says where the data and Redis are; `inline_env` adds generous inline limits (every
events request of a test on the inline path unless it narrows one); `jobs_env` the limits of a
server that runs trace jobs. `make_settings` loads an inline environment as Settings.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from sanic_trace.settings import Settings, load_settings

# Tests use their own Redis database number so they never see the service's keys;
# each test also writes under its own prefix (redis_keys) and deletes everything under it.
TEST_REDIS_DB = 15

INLINE_DEFAULTS: dict[str, Any] = {
    # Keep every events request on the inline path.
    "TRACE_ASYNC_CID_THRESHOLD": 50000,
    "TRACE_EVENTS_CID_LIMIT": 50000,
    "TRACE_RATE_LIMIT_SEED_RESOLVE": 0,
    "TRACE_RATE_LIMIT_LINEAGE": 0,
    "TRACE_RATE_LIMIT_EVENTS": 0,
    "TRACE_LOG_LEVEL": "INFO",
}
JOB_DEFAULTS: dict[str, Any] = {
    "TRACE_JOB_MAX_RSS_MB": 1024,
    "TRACE_JOB_TIMEOUT_SECONDS": 300,
    "TRACE_RATE_LIMIT_EVENTS": 0,
    "TRACE_RATE_LIMIT_JOBS": 0,
}


def redis_url_from_env() -> str:
    """TRACE_TEST_REDIS_URL (or REDIS_URL, or the local default) with the tests' database number."""
    base = os.environ.get("TRACE_TEST_REDIS_URL") or os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0"
    head, _, _ = base.rpartition("/")
    if not head.startswith("redis"):  # a URL without a database part
        head = base.rstrip("/")
    return f"{head}/{TEST_REDIS_DB}"


def service_env(db: Path | str, redis_url: str, prefix: str, **settings: Any) -> dict[str, str]:
    """The warehouse (a path or a sqlite:/// URL), the test Redis and prefix, then the given settings."""
    db_url = db if isinstance(db, str) and db.startswith("sqlite:///") else f"sqlite:///{db}"
    env = {"TRACE_DB_URL": db_url, "REDIS_URL": redis_url, "TRACE_REDIS_PREFIX": prefix}
    env.update({key: str(value) for key, value in settings.items()})
    return env


def inline_env(db: Path | str, redis_url: str, prefix: str, **overrides: Any) -> dict[str, str]:
    """A test service on the inline path: generous limits unless a test narrows one."""
    return service_env(db, redis_url, prefix, **{**INLINE_DEFAULTS, **overrides})


def jobs_env(warehouse: Path, redis_url: str, prefix: str, **overrides: Any) -> dict[str, str]:
    """A test server that runs trace jobs: room for the job children, no rate limits."""
    return service_env(warehouse, redis_url, prefix, **{**JOB_DEFAULTS, **overrides})


def make_settings(db: Path | str, redis_url: str, prefix: str, **overrides: Any) -> Settings:
    return load_settings(inline_env(db, redis_url, prefix, **overrides))
