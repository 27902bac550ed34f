"""Error codes written into a failed job's status, and the exceptions of the public API."""

from __future__ import annotations

import redis

# Redis errors that mean "Redis is not there" rather than "we sent something wrong": the API turns
# them into RedisUnavailable, the supervisor into an outage (jobs.link), the child into a failed job.
REDIS_DOWN = (redis.ConnectionError, redis.TimeoutError)

# Codes a failed job carries in its status (the service maps them to its own error table).
JOB_MEMORY_LIMIT = "JOB_MEMORY_LIMIT"
JOB_TIMEOUT = "JOB_TIMEOUT"
JOB_WORKER_DIED = "JOB_WORKER_DIED"
JOB_ORPHANED = "JOB_ORPHANED"
JOB_INTERRUPTED = "JOB_INTERRUPTED"
JOB_FAILED = "JOB_FAILED"


class JobsError(Exception):
    """Base of every exception the pool's API raises to its callers."""


class QueueFull(JobsError):
    """The queue already holds queue_max jobs."""


class RedisUnavailable(JobsError):
    """Redis did not answer (connection refused, timed out, loading)."""


class MemoryPressure(JobsError):
    """The host has less available memory than the admission floor."""

    def __init__(self, message: str, available_mb: float, min_available_mb: float) -> None:
        super().__init__(message)
        self.available_mb = available_mb
        self.min_available_mb = min_available_mb


class UnknownJobKind(JobsError, ValueError):
    """No job function is registered for this kind."""


class InvalidJobId(JobsError, ValueError):
    """A job id that does not have the shape of one (never put such a string in a key)."""


class JobError(Exception):
    """Raised by a job function to fail its job with a code of its own choosing."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class JobCancelled(Exception):
    """Raised by ctx.check() inside a child when its job was cancelled."""


class JobMemoryLimit(JobError):
    """Raised by ctx.check() when the child's own RSS is over the soft limit."""

    def __init__(self, message: str) -> None:
        super().__init__(JOB_MEMORY_LIMIT, message)
