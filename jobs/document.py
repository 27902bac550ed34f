"""The documents the pool shows its callers, built from what Redis holds (pure functions).

`job_document` turns a job's hash into the status document of the API; `host_report` is what a
supervisor writes about its host each round and `pool_document` how callers read those reports
back. The HTTP API shows these shapes as they are: change them only together with docs/api.md.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from jobs.plan import text
from jobs.status import Status


def iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _float(value: str | None) -> float | None:
    if value in (None, ""):
        return None
    try:
        return float(value)
    except ValueError:
        return None


def _int(value: str | None) -> int | None:
    number = _float(value)
    return None if number is None else int(number)


def job_document(
    job_id: str, raw: dict[Any, Any], queue_position: int | None, at: float | None = None
) -> dict[str, Any]:
    """The status document of one job from its hash fields (bytes or str).

    elapsed_seconds counts from submission to the end (or to now while the job is active);
    run_seconds from start to end. queue_position is the number of jobs ahead (0 = next).
    """
    fields = {text(k): text(v) for k, v in raw.items()}
    at = time.time() if at is None else at
    status = fields.get("status", "")
    created = _float(fields.get("created_at"))
    started = _float(fields.get("started_at"))
    finished = _float(fields.get("finished_at"))
    end = finished if finished is not None else at
    doc: dict[str, Any] = {
        "job_id": job_id,
        "kind": fields.get("kind") or None,
        "status": status,
        "progress": {
            "phase": fields.get("phase") or None,
            "done": _int(fields.get("done")),
            "total": _int(fields.get("total")),
            "records": _int(fields.get("records")),
        },
        "created_at": iso(created),
        "started_at": iso(started),
        "finished_at": iso(finished),
        "elapsed_seconds": round(max(0.0, end - created), 3) if created is not None else None,
        "run_seconds": round(max(0.0, end - started), 3) if started is not None else None,
        "peak_rss_mb": _float(fields.get("peak_rss_mb")),
    }
    if status == Status.QUEUED:
        doc["queue_position"] = queue_position
    if status == Status.STARTED:
        doc["host"] = fields.get("host") or None
        doc["pid"] = _int(fields.get("pid"))
    if status == Status.FAILED:
        doc["error"] = {"code": fields.get("error_code") or None, "message": fields.get("error_message") or ""}
    if status == Status.FINISHED:
        result = fields.get("result")
        doc["result"] = json.loads(result) if result else None
    return doc


def host_report(
    host: str,
    pid: int,
    available_mb: float | None,
    holding_for_memory: bool,
    slot_count: int,
    running: Sequence[dict[str, Any]],
) -> dict[str, Any]:
    """What a supervisor publishes about its host each round (read back by pool_document).

    `slot_count` is published as `worker_count`: the name callers already read.
    """
    return {
        "host": host,
        "pid": pid,
        "updated_at": time.time(),
        "available_mb": None if available_mb is None else round(available_mb, 1),
        "holding_for_memory": holding_for_memory,
        "worker_count": slot_count,
        "running": list(running),
    }


def pool_document(queued: int, hosts: list[str], reports: list[Any], alive: list[Any]) -> dict[str, Any]:
    """{"queued": n, "hosts": [...]} from the queue length and each host's last report and heartbeat."""
    entries = []
    for host, raw, beat in zip(hosts, reports, alive, strict=True):
        report = json.loads(text(raw)) if raw else {}
        entries.append(
            {
                "host": host,
                "alive": bool(beat),
                "available_mb": report.get("available_mb"),
                "holding_for_memory": report.get("holding_for_memory"),
                "worker_count": report.get("worker_count"),
                "supervisor_pid": report.get("pid"),
                "updated_at": iso(report.get("updated_at")),
                "running": report.get("running", []),
            }
        )
    return {"queued": queued, "hosts": entries}
