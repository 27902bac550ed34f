"""The five states of a job, by name.

    queued ──► started ──► finished | failed
       │           │
       └───────────┴──► cancelled

A StrEnum, so a member *is* its string: it goes into Redis, JSON and log lines as the plain word,
and a status read back as text compares and hashes equal to its member (`"queued" in ACTIVE`).
"""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    QUEUED = "queued"
    STARTED = "started"
    FINISHED = "finished"
    FAILED = "failed"
    CANCELLED = "cancelled"


# Still going: a reader waits on it, a cancel applies to it.
ACTIVE: frozenset[Status] = frozenset({Status.QUEUED, Status.STARTED})
# Over for good: no transition leaves these.
TERMINAL: frozenset[Status] = frozenset({Status.FINISHED, Status.FAILED, Status.CANCELLED})
