"""A job slot: one job running in one child, and how the supervisor is ending it, if it is.

Ending is two steps: SIGTERM with a grace (the job may stop cleanly and report), then SIGKILL.
The slot remembers why the kill was decided and the RSS at that moment: a dying process reads
as 0 MB, and jobs.outcome needs the figure that triggered the kill.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from jobs.config import PoolConfig
from jobs.outcome import Kill, KillReason
from jobs.process import ChildProcess
from jobs.store import StartedJob

# A cancelled job's child gets at most this long between SIGTERM and SIGKILL: the user is waiting.
CANCEL_KILL_GRACE = 0.5


@dataclass
class Slot:
    job: StartedJob
    child: ChildProcess
    started: float  # monotonic
    kill: Kill | None = None
    kill_sent: float = 0.0
    kill_grace: float = 0.0
    killed_hard: bool = False

    def limit_passed(self, now: float, config: PoolConfig) -> KillReason | None:
        """Memory or timeout, if the running job just went over one (None once a kill is under way)."""
        if self.kill is not None:
            return None
        if self.child.rss_mb > config.max_rss_mb:
            return KillReason.MEMORY
        if now - self.started > config.job_timeout_seconds:
            return KillReason.TIMEOUT
        return None

    def begin_kill(self, reason: KillReason, kill_grace_seconds: float) -> None:
        """SIGTERM now; hard_kill_due() says when the grace is over."""
        self.kill = Kill(reason, self.child.rss_mb)
        self.kill_sent = time.monotonic()
        cancel = reason is KillReason.CANCEL
        self.kill_grace = min(CANCEL_KILL_GRACE, kill_grace_seconds) if cancel else kill_grace_seconds
        self.child.terminate()

    def hard_kill_due(self, now: float) -> bool:
        return self.kill is not None and not self.killed_hard and now - self.kill_sent >= self.kill_grace

    def kill_hard(self) -> None:
        self.killed_hard = True
        self.child.kill()

    def row(self, now: float) -> dict[str, Any]:
        """This slot in the host report (pool_state's `running`)."""
        child = self.child
        return {
            "job_id": self.job.job_id,
            "kind": self.job.kind,
            "pid": child.pid,
            "rss_mb": round(child.rss_mb, 1),
            "peak_rss_mb": round(child.peak_rss_mb, 1),
            "run_seconds": round(now - self.started, 3),
        }
