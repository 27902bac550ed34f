"""Turn a job's raw hash into the status document the API returns (pure, shared by sync and async)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

from jobs.store import s


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


def build_status(
    job_id: str, raw: dict[Any, Any], queue_position: int | None, at: float | None = None
) -> dict[str, Any]:
    """The status document of one job from its hash fields.

    elapsed_seconds counts from submission to the end (or to now while the job is active);
    run_seconds from start to end. queue_position is the number of jobs ahead (0 = next).
    """
    fields = {s(k): s(v) for k, v in raw.items()}
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
    if status == "queued":
        doc["queue_position"] = queue_position
    if status == "started":
        doc["host"] = fields.get("host") or None
        doc["pid"] = _int(fields.get("pid"))
    if status == "failed":
        doc["error"] = {"code": fields.get("error_code") or None, "message": fields.get("error_message") or ""}
    if status == "finished":
        text = fields.get("result")
        doc["result"] = json.loads(text) if text else None
    return doc
