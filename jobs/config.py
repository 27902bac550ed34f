"""Pool configuration: one frozen, pickleable dataclass built by the embedding service.

It crosses process boundaries twice (service → supervisor process started with spawn,
supervisor → each job child over a pipe), so it holds only plain values: no clients,
no callables. Job functions are named by "module:function" strings for the same reason.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

# Characters a name that goes into Redis keys (the prefix, a host id) may not hold: braces would
# break the job keys' hash tags, glob characters the SCAN patterns, ':' the key layout.
FORBIDDEN_NAME_CHARACTERS = frozenset("{}*?[]: \t\r\n")


def name_problem(value: str) -> str | None:
    """Why `value` cannot be a prefix or host id, or None when it can."""
    if not value:
        return "must not be empty"
    bad = sorted(set(value) & FORBIDDEN_NAME_CHARACTERS)
    if bad:
        return f"must not contain {' '.join(repr(c) for c in bad)} (no braces, glob characters, ':' or whitespace)"
    return None


def _default_host_id() -> str:
    return socket.gethostname()


@dataclass(frozen=True)
class PoolConfig:
    """Everything the pool needs; the service builds it from its own settings."""

    redis_url: str
    prefix: str = "trace"
    # kind → "package.module:function"; the child imports only the module of the kind it runs.
    job_kinds: Mapping[str, str] = field(default_factory=dict)
    worker_count: int = 2
    queue_max: int = 50
    job_ttl_seconds: float = 3600.0
    job_timeout_seconds: float = 600.0
    max_rss_mb: float = 1024.0
    min_available_mb: float = 512.0
    shutdown_grace_seconds: float = 10.0
    heartbeat_seconds: float = 5.0
    host_id: str = field(default_factory=_default_host_id)
    rss_sample_interval: float = 0.2
    # How long a job may wait in the queue before its keys expire (it is then skipped).
    queued_ttl_seconds: float = 86400.0
    # ctx.check() fails the job cleanly once the child's own RSS passes this share of max_rss_mb,
    # so a well-behaved job ends with JOB_MEMORY_LIMIT before the supervisor has to kill it.
    soft_rss_fraction: float = 0.9
    # Grace between SIGTERM and SIGKILL when the supervisor ends a child.
    kill_grace_seconds: float = 1.0
    # Extra directories put in front of the child's import path (job modules outside site-packages).
    import_paths: tuple[str, ...] = ()
    # A finished job's return value is stored in its status hash; big data belongs in data keys.
    result_max_bytes: int = 256 * 1024
    # Orphan scan every this many heartbeats.
    orphan_scan_heartbeats: int = 3
    # The embedding service's configuration, handed to every job function as ctx.config.job_config.
    # It travels inside this config (pickled to the supervisor, then over each child's stdin pipe),
    # never through Redis: the place for what a job needs to run but must not store, such as a
    # database password. Any pickleable value.
    job_config: Any = None

    def __post_init__(self) -> None:
        # A read-only plain dict copy: callers may pass any mapping, the pickle stays small and plain.
        object.__setattr__(self, "job_kinds", MappingProxyType(dict(self.job_kinds)))
        object.__setattr__(self, "import_paths", tuple(self.import_paths))
        problems = []
        for name in ("prefix", "host_id"):
            problem = name_problem(getattr(self, name))
            if problem:
                problems.append(f"{name} {getattr(self, name)!r} {problem}")
        for name in ("worker_count", "queue_max", "orphan_scan_heartbeats", "result_max_bytes"):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be >= 1")
        for name in (
            "job_ttl_seconds",
            "job_timeout_seconds",
            "max_rss_mb",
            "heartbeat_seconds",
            "rss_sample_interval",
            "queued_ttl_seconds",
            "kill_grace_seconds",
        ):
            if getattr(self, name) <= 0:
                problems.append(f"{name} must be > 0")
        for name in ("min_available_mb", "shutdown_grace_seconds"):
            if getattr(self, name) < 0:
                problems.append(f"{name} must be >= 0")
        if self.rss_sample_interval > 0.25:
            problems.append("rss_sample_interval must be <= 0.25 s (children are sampled at least 4 times a second)")
        if not 0 < self.soft_rss_fraction <= 1:
            problems.append("soft_rss_fraction must be in (0, 1]")
        for kind, path in self.job_kinds.items():
            module, _, func = str(path).partition(":")
            if not kind or not module or not func:
                problems.append(f"job kind {kind!r}: {path!r} is not 'package.module:function'")
        if problems:
            raise ValueError("invalid PoolConfig: " + "; ".join(problems))

    def __reduce__(self):  # MappingProxyType does not pickle: rebuild from a plain dict
        values = {name: getattr(self, name) for name in self.__dataclass_fields__}
        values["job_kinds"] = dict(self.job_kinds)
        return (_rebuild, (values,))

    @property
    def data_ttl_seconds(self) -> float:
        """TTL a child gives every data key it writes: it can't outlive a dead job for long."""
        return self.job_ttl_seconds + self.job_timeout_seconds

    @property
    def started_ttl_seconds(self) -> float:
        """TTL of a started job's hash and request: past the timeout, the end, and a few missed heartbeats."""
        return (
            self.job_timeout_seconds + self.job_ttl_seconds + 3 * self.heartbeat_seconds + self.shutdown_grace_seconds
        )

    @property
    def heartbeat_ttl_seconds(self) -> float:
        return 3 * self.heartbeat_seconds

    @property
    def soft_rss_mb(self) -> float:
        return self.max_rss_mb * self.soft_rss_fraction


def _rebuild(values: dict) -> PoolConfig:
    return PoolConfig(**values)
