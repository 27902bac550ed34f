"""How an exit becomes an outcome (jobs.outcome.decide): a table, and no process spawned."""

from __future__ import annotations

import json
from typing import Any

import pytest

from jobs import JOB_FAILED, JOB_INTERRUPTED, JOB_MEMORY_LIMIT, JOB_TIMEOUT, JOB_WORKER_DIED, Status
from jobs.outcome import ChildExit, Kill, KillReason, Limits, Outcome, decide, parse_report

LIMITS = Limits(max_rss_mb=150, timeout_seconds=1.5, host="h1")
PID = 4242
PEAK = 163.27  # written rounded to 0.1 MB, printed to the MB
FINISHED = {"status": "finished", "result_json": '{"n":1}'}

CASES: list[tuple[str, int | None, dict[str, Any], Kill | None, Outcome]] = [
    # id, exit code, report, kill, outcome
    ("finished", 0, FINISHED, None, Outcome(Status.FINISHED, 163.3, result_json='{"n":1}')),
    ("finished without a result", 0, {"status": "finished"}, None, Outcome(Status.FINISHED, 163.3, result_json="null")),
    ("failed with the job's code", 0, {"status": "failed", "code": "TRACE_NO_DATA", "message": "nothing"}, None,
     Outcome.failed("TRACE_NO_DATA", "nothing", 163.3)),
    ("failed without a code", 0, {"status": "failed", "message": "ValueError: x"}, None,
     Outcome.failed(JOB_FAILED, "ValueError: x", 163.3)),
    ("soft memory limit: the peak is added", 0, {"status": "failed", "code": JOB_MEMORY_LIMIT, "message": "soft"}, None,
     Outcome.failed(JOB_MEMORY_LIMIT, "soft (peak RSS 163 MB)", 163.3)),
    ("cancelled, noticed by the job", 0, {"status": "cancelled"}, None, Outcome(Status.CANCELLED, 163.3)),
    ("cancel kill beats a late report", 0, FINISHED, Kill(KillReason.CANCEL, 90), Outcome(Status.CANCELLED, 163.3)),
    ("ended elsewhere: nothing to write", -15, {}, Kill(KillReason.SUPERSEDED, 90), Outcome(None, 163.3)),
    ("memory kill", -15, {}, Kill(KillReason.MEMORY, 151.4),
     Outcome.failed(JOB_MEMORY_LIMIT, "the job's processes used 151 MB, over the limit of 150 MB (peak RSS 163 MB); "
                    "child pid 4242 was terminated", 163.3)),
    ("memory kill beats the child's own report", 1, {"status": "cancelled"}, Kill(KillReason.MEMORY, 151.4),
     Outcome.failed(JOB_MEMORY_LIMIT, "the job's processes used 151 MB, over the limit of 150 MB (peak RSS 163 MB); "
                    "child pid 4242 was terminated", 163.3)),
    ("timeout kill", -9, {}, Kill(KillReason.TIMEOUT, 40),
     Outcome.failed(JOB_TIMEOUT, "the job ran longer than 1.5 s; child pid 4242 was terminated", 163.3)),
    ("shutdown kill", -15, FINISHED, Kill(KillReason.SHUTDOWN, 40),
     Outcome.failed(JOB_INTERRUPTED, "the supervisor of host h1 shut down before the job ended; child pid 4242 was "
                    "terminated", 163.3)),
    ("killed from outside", -9, {}, None,
     Outcome.failed(JOB_WORKER_DIED, "child pid 4242 died from signal SIGKILL without reporting an outcome "
                    "(peak RSS 163 MB)", 163.3)),
    ("an unknown signal", -99, {}, None,
     Outcome.failed(JOB_WORKER_DIED, "child pid 4242 died from signal signal 99 without reporting an outcome "
                    "(peak RSS 163 MB)", 163.3)),
    ("exited without a report", 3, {}, None,
     Outcome.failed(JOB_WORKER_DIED, "child pid 4242 exited with code 3 without reporting an outcome", 163.3)),
    ("exit 0 without a report", 0, {}, None,
     Outcome.failed(JOB_WORKER_DIED, "child pid 4242 exited with code 0 without reporting an outcome", 163.3)),
]  # fmt: skip


@pytest.mark.parametrize(("code", "report", "kill", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_decide(code: int | None, report: dict[str, Any], kill: Kill | None, expected: Outcome) -> None:
    assert decide(ChildExit(PID, code, report, PEAK), kill, LIMITS) == expected


def test_the_hash_fields_an_outcome_writes() -> None:
    assert Outcome(Status.FINISHED, 12.5, result_json="null").fields() == {"peak_rss_mb": 12.5, "result": "null"}
    failed = Outcome.failed(JOB_TIMEOUT, "m", 3.0)
    assert failed.fields() == {"peak_rss_mb": 3.0, "error_code": JOB_TIMEOUT, "error_message": "m"}
    no_child = Outcome.failed(JOB_FAILED, "no job function")  # nothing ran: no peak to report
    assert no_child.fields() == {"error_code": JOB_FAILED, "error_message": "no job function"}
    assert (Outcome(None).label, failed.label) == ("superseded", "failed")


@pytest.mark.parametrize(
    ("output", "report"),
    [
        (b"", {}),
        (b"\n  \n", {}),
        (json.dumps(FINISHED).encode() + b"\n", FINISHED),
        (b'{"status": "failed"}\n' + json.dumps(FINISHED).encode(), FINISHED),  # the last line counts
        (b'{"status": "fini', {}),  # died mid-write
        (b"[1, 2]\n", {}),  # not an object
    ],
)
def test_parse_report(output: bytes, report: dict[str, Any]) -> None:
    assert parse_report(output) == report
