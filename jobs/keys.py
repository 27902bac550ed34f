"""Redis key names, in one place, so every process builds them the same way.

Every key of one job carries the job id as a Redis Cluster hash tag (literal braces):
``trace:job:{ID}``, ``trace:job:{ID}:request``, ``trace:job:{ID}:chunk:history:3``.
A clustered Redis then keeps one job's keys in one slot, so MULTI and Lua over them stay legal.
"""

from __future__ import annotations

import re
import secrets

# 128 random bits as 32 lowercase hex characters: URL-safe, and free of glob and brace characters,
# so an id can go into a key or a SCAN pattern without escaping.
_JOB_ID_RE = re.compile(r"[0-9a-f]{32}")

# Suffixes the pool itself uses under a job; data keys may not take them.
RESERVED_SUFFIXES = frozenset({"request", "notify", "keyset"})


def new_job_id() -> str:
    return secrets.token_hex(16)


def is_valid_job_id(value: object) -> bool:
    """True if `value` has the exact shape of a job id (check ids from URLs before building keys)."""
    return isinstance(value, str) and _JOB_ID_RE.fullmatch(value) is not None


class PoolKeys:
    """Keys shared by the whole pool under one prefix."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.queue = f"{prefix}:queue"
        self.hosts = f"{prefix}:hosts"

    def running(self, host: str) -> str:
        """Ids a host's supervisor has taken (reliable-queue list)."""
        return f"{self.prefix}:running:{host}"

    def heartbeat(self, host: str) -> str:
        return f"{self.prefix}:host:{host}"

    def pool_state(self, host: str) -> str:
        """The supervisor's latest sample round (running children and their RSS), short TTL."""
        return f"{self.prefix}:pool:{host}"

    def job(self, job_id: str) -> JobKeys:
        return JobKeys(self.prefix, job_id)


class JobKeys:
    """Keys of one job. Raises ValueError for an id that is not a job id."""

    def __init__(self, prefix: str, job_id: str) -> None:
        if not is_valid_job_id(job_id):
            raise ValueError(f"not a job id: {job_id!r}")
        self.prefix = prefix
        self.job_id = job_id
        self.job = f"{prefix}:job:{{{job_id}}}"
        self.request = f"{self.job}:request"
        self.notify = f"{self.job}:notify"  # pub/sub channel, not a key
        self.keyset = f"{self.job}:keyset"  # set of the data keys written for this job

    def data(self, suffix: str) -> str:
        """A data key of this job, e.g. data("chunk:history:3") → trace:job:{ID}:chunk:history:3."""
        if not suffix or suffix.split(":", 1)[0] in RESERVED_SUFFIXES:
            raise ValueError(f"data key suffix {suffix!r} is empty or reserved")
        return f"{self.job}:{suffix}"

    def __repr__(self) -> str:
        return f"JobKeys({self.prefix!r}, {self.job_id!r})"
