"""An embedded, bounded process pool for long jobs, coordinated through Redis.

Generic on purpose: it runs registered job functions in isolated child processes and
knows nothing of Sanic, SQL or traces. Never import `sanic` or `sanic_trace` here.

    config = PoolConfig(redis_url, prefix="trace", job_kinds={"trace-events": "pkg.mod:run"}, ...)
    jobs = JobClient(redis.Redis.from_url(redis_url), config)     # AsyncJobClient: the same, awaited
    job_id = jobs.submit("trace-events", {"cids": [...]})
    jobs.status(job_id)["status"] in ACTIVE
    jobs.cancel(job_id)

The supervisor (jobs.supervisor) runs one per host, in a process or a thread. docs/jobs.md has the model.
"""

from jobs.client import AsyncJobClient, CancelResult, JobClient
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
from jobs.notify import AsyncJobEvents, JobEvents
from jobs.status import ACTIVE, TERMINAL, Status
from jobs.supervisor import Supervisor, run_supervisor, start_supervisor_thread

__all__ = [
    "ACTIVE",
    "JOB_FAILED",
    "JOB_INTERRUPTED",
    "JOB_MEMORY_LIMIT",
    "JOB_ORPHANED",
    "JOB_TIMEOUT",
    "JOB_WORKER_DIED",
    "TERMINAL",
    "AsyncJobClient",
    "AsyncJobEvents",
    "CancelResult",
    "InvalidJobId",
    "JobCancelled",
    "JobClient",
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
    "Status",
    "Supervisor",
    "UnknownJobKind",
    "is_valid_job_id",
    "new_job_id",
    "run_supervisor",
    "start_supervisor_thread",
]
