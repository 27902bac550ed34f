"""A job's NDJSON stream: read it line by line (each with its arrival time), and check its grammar."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import httpx


@dataclass
class Line:
    at: float  # time.monotonic() when the line arrived
    raw: bytes
    obj: dict[str, Any]


def read_stream(
    base_url: str,
    job_id: str,
    params: dict[str, Any] | None = None,
    *,
    deadline: float = 60.0,
    stop_after: Any = None,
    on_line: Any = None,
) -> list[Line]:
    """Every line of a job's stream (each parsed, with its arrival time), within `deadline` seconds.

    `stop_after(line) -> bool` ends the read early (the connection is dropped, as a client that
    goes away would); `on_line(line)` runs for every line as it arrives.
    """
    lines: list[Line] = []
    end = time.monotonic() + deadline
    with httpx.Client(base_url=base_url, timeout=httpx.Timeout(30.0, read=20.0)) as client:
        with client.stream("GET", f"/api/trace/job/{job_id}/stream", params=params) as response:
            assert response.status_code == 200, response.read()[:500]
            assert response.headers["content-type"].startswith("application/x-ndjson")
            for raw in response.iter_lines():
                line = Line(time.monotonic(), raw.encode(), json.loads(raw))
                lines.append(line)
                if on_line is not None:
                    on_line(line)
                if stop_after is not None and stop_after(line):
                    break
                assert time.monotonic() < end, f"the stream of {job_id} ran past {deadline} s"
    return lines


@dataclass
class StreamCheck:
    """What a well-formed stream held: records per domain, and the last line."""

    meta: dict[str, Any]
    records: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    batches: dict[str, list[int]] = field(default_factory=dict)
    last: dict[str, Any] = field(default_factory=dict)


def check_stream(
    lines: list[Line],
    chunk_size: int,
    *,
    start_domain: str | None = None,
    from_batch: int = 0,
    expect_end: str = "complete",
) -> StreamCheck:
    """Assert the NDJSON grammar of a stream (optionally resumed) and return what it carried.

    meta first; progress keep-alives anywhere after it (checked and skipped); per domain
    domain_start (not for a mid-domain resume), records with consecutive batch numbers,
    count <= chunk_size and count == len(data), domain_end with the sum of the counts; the last
    line is `complete` with the sum over all domains (or an error line, if expect_end="error").
    """
    assert lines, "empty stream"
    objs = [line.obj for line in lines]
    for obj in objs:
        if obj["type"] == "progress":
            assert obj["status"] in ("queued", "started") and isinstance(obj["progress"], dict), obj
    body = [o for o in objs if o["type"] != "progress"]
    meta = body[0]
    assert meta["type"] == "meta" and set(meta) == {"type", "job_id", "profile", "domains", "cid_count"}, meta
    check = StreamCheck(meta=meta, last=body[-1])
    domains = meta["domains"]
    first = domains.index(start_domain) if start_domain else 0
    pos = 1
    complete_total = 0
    for d_index, domain in enumerate(domains[first:], start=first):
        n = from_batch if (start_domain is not None and d_index == first) else 0
        if n == 0:
            if pos == len(body) and expect_end == "error":
                break
            assert body[pos] == {"type": "domain_start", "domain": domain}, (pos, body[pos])
            pos += 1
        recs: list[dict[str, Any]] = []
        batches: list[int] = []
        check.records[domain] = recs
        check.batches[domain] = batches
        while pos < len(body) and body[pos]["type"] == "records":
            line = body[pos]
            head = {k: v for k, v in line.items() if k != "data"}
            assert line["domain"] == domain and line["batch"] == n, (domain, n, head)
            assert 1 <= line["count"] <= chunk_size and line["count"] == len(line["data"]), line["count"]
            recs.extend(line["data"])
            batches.append(n)
            n += 1
            pos += 1
        if pos == len(body) or body[pos]["type"] == "error":
            assert expect_end == "error", f"stream ended early in {domain}: {body[pos:]}"
            break
        end_line = body[pos]
        assert end_line["type"] == "domain_end" and end_line["domain"] == domain, end_line
        # Every chunk but a domain's last is full, so a resumed domain's total is known too.
        skipped = from_batch * chunk_size if (start_domain is not None and d_index == first) else 0
        assert end_line["total_records"] == skipped + len(recs), (domain, end_line, skipped, len(recs))
        complete_total += end_line["total_records"]
        pos += 1
    if expect_end == "complete":
        assert pos == len(body) - 1, f"lines after the last domain: {body[pos:]}"
        last = body[-1]
        assert last["type"] == "complete" and set(last) == {"type", "total_records", "elapsed_seconds"}, last
        if start_domain is None:
            assert last["total_records"] == complete_total == sum(len(r) for r in check.records.values())
    else:
        assert body[-1]["type"] == "error", body[-1]
        assert pos == len(body) - 1, f"lines after the error: {body[pos:]}"
    return check
