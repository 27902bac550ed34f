"""NDJSON lines of a job stream. Records lines splice a chunk's stored bytes unparsed.

Line types, in order: meta; per domain domain_start, records..., domain_end; complete (the
MSD aggregation will add an aggregation line before complete; clients already accept one).
A stream that cannot complete ends with an error line.
Progress lines {"type":"progress","status","progress":{phase,done,total,records}} are
keep-alives: one at once when the job has written nothing yet (queued, or its child is
starting), so that the response head goes out without waiting, then one every
TRACE_STREAM_KEEPALIVE_SECONDS while nothing new lands. They may appear anywhere before the
last line, before meta included; clients may ignore them.
"""

from __future__ import annotations

from typing import Any

import ujson

JSONL = "application/x-ndjson"


def line(obj: dict[str, Any]) -> bytes:
    return ujson.dumps(obj, ensure_ascii=False).encode() + b"\n"


def meta(job_id: str, profile: str, domains: list[str], cid_count: int, **extra: Any) -> bytes:
    return line({"type": "meta", "job_id": job_id, "profile": profile, "domains": domains, "cid_count": cid_count,
                 **extra})


def domain_start(domain: str) -> bytes:
    return line({"type": "domain_start", "domain": domain})


def records(domain: str, chunk_no: int, count: int, chunk: bytes) -> bytes:
    # The chunk is a JSON array exactly as the job child stored it: no parse, no re-encode.
    # Its number goes out as `batch`, the public name of the field.
    head = ujson.dumps({"type": "records", "domain": domain, "batch": chunk_no, "count": count}).encode()
    return head[:-1] + b',"data":' + chunk + b"}\n"


def domain_end(domain: str, total_records: int) -> bytes:
    return line({"type": "domain_end", "domain": domain, "total_records": total_records})


def aggregation(analysis_id: str, encoded: bytes) -> bytes:
    """The MSD aggregation line: the stored (encoded once) aggregation spliced in, not re-encoded."""
    head = ujson.dumps({"type": "aggregation", "analysis_id": analysis_id}).encode()
    return head[:-1] + b',"data":' + encoded + b"}\n"


def complete(total_records: int, elapsed_seconds: float | None) -> bytes:
    return line({"type": "complete", "total_records": total_records, "elapsed_seconds": elapsed_seconds})


def error(code: str, message: str) -> bytes:
    return line({"type": "error", "code": code, "message": message})


def progress(status: str, progress_fields: dict[str, Any] | None) -> bytes:
    return line({"type": "progress", "status": status, "progress": progress_fields or {}})
