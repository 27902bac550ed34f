"""An embedded, bounded process pool for long jobs, coordinated through Redis.

Generic on purpose: it runs registered job functions in isolated child processes and
knows nothing of Sanic, SQL or traces. Never import `sanic` or `sanic_trace` here.

    config = PoolConfig(redis_url, prefix="trace", job_kinds={"trace-events": "pkg.mod:run"}, ...)
    job_id = submit(client, config, "trace-events", {"cids": [...]})
    get_status(client, config.prefix, job_id)
    cancel(client, config.prefix, job_id)

The supervisor (jobs.supervisor) runs one per host, in a process or a thread. docs/jobs.md has the model.
"""

from jobs.config import PoolConfig
from jobs.context import JobContext
from jobs.errors import (
    JOB_FAILED,
    JOB_INTERRUPTED,
    JOB_MEMORY_LIMIT,
    JOB_ORPHANED,
    JOB_TIMEOUT,
    JOB_WORKER_DIED,
    InvalidJobId,
    JobCancelled,
    JobError,
    JobsError,
    MemoryPressure,
    QueueFull,
    RedisUnavailable,
    UnknownJobKind,
)
from jobs.keys import JobKeys, PoolKeys, is_valid_job_id, new_job_id
from jobs.notify import JobEvents
from jobs.queue import CancelResult, cancel, get_status, pool_state, submit
from jobs.supervisor import Supervisor, run_supervisor, start_supervisor_thread

__all__ = [
    "JOB_FAILED",
    "JOB_INTERRUPTED",
    "JOB_MEMORY_LIMIT",
    "JOB_ORPHANED",
    "JOB_TIMEOUT",
    "JOB_WORKER_DIED",
    "CancelResult",
    "InvalidJobId",
    "JobCancelled",
    "JobContext",
    "JobError",
    "JobEvents",
    "JobKeys",
    "JobsError",
    "MemoryPressure",
    "PoolConfig",
    "PoolKeys",
    "QueueFull",
    "RedisUnavailable",
    "Supervisor",
    "UnknownJobKind",
    "cancel",
    "get_status",
    "is_valid_job_id",
    "new_job_id",
    "pool_state",
    "run_supervisor",
    "start_supervisor_thread",
    "submit",
]
