"""Pool jobs followed through a JobClient (no HTTP): wait for a status, or for the child's pid."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from jobs import JobClient, Status
from support.waits import wait_for


def wait_status(
    jobs: JobClient, job_id: str, statuses: Collection[Status] | Status, timeout: float
) -> dict[str, Any]:
    wanted = {Status(statuses)} if isinstance(statuses, str) else set(statuses)

    def probe() -> dict[str, Any] | None:
        status = jobs.status(job_id)
        return status if status and status["status"] in wanted else None

    try:
        return wait_for(probe, timeout, f"job {job_id} to be {'/'.join(sorted(wanted))}")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; status now: {jobs.status(job_id)}") from None


def pid_of(jobs: JobClient, job_id: str, timeout: float = 10) -> int:
    """The job's child pid, once the supervisor has written it."""
    return wait_for(lambda: (jobs.status(job_id) or {}).get("pid"), timeout, f"the child pid of job {job_id}")
