"""How a child's exit becomes a job's outcome: one pure function, `decide`.

Inputs are facts the supervisor gathered — the exit code, the report line the child wrote on
its pipe (if any), why the supervisor killed it (if it did), the peak RSS — and the limits that
were enforced. Nothing here touches a process or Redis, so every case is a line of a table in
tests/pool/test_pool_outcome.py.

Precedence: a kill the supervisor decided explains the exit better than anything the dying
child managed to say (a memory kill that lands while the child writes "failed" is still a
memory kill); without a kill the child's own report counts; without a report, the exit code.
"""

from __future__ import annotations

import json
import signal
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from jobs.errors import JOB_FAILED, JOB_INTERRUPTED, JOB_MEMORY_LIMIT, JOB_TIMEOUT, JOB_WORKER_DIED
from jobs.status import Status


class KillReason(StrEnum):
    MEMORY = "memory"  # over max_rss_mb
    TIMEOUT = "timeout"  # past job_timeout_seconds
    CANCEL = "cancel"  # the job was cancelled
    SUPERSEDED = "superseded"  # the job ended elsewhere (orphaned while this supervisor was cut off)
    SHUTDOWN = "shutdown"  # the supervisor stops and the shutdown grace is over


@dataclass(frozen=True)
class Kill:
    reason: KillReason
    rss_mb: float  # RSS when the kill was decided (a dying process reads as 0)


@dataclass(frozen=True)
class ChildExit:
    """What is known once a child is reaped."""

    pid: int
    code: int | None  # Popen.returncode: negative = killed by that signal
    report: dict[str, Any]  # the child's outcome line, parsed; {} when it wrote none
    peak_rss_mb: float


@dataclass(frozen=True)
class Limits:
    """The limits a kill enforced, for the messages (and the host, for a shutdown)."""

    max_rss_mb: float
    timeout_seconds: float
    host: str


@dataclass(frozen=True)
class Outcome:
    """How a job ended. status None: it ended elsewhere, and only its TTLs are left to set."""

    status: Status | None
    peak_rss_mb: float | None = None
    error_code: str | None = None
    error_message: str | None = None
    result_json: str | None = None

    @classmethod
    def failed(cls, code: str, message: str, peak_rss_mb: float | None = None) -> Outcome:
        return cls(Status.FAILED, peak_rss_mb, code, message)

    @property
    def label(self) -> str:
        """The status for log lines ('superseded' when there is none to write)."""
        return self.status or KillReason.SUPERSEDED

    def fields(self) -> dict[str, Any]:
        """The hash fields this outcome writes beside status and finished_at."""
        values = {
            "peak_rss_mb": self.peak_rss_mb,
            "error_code": self.error_code,
            "error_message": self.error_message,
            "result": self.result_json,
        }
        return {name: value for name, value in values.items() if value is not None}


def parse_report(output: bytes) -> dict[str, Any]:
    """The child's last stdout line as a dict; {} if it wrote nothing usable (it died mid-write)."""
    lines = output.strip().splitlines()
    if not lines:
        return {}
    try:
        report = json.loads(lines[-1])
    except ValueError:
        return {}
    return report if isinstance(report, dict) else {}


def decide(ended: ChildExit, kill: Kill | None, limits: Limits) -> Outcome:
    pid, peak = ended.pid, round(ended.peak_rss_mb, 1)
    reported = ended.report.get("status")
    reason = kill.reason if kill else None
    if reason is KillReason.CANCEL or (reason is None and reported == Status.CANCELLED):
        return Outcome(Status.CANCELLED, peak)
    if reason is KillReason.SUPERSEDED:
        return Outcome(None, peak)
    if kill is not None and reason is KillReason.MEMORY:
        return Outcome.failed(
            JOB_MEMORY_LIMIT,
            f"the job's processes used {kill.rss_mb:.0f} MB, over the limit of {limits.max_rss_mb:.0f} MB "
            f"(peak RSS {peak:.0f} MB); child pid {pid} was terminated",
            peak,
        )
    if reason is KillReason.TIMEOUT:
        message = f"the job ran longer than {limits.timeout_seconds:g} s; child pid {pid} was terminated"
        return Outcome.failed(JOB_TIMEOUT, message, peak)
    if reason is KillReason.SHUTDOWN:
        message = f"the supervisor of host {limits.host} shut down before the job ended; child pid {pid} was terminated"
        return Outcome.failed(JOB_INTERRUPTED, message, peak)
    if reported == Status.FINISHED:
        return Outcome(Status.FINISHED, peak, result_json=ended.report.get("result_json", "null"))
    if reported == Status.FAILED:
        code = str(ended.report.get("code") or JOB_FAILED)
        message = str(ended.report.get("message", ""))
        if code == JOB_MEMORY_LIMIT:  # the child stopped at its soft limit: say how high it got
            message = f"{message} (peak RSS {peak:.0f} MB)"
        return Outcome.failed(code, message, peak)
    if ended.code is not None and ended.code < 0:
        try:
            name = signal.Signals(-ended.code).name
        except ValueError:
            name = f"signal {-ended.code}"
        message = f"child pid {pid} died from signal {name} without reporting an outcome (peak RSS {peak:.0f} MB)"
        return Outcome.failed(JOB_WORKER_DIED, message, peak)
    return Outcome.failed(
        JOB_WORKER_DIED, f"child pid {pid} exited with code {ended.code} without reporting an outcome", peak
    )
