"""Async trace jobs end to end: the real `sanic-trace serve` (supervisor, job children), real Redis,
a generated SQLite warehouse. No mocks; every wait has a deadline; every server is stopped and its
job children killed.

Servers (each with its own Redis prefix and host id):
  quick  small chunks (50 records) from small IN-batches and fetches: many chunks from few ids;
  slow   one worker, every stored chunk followed by a 0.2 s pause (TRACE_JOB_STEP_DELAY_SECONDS),
         and a rejects query that fails for one container (TRACE_SQL_OVERRIDE_DIR);
  ttl    TRACE_JOB_TTL_SECONDS=2;
  no-redis  REDIS_URL at a port where nothing listens.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import socket
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from sanic_trace.trace.events import DOMAIN_SPECS
from support.apps import live_server
from support.faults import RedisProxy
from support.processes import pid_gone
from support.redis_keys import job_keys, own_prefix
from support.servers import ServerProcess, free_port, running_server, running_servers
from support.settings import jobs_env, make_settings
from support.streams import check_stream, read_stream
from support.trace_jobs import NotifyListener, events_body, get_status, submit, wait_job
from support.waits import wait_for

QUICK_CHUNK = 50
QUICK_PAGE_MAX = 120
QUICK_THRESHOLD = 200
QUICK_KEEPALIVE = 0.5
SLOW_CHUNK = 50
SLOW_DELAY = 0.2
JOB_DEADLINE = 60.0

STATUS_FIELDS = {"job_id", "kind", "status", "progress", "created_at", "elapsed_seconds", "peak_rss_mb", "result"}
PROGRESS_FIELDS = {"phase", "done", "total", "records"}


# --- servers and data ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ids(demo_container_ids_60k: list[str]) -> list[str]:
    return demo_container_ids_60k


@pytest.fixture(scope="module")
def quick(demo_warehouse_60k: Path, redis_url: str) -> Iterator[ServerProcess]:
    with own_prefix(redis_url) as prefix:
        env = jobs_env(
            demo_warehouse_60k,
            redis_url,
            prefix,
            TRACE_ASYNC_CID_THRESHOLD=QUICK_THRESHOLD,
            TRACE_STREAM_BATCH_SIZE=QUICK_CHUNK,
            DB_IN_BATCH_SIZE=40,
            DB_FETCHMANY_SIZE=30,
            TRACE_RESULT_PAGE_MAX_LIMIT=QUICK_PAGE_MAX,
            TRACE_WORKER_COUNT=2,
            TRACE_STREAM_KEEPALIVE_SECONDS=QUICK_KEEPALIVE,
        )
        with running_server(env) as server:
            server.prefix = prefix  # type: ignore[attr-defined]
            yield server


@pytest.fixture(scope="module")
def reject_ids(demo_warehouse_60k: Path) -> list[str]:
    """120 containers that each have reject rows, sorted (the order the job queries them in)."""
    with sqlite3.connect(f"file:{demo_warehouse_60k}?mode=ro", uri=True) as db:
        rows = db.execute(
            "SELECT DISTINCT CONTAINERID FROM DW_MES_LOTREJECTHISTORY ORDER BY CONTAINERID LIMIT 120"
        ).fetchall()
    assert len(rows) == 120
    return [r[0] for r in rows]


# The rejects query made to fail at run time for one container only: json() of a non-JSON text
# raises "malformed JSON" when SQLite evaluates it, i.e. in the IN-batch holding {target}.
FAIL_FOR_TARGET = """
SELECT R.CONTAINERID AS CONTAINERID, R.REJECTHISTORYID AS REJECTHISTORYID
FROM DWH.DW_MES_LOTREJECTHISTORY R
WHERE R.CONTAINERID IN (:ids)
  AND CASE WHEN R.CONTAINERID = '{target}' THEN json('{{' || R.CONTAINERID) ELSE 1 END = 1
ORDER BY R.CONTAINERID, R.REJECTHISTORYID
"""
FAIL_TARGET_INDEX = 105  # in the 11th IN-batch of 10: some chunks are stored before it fails


@pytest.fixture(scope="module")
def slow(
    demo_warehouse_60k: Path,
    redis_url: str,
    reject_ids: list[str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[ServerProcess]:
    override = tmp_path_factory.mktemp("sql-override")
    sql = FAIL_FOR_TARGET.format(target=reject_ids[FAIL_TARGET_INDEX])
    (override / f"{DOMAIN_SPECS['rejects'].sql_name}.sql").write_text(sql)
    with own_prefix(redis_url) as prefix:
        env = jobs_env(
            demo_warehouse_60k,
            redis_url,
            prefix,
            TRACE_ASYNC_CID_THRESHOLD=5,
            TRACE_STREAM_BATCH_SIZE=SLOW_CHUNK,
            DB_IN_BATCH_SIZE=10,
            DB_FETCHMANY_SIZE=25,
            TRACE_WORKER_COUNT=1,
            TRACE_JOB_STEP_DELAY_SECONDS=SLOW_DELAY,
            # Longer than the 1 s a chunk may take to reach a reader: only notifications can meet it.
            TRACE_STREAM_KEEPALIVE_SECONDS=5,
            TRACE_SQL_OVERRIDE_DIR=str(override),
        )
        with running_server(env) as server:
            server.prefix = prefix  # type: ignore[attr-defined]
            yield server


@pytest.fixture(scope="module")
def quick_job(quick: ServerProcess, ids: list[str]) -> dict[str, Any]:
    """A finished job of 600 ids over four domains (two of them sparse), and its full stream."""
    job_id = submit(quick, ids[1000:1600], ["history", "materials", "holds", "jobs"])
    status = wait_job(quick, job_id, "finished", JOB_DEADLINE)
    lines = read_stream(quick.base_url, job_id)
    return {"job_id": job_id, "status": status, "lines": lines, "check": check_stream(lines, QUICK_CHUNK)}


def error_of(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert body["success"] is False, body
    return body["error"]


# --- submission ----------------------------------------------------------------------------------
def test_a_request_over_the_threshold_is_a_job_and_one_at_it_is_inline(quick: ServerProcess, ids: list[str]) -> None:
    at = quick.client.post("/api/trace/events", json=events_body(ids[:QUICK_THRESHOLD], ["materials"]))
    assert at.status_code == 200, at.text[:300]
    assert at.headers["x-trace-path"] == "inline"
    inline = at.json()
    assert inline["stage"] == "events" and inline["results"]["materials"]["count"] > 0

    over = quick.client.post("/api/trace/events", json=events_body(ids[: QUICK_THRESHOLD + 1], ["materials"]))
    assert over.status_code == 202, over.text[:300]
    assert over.headers["x-trace-path"] == "job"
    body = over.json()
    job_id = body["job_id"]
    assert len(job_id) == 32 and all(c in "0123456789abcdef" for c in job_id)
    base = f"/api/trace/job/{job_id}"
    assert body == {
        "stage": "events",
        "async": True,
        "job_id": job_id,
        "status_url": base,
        "stream_url": f"{base}/stream",
        "result_url": f"{base}/result",
    }
    assert over.headers["location"] == base
    status = wait_job(quick, job_id, "finished", JOB_DEADLINE)
    assert status["kind"] == "trace-events"
    assert status["result"]["domains"]["materials"]["records"] > inline["results"]["materials"]["count"]


# --- status --------------------------------------------------------------------------------------
def test_status_goes_queued_started_finished_with_its_fields(slow: ServerProcess, ids: list[str]) -> None:
    first = submit(slow, ids[:80], ["history"])  # ~14 chunks x 0.2 s: occupies the only worker
    wait_job(slow, first, "started", 20)
    # The pool marks a job started when it takes it; its pid follows once the child exists.
    running = wait_for(lambda: (s := get_status(slow, first))["pid"] and s, 10, "the first job's pid")
    second = submit(slow, ids[80:90], ["history", "materials"])
    # A stream opened while the job waits answers at once (a progress line; the keep-alive
    # interval is 5 s), then follows the job to its end.
    opened = time.monotonic()
    stream: list[Any] = []
    reader = threading.Thread(
        target=lambda: stream.extend(read_stream(slow.base_url, second, deadline=JOB_DEADLINE)), daemon=True
    )
    reader.start()

    seen: list[dict[str, Any]] = []

    def second_ended() -> bool:
        seen.append(get_status(slow, second))
        return seen[-1]["status"] in ("finished", "failed", "cancelled")

    wait_for(second_ended, JOB_DEADLINE, "the second job to end", interval=0.02)
    order = [s["status"] for s in seen]
    compressed = [s for i, s in enumerate(order) if i == 0 or order[i - 1] != s]
    assert compressed == ["queued", "started", "finished"], compressed

    queued = next(s for s in seen if s["status"] == "queued")
    assert STATUS_FIELDS <= set(queued) and queued["queue_position"] == 0
    assert queued["result"] is None  # nothing written yet
    assert not queued.get("started_at") and not queued.get("finished_at")

    # The first job, seen while it ran.
    assert STATUS_FIELDS <= set(running) and {"host", "pid", "started_at"} <= set(running)
    assert running["host"] == slow.env["TRACE_HOST_ID"] and isinstance(running["pid"], int)
    assert set(running["progress"]) >= PROGRESS_FIELDS

    started = [s for s in seen if s["status"] == "started"]
    for s in started:
        assert s["host"] == slow.env["TRACE_HOST_ID"] and s["started_at"] and "pid" in s
    assert any(isinstance(s["pid"], int) for s in started)
    finished = seen[-1]
    assert STATUS_FIELDS <= set(finished) and finished["finished_at"] and finished["started_at"]
    assert finished["peak_rss_mb"] > 0
    result = finished["result"]
    assert set(result) == {"domains", "total_records"}
    assert set(result["domains"]) == {"history", "materials"}
    for name, d in result["domains"].items():
        assert set(d) == {"records", "chunks", "done"} and d["done"] is True, name
        assert d["chunks"] == -(-d["records"] // SLOW_CHUNK), (name, d)
    assert result["total_records"] == sum(d["records"] for d in result["domains"].values()) > 0
    assert finished["progress"]["records"] == result["total_records"]
    assert finished["progress"]["done"] == finished["progress"]["total"]
    wait_job(slow, first, "finished", JOB_DEADLINE)

    reader.join(JOB_DEADLINE)
    assert not reader.is_alive() and stream, "the stream of the queued job did not end"
    assert stream[0].obj["type"] == "progress" and stream[0].obj["status"] == "queued", stream[0].obj
    assert stream[0].at - opened < 2.0, f"the first line took {stream[0].at - opened:.1f} s"
    assert check_stream(stream, SLOW_CHUNK).last["total_records"] == result["total_records"]


def test_result_of_an_unfinished_job_is_409_with_its_status(slow: ServerProcess, ids: list[str]) -> None:
    job_id = submit(slow, ids[200:260], ["history"])
    wait_job(slow, job_id, ("queued", "started"), 5)
    response = slow.client.get(f"/api/trace/job/{job_id}/result")
    assert response.status_code == 409
    error = error_of(response)
    assert error["code"] == "JOB_NOT_COMPLETE" and error["status"] in ("queued", "started")
    page = slow.client.get(f"/api/trace/job/{job_id}/result", params={"domain": "history", "offset": 0})
    assert page.status_code == 409 and error_of(page)["code"] == "JOB_NOT_COMPLETE"
    wait_job(slow, job_id, "finished", JOB_DEADLINE)


# --- the stream ----------------------------------------------------------------------------------
def test_stream_lines_are_in_order_with_consistent_counts(quick: ServerProcess, quick_job: dict[str, Any]) -> None:
    check = quick_job["check"]
    status = quick_job["status"]
    assert check.meta == {
        "type": "meta",
        "job_id": quick_job["job_id"],
        "profile": "query_tool",
        "domains": ["history", "materials", "holds", "jobs"],
        "cid_count": 600,
    }
    for domain, summary in status["result"]["domains"].items():
        assert len(check.records[domain]) == summary["records"], domain
        assert check.batches[domain] == list(range(summary["chunks"])), domain
    assert len(check.batches["history"]) > 50  # many chunks, crossing IN-batch and fetch boundaries
    assert check.last["total_records"] == status["result"]["total_records"]
    # Each container's records come together.
    for records in check.records.values():
        cids = [r["CONTAINERID"] for r in records]
        runs = [c for i, c in enumerate(cids) if i == 0 or cids[i - 1] != c]
        assert len(runs) == len(set(runs)), "a container's records are split"


def test_a_live_stream_sends_each_chunk_within_a_second_of_it_being_stored(
    slow: ServerProcess, ids: list[str], redis_url: str
) -> None:
    job_id = submit(slow, ids[300:380], ["history", "materials"])
    listener = NotifyListener(redis_url, slow.prefix, job_id)  # type: ignore[attr-defined]
    status_at_first_records: list[str] = []

    def on_line(line: Any) -> None:
        if line.obj["type"] == "records" and not status_at_first_records:
            status_at_first_records.append(get_status(slow, job_id)["status"])

    try:
        lines = read_stream(slow.base_url, job_id, deadline=JOB_DEADLINE, on_line=on_line)
    finally:
        listener.close()
    check = check_stream(lines, SLOW_CHUNK)
    assert status_at_first_records == ["started"], "the first records line came only after the job ended"
    records_lines = [line for line in lines if line.obj["type"] == "records"]
    assert len(records_lines) >= 12
    lags = []
    for line in records_lines:
        stored = listener.chunks.get((line.obj["domain"], line.obj["batch"]))
        if stored is not None:
            lags.append(line.at - stored)
    # The subscription starts right after the 202, before the child has even started.
    assert len(lags) >= len(records_lines) - 1, (len(lags), len(records_lines))
    assert max(lags) < 1.0, f"a chunk reached the client {max(lags):.2f} s after it was stored"
    # Lines arrive paced by the job (one chunk per 0.2 s), not in a burst at the end.
    gaps = [b.at - a.at for a, b in zip(records_lines, records_lines[1:], strict=False)]
    assert sorted(gaps)[len(gaps) // 2] > SLOW_DELAY * 0.5, gaps
    assert records_lines[-1].at - records_lines[0].at > SLOW_DELAY * (len(records_lines) - 2) * 0.7
    assert check.last["total_records"] == get_status(slow, job_id)["result"]["total_records"]


def test_a_live_stream_keeps_the_connection_alive_while_no_chunk_lands(
    ids: list[str], demo_warehouse_60k: Path, redis_url: str
) -> None:
    # A job that stores nothing for a long time, made so on purpose rather than by a slow query:
    # over ids that no maintenance job names, the `jobs` domain yields no record, and every IN-batch
    # is followed by a pause. 12 IN-batches x 0.5 s keep the job running for about 6 s — 12
    # keep-alive intervals — during which only keep-alives can reach the reader.
    with sqlite3.connect(f"file:{demo_warehouse_60k}?mode=ro", uri=True) as db:
        lists = [row[0] for row in db.execute("SELECT CONTAINERIDS FROM DW_MES_JOB")]
    named = {cid for text in lists for cid in text.split(",")}
    unnamed = [cid for cid in ids[5000:] if cid not in named][:120]
    assert len(unnamed) == 120
    with own_prefix(redis_url) as prefix:
        env = jobs_env(
            demo_warehouse_60k,
            redis_url,
            prefix,
            TRACE_ASYNC_CID_THRESHOLD=5,
            DB_IN_BATCH_SIZE=10,
            TRACE_JOB_STEP_DELAY_SECONDS=0.5,
            TRACE_STREAM_KEEPALIVE_SECONDS=QUICK_KEEPALIVE,
        )
        with running_server(env) as server:
            job_id = submit(server, unnamed, ["jobs"])
            lines = read_stream(server.base_url, job_id, deadline=JOB_DEADLINE)
            assert check_stream(lines, QUICK_CHUNK).records == {"jobs": []}
            status = get_status(server, job_id)
    gaps = [round(b.at - a.at, 2) for a, b in zip(lines, lines[1:], strict=False)]
    timeline = (status["run_seconds"], [(line.obj["type"], gap) for line, gap in zip(lines[1:], gaps, strict=False)])
    assert status["run_seconds"] >= 12 * 0.5, timeline
    assert max(gaps) < QUICK_KEEPALIVE + 1.0, f"no line for {max(gaps)} s (keep-alive {QUICK_KEEPALIVE} s): {timeline}"
    progress = [line.obj for line in lines if line.obj["type"] == "progress"]
    # 6 s of silence at one keep-alive per 0.5 s: at least half of the 12 that are due.
    assert len(progress) >= 6, timeline
    assert any(p["status"] == "started" and p["progress"].get("phase") == "jobs" for p in progress), progress


def test_a_stream_resumes_after_a_lost_connection_without_repeating_lines(slow: ServerProcess, ids: list[str]) -> None:
    job_id = submit(slow, ids[400:480], ["history", "materials"])
    # Read while the job runs, and drop the connection after batch 3 of history.
    seen = read_stream(
        slow.base_url,
        job_id,
        stop_after=lambda line: line.obj["type"] == "records" and line.obj["batch"] == 3,
    )
    assert seen[-1].obj["batch"] == 3 and get_status(slow, job_id)["status"] == "started"
    resumed = read_stream(slow.base_url, job_id, {"domain": "history", "from_batch": 4}, deadline=JOB_DEADLINE)
    objs = [line.obj for line in resumed if line.obj["type"] != "progress"]
    assert objs[0]["type"] == "meta"
    assert objs[1]["type"] == "records" and objs[1]["batch"] == 4  # no domain_start: mid-domain
    check = check_stream(resumed, SLOW_CHUNK, start_domain="history", from_batch=4)

    full = check_stream(read_stream(slow.base_url, job_id), SLOW_CHUNK)
    before = [r for line in seen if line.obj["type"] == "records" for r in line.obj["data"]]
    assert before + check.records["history"] == full.records["history"]
    assert check.records["materials"] == full.records["materials"]
    assert check.last == full.last


def test_resume_of_a_finished_job_at_a_batch_and_at_a_domain(quick: ServerProcess, quick_job: dict[str, Any]) -> None:
    job_id = quick_job["job_id"]
    full = quick_job["check"]
    n = len(full.batches["history"]) // 2
    mid = read_stream(quick.base_url, job_id, {"domain": "history", "from_batch": n})
    check = check_stream(mid, QUICK_CHUNK, start_domain="history", from_batch=n)
    assert [line.obj["type"] for line in mid[:2]] == ["meta", "records"] and mid[1].obj["batch"] == n
    assert full.records["history"][: n * QUICK_CHUNK] + check.records["history"] == full.records["history"]
    for domain in ("materials", "holds", "jobs"):
        assert check.records[domain] == full.records[domain], domain

    at_domain = read_stream(quick.base_url, job_id, {"domain": "materials"})
    check = check_stream(at_domain, QUICK_CHUNK, start_domain="materials")
    assert at_domain[1].obj == {"type": "domain_start", "domain": "materials"}
    assert "history" not in check.records and check.records["materials"] == full.records["materials"]

    past_end = read_stream(quick.base_url, job_id, {"domain": "history", "from_batch": 10_000})
    assert [line.obj["type"] for line in past_end][:3] == ["meta", "domain_end", "domain_start"]


def test_a_job_that_fails_midway_ends_its_stream_with_the_error(slow: ServerProcess, reject_ids: list[str]) -> None:
    job_id = submit(slow, reject_ids, ["rejects"])
    lines = read_stream(slow.base_url, job_id, deadline=JOB_DEADLINE)
    check = check_stream(lines, SLOW_CHUNK, expect_end="error")
    assert len(check.batches["rejects"]) >= 2, "no chunk was stored before the failure"
    last = check.last
    assert last["code"] == "JOB_FAILED" and "rejects" in last["message"], last
    status = wait_job(slow, job_id, "failed", 10)
    assert status["error"]["code"] == "JOB_FAILED"
    assert "rejects" in status["error"]["message"] and "malformed JSON" in status["error"]["message"]
    assert status["result"]["domains"]["rejects"]["done"] is False
    stored = {r["CONTAINERID"] for r in check.records["rejects"]}
    assert stored and stored <= set(reject_ids[:FAIL_TARGET_INDEX])
    response = slow.client.get(f"/api/trace/job/{job_id}/result")
    assert response.status_code == 409 and error_of(response)["job_error"]["code"] == "JOB_FAILED"


def test_cancel_while_streaming_ends_the_stream_and_deletes_the_data(
    slow: ServerProcess, ids: list[str], redis_client: redis.Redis
) -> None:
    job_id = submit(slow, ids[500:580], ["history"])
    lines: list[Any] = []
    failure: list[BaseException] = []
    first_records = threading.Event()

    def reader() -> None:
        try:

            def on_line(line: Any) -> None:
                if line.obj["type"] == "records":
                    first_records.set()

            lines.extend(read_stream(slow.base_url, job_id, deadline=JOB_DEADLINE, on_line=on_line))
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test thread
            failure.append(exc)
            first_records.set()

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    assert first_records.wait(JOB_DEADLINE), "no records line arrived"
    running = get_status(slow, job_id)
    assert running["status"] == "started"
    child = running["pid"]

    response = slow.client.delete(f"/api/trace/job/{job_id}")
    assert response.status_code == 200
    body = response.json()
    assert body["cancelled"] is True and body["status"] == "cancelled"
    thread.join(10)
    assert not thread.is_alive(), "the stream did not end after the cancel"
    assert not failure, failure
    check = check_stream(lines, SLOW_CHUNK, expect_end="error")
    assert check.last["code"] == "JOB_CANCELLED", check.last
    assert len(check.batches["history"]) >= 1
    assert get_status(slow, job_id)["status"] == "cancelled"

    wait_for(lambda: pid_gone(child), 5, f"job child {child} to exit")
    prefix = slow.prefix  # type: ignore[attr-defined]
    hash_key = f"{prefix}:job:{{{job_id}}}".encode()
    wait_for(lambda: job_keys(redis_client, prefix, job_id) == [hash_key], 5, "the job's data keys to be deleted")


# --- pages ---------------------------------------------------------------------------------------
def test_pages_are_windows_of_the_result_across_chunk_boundaries(
    quick: ServerProcess, quick_job: dict[str, Any]
) -> None:
    job_id = quick_job["job_id"]
    history = quick_job["check"].records["history"]
    total = len(history)
    assert total > 5 * QUICK_CHUNK
    c = QUICK_CHUNK

    def page(domain: str, offset: int | None = None, limit: int | None = None) -> dict[str, Any]:
        params: dict[str, Any] = {"domain": domain}
        if offset is not None:
            params["offset"] = offset
        if limit is not None:
            params["limit"] = limit
        response = quick.client.get(f"/api/trace/job/{job_id}/result", params=params)
        assert response.status_code == 200, response.text[:300]
        return response.json()

    windows = [
        (0, 10),
        (0, c),
        (c - 1, 2),  # the last record of chunk 0 and the first of chunk 1
        (c - 1, 1),
        (c, c),  # exactly chunk 1
        (c + 7, 2 * c + 3),  # three chunks, cut at both ends
        (total - 1, 10),  # the last record
        (total - 3, 3),
        (total - (total % c or c), c),  # the last chunk
    ]
    for offset, limit in windows:
        body = page("history", offset, limit)
        assert body["domain"] == "history" and body["offset"] == offset and body["limit"] == limit
        assert body["total"] == total
        assert body["data"] == history[offset : offset + limit], (offset, limit)

    for offset in (total, total + 1, total + 10_000):
        body = page("history", offset, 5)
        assert body == {"domain": "history", "offset": offset, "limit": 5, "total": total, "data": []}

    capped = page("history", 3, 10_000)
    assert capped["limit"] == QUICK_PAGE_MAX and capped["data"] == history[3 : 3 + QUICK_PAGE_MAX]
    default = page("history")
    assert default["offset"] == 0 and default["limit"] == QUICK_PAGE_MAX
    assert default["data"] == history[:QUICK_PAGE_MAX]
    materials = quick_job["check"].records["materials"]
    assert page("materials", 40, 30)["data"] == materials[40:70]
    holds = quick_job["check"].records["holds"]
    assert page("holds", 0, 100) == {
        "domain": "holds",
        "offset": 0,
        "limit": 100,
        "total": len(holds),
        "data": holds[:100],
    }


def test_a_page_reads_only_the_chunks_of_its_window(
    quick: ServerProcess, ids: list[str], redis_client: redis.Redis
) -> None:
    job_id = submit(quick, ids[2000:2300], ["history"])
    wait_job(quick, job_id, "finished", JOB_DEADLINE)
    full = check_stream(read_stream(quick.base_url, job_id), QUICK_CHUNK).records["history"]
    c = QUICK_CHUNK
    prefix = quick.prefix  # type: ignore[attr-defined]
    assert redis_client.delete(f"{prefix}:job:{{{job_id}}}:chunk:history:0") == 1

    url = f"/api/trace/job/{job_id}/result"
    for offset, limit in ((c, 10), (c, c), (len(full) - 5, 5), (3 * c + 1, 2 * c)):
        response = quick.client.get(url, params={"domain": "history", "offset": offset, "limit": limit})
        assert response.status_code == 200, (offset, response.text[:300])
        assert response.json()["data"] == full[offset : offset + limit]
    for offset, limit in ((0, 1), (c - 1, 2)):
        response = quick.client.get(url, params={"domain": "history", "offset": offset, "limit": limit})
        assert response.status_code == 404 and error_of(response)["code"] == "JOB_RESULT_EXPIRED"

    # A stream meets the missing chunk with an error line, not a short "complete".
    lines = read_stream(quick.base_url, job_id)
    assert lines[-1].obj["type"] == "error" and lines[-1].obj["code"] == "JOB_RESULT_EXPIRED"
    # The whole body is cut short, never silently complete: the connection is cut after the
    # status line, so the client sees an incomplete chunked body instead of a clean end.
    for encoding in ("identity", "gzip"):
        with pytest.raises(httpx.RemoteProtocolError, match="incomplete chunked read"):
            quick.client.get(url, headers={"Accept-Encoding": encoding})

    # The index gone: the result has expired while the status lives on.
    assert redis_client.delete(f"{prefix}:job:{{{job_id}}}:index") == 1
    for params in ({}, {"domain": "history", "offset": 60}):
        response = quick.client.get(url, params=params)
        assert response.status_code == 404 and error_of(response)["code"] == "JOB_RESULT_EXPIRED"
    lines = read_stream(quick.base_url, job_id)
    assert [line.obj["type"] for line in lines] == ["error"] and lines[0].obj["code"] == "JOB_RESULT_EXPIRED"


# --- gzip ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("path", "params"),
    [("stream", None), ("result", None), ("result", {"domain": "history", "offset": 30, "limit": 100})],
)
def test_gzip_round_trip(
    quick: ServerProcess, quick_job: dict[str, Any], path: str, params: dict[str, Any] | None
) -> None:
    url = f"/api/trace/job/{quick_job['job_id']}/{path}"
    with httpx.Client(base_url=quick.base_url, timeout=30) as client:
        plain = client.get(url, params=params, headers={"Accept-Encoding": "identity"})
        assert plain.status_code == 200 and "content-encoding" not in plain.headers
        with client.stream("GET", url, params=params, headers={"Accept-Encoding": "gzip"}) as zipped:
            assert zipped.status_code == 200
            assert zipped.headers["content-encoding"] == "gzip"
            assert "accept-encoding" in zipped.headers["vary"].lower()
            compressed = b"".join(zipped.iter_raw())
    assert compressed[:2] == b"\x1f\x8b"
    assert gzip.decompress(compressed) == plain.content
    if path == "stream":
        assert len(compressed) < len(plain.content) / 3


@pytest.mark.parametrize(
    ("accept", "gzipped"),
    [("gzip;q=0", False), ("gzip;q=abc", False), ("identity", False), ("br, *", True), ("*;q=0, gzip;q=0.5", True)],
)
def test_accept_encoding_variants(quick: ServerProcess, quick_job: dict[str, Any], accept: str, gzipped: bool) -> None:
    url = f"/api/trace/job/{quick_job['job_id']}/result"
    with httpx.Client(base_url=quick.base_url, timeout=30) as client:
        with client.stream("GET", url, params={"domain": "materials"}, headers={"Accept-Encoding": accept}) as r:
            assert r.status_code == 200, accept
            raw = b"".join(r.iter_raw())
    assert (r.headers.get("content-encoding") == "gzip") is gzipped, accept
    body = gzip.decompress(raw) if gzipped else raw
    assert json.loads(body)["total"] == len(quick_job["check"].records["materials"])


# --- a failure after the status line cuts the connection ----------------------------------------
@pytest.mark.parametrize("path", ["stream", "result"])
async def test_redis_failing_mid_body_cuts_the_connection(
    quick: ServerProcess,
    quick_job: dict[str, Any],
    demo_warehouse_60k: Path,
    redis_url: str,
    path: str,
) -> None:
    # The finished job of the quick server, read by a second server (Sanic's HTTP server in this
    # event loop) whose Redis goes through a relay the test cuts once the body has started.
    url = f"/api/trace/job/{quick_job['job_id']}/{path}"
    identity = {"Accept-Encoding": "identity"}
    full = quick.client.get(url, headers=identity).content
    prefix = quick.prefix  # type: ignore[attr-defined]
    # Small socket buffers on both ends (autotuned, they would hold megabytes): while the client does
    # not read, the server blocks after some 200 kB of a body of megabytes, so it is still reading
    # chunks from Redis when the relay is cut.
    small_window = httpx.AsyncHTTPTransport(socket_options=[(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)])
    assert len(full) > 1_000_000
    received = 0
    async with RedisProxy(redis_url) as proxy:
        settings = make_settings(demo_warehouse_60k, proxy.url, prefix, TRACE_RATE_LIMIT_JOBS=0)
        async with live_server(settings, send_buffer_bytes=4096) as server:
            async with httpx.AsyncClient(base_url=server.url, transport=small_window, timeout=30) as http:
                with pytest.raises(httpx.RemoteProtocolError, match="incomplete chunked read"):
                    async with http.stream("GET", url, headers=identity) as response:
                        assert response.status_code == 200
                        async for piece in response.aiter_raw():
                            if not received:
                                await asyncio.sleep(0.5)  # the server fills the socket buffers, then waits
                                await proxy.cut()
                            received += len(piece)
    assert 0 < received < len(full), (received, len(full))


# --- errors --------------------------------------------------------------------------------------
BAD_IDS = ["abc", "0" * 31, "0" * 33, "A" * 32, "g" * 32, "*", "{x}", "0123456789abcdef0123456789abcde*"]


def test_error_codes_of_the_job_routes(
    quick: ServerProcess, quick_job: dict[str, Any], redis_client: redis.Redis
) -> None:
    prefix = quick.prefix  # type: ignore[attr-defined]
    before = set(redis_client.scan_iter(match=f"{prefix}:job:*", count=1000))
    for bad in BAD_IDS:
        for method, suffix in (("GET", ""), ("GET", "/stream"), ("GET", "/result"), ("DELETE", "")):
            response = quick.client.request(method, f"/api/trace/job/{httpx.URL(bad).path}{suffix}")
            assert response.status_code == 400, (bad, method, suffix, response.status_code)
            assert error_of(response)["code"] == "INVALID_JOB_ID"
    # A bad id never reaches a Redis key.
    after = set(redis_client.scan_iter(match=f"{prefix}:job:*", count=1000))
    assert not [k for k in after - before if any(b.encode() in k for b in BAD_IDS if len(b) > 1)]

    unknown = "0123456789abcdef0123456789abcdef"
    for method, suffix in (("GET", ""), ("GET", "/stream"), ("GET", "/result"), ("DELETE", "")):
        response = quick.client.request(method, f"/api/trace/job/{unknown}{suffix}")
        assert response.status_code == 404 and error_of(response)["code"] == "JOB_NOT_FOUND", (method, suffix)

    result = f"/api/trace/job/{quick_job['job_id']}/result"
    for params in (
        {"domain": "history", "offset": -1},
        {"domain": "history", "offset": "abc"},
        {"domain": "history", "offset": "1_0"},
        {"domain": "history", "offset": "1.5"},
        {"domain": "history", "limit": -5},
        {"domain": "history", "limit": "x"},
        {"domain": "history", "limit": 0},
        {"domain": "bogus"},
        {"domain": "rejects"},  # a real domain, not one of this job's
        {"offset": 10},  # a window needs a domain
    ):
        response = quick.client.get(result, params=params)
        assert response.status_code == 400, (params, response.status_code, response.text[:200])
        assert error_of(response)["code"] == "INVALID_PARAMS", params
    stream = f"/api/trace/job/{quick_job['job_id']}/stream"
    for params in (
        {"domain": "history", "from_batch": -1},
        {"domain": "history", "from_batch": "two"},
        {"from_batch": 3},
        {"domain": "bogus"},
        {"domain": "rejects"},
    ):
        response = quick.client.get(stream, params=params)
        assert response.status_code == 400, (params, response.status_code, response.text[:200])
        assert error_of(response)["code"] == "INVALID_PARAMS", params

    ended = quick.client.delete(f"/api/trace/job/{quick_job['job_id']}")
    assert ended.status_code == 200
    body = ended.json()
    assert body["cancelled"] is False and body["status"] == "finished"
    assert "not cancelled" in body["message"]
    status = get_status(quick, quick_job["job_id"])
    assert status["status"] == "finished"
    # DELETE answers the status record of GET, `result` included, plus `cancelled` and `message`.
    assert {k: v for k, v in body.items() if k not in ("cancelled", "message", "elapsed_seconds")} == {
        k: v for k, v in status.items() if k != "elapsed_seconds"
    }
    assert body["result"] == status["result"] and set(body["result"]) == {"domains", "total_records"}


# --- TTL -----------------------------------------------------------------------------------------
def test_every_key_of_a_job_is_gone_after_the_ttl(
    demo_warehouse_60k: Path,
    ids: list[str],
    redis_url: str,
    redis_prefix: str,
    redis_client: redis.Redis,
) -> None:
    env = jobs_env(
        demo_warehouse_60k,
        redis_url,
        redis_prefix,
        TRACE_JOB_TTL_SECONDS=2,
        TRACE_ASYNC_CID_THRESHOLD=5,
        TRACE_STREAM_BATCH_SIZE=40,
        DB_IN_BATCH_SIZE=20,
    )
    with running_server(env) as server:
        job_id = submit(server, ids[3000:3060], ["history", "materials"])
        status = wait_job(server, job_id, "finished", JOB_DEADLINE)
        ended = time.monotonic()
        keys = {k.decode() for k in job_keys(redis_client, redis_prefix, job_id)}
        base = f"{redis_prefix}:job:{{{job_id}}}"
        chunks = sum(d["chunks"] for d in status["result"]["domains"].values())
        assert {base, f"{base}:request", f"{base}:keyset", f"{base}:index"} <= keys
        assert len([k for k in keys if ":chunk:" in k]) == chunks > 2
        for key in keys:
            assert 0 < redis_client.pttl(key) <= 2000, key
        wait_for(lambda: not job_keys(redis_client, redis_prefix, job_id), 10, "every key of the job to expire")
        assert time.monotonic() - ended < 8
        response = server.client.get(f"/api/trace/job/{job_id}")
        assert response.status_code == 404 and error_of(response)["code"] == "JOB_NOT_FOUND"


# --- Redis down at submission --------------------------------------------------------------------
def test_without_redis_requests_up_to_the_cid_limit_fall_back_to_inline(
    demo_warehouse_60k: Path,
    ids: list[str],
    redis_prefix: str,
) -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"
    env = jobs_env(
        demo_warehouse_60k,
        dead,
        redis_prefix,
        TRACE_ASYNC_CID_THRESHOLD=50,
        TRACE_EVENTS_CID_LIMIT=100,
        TRACE_RATE_LIMIT_EVENTS=60,  # the limiter is on, and fails open
    )
    with running_server(env, expect_healthy=False) as server:
        health = server.client.get("/health")
        assert health.status_code == 503 and health.json()["redis"]["ok"] is False

        small = server.client.post("/api/trace/events", json=events_body(ids[:50], ["materials"]))
        assert small.status_code == 200 and small.headers["x-trace-path"] == "inline", small.text[:300]

        fallback = server.client.post("/api/trace/events", json=events_body(ids[:100], ["materials", "holds"]))
        assert fallback.status_code == 200, fallback.text[:500]
        assert fallback.headers["x-trace-path"] == "inline-fallback"
        body = fallback.json()
        assert body["stage"] == "events" and body["results"]["materials"]["count"] > 0

        over = server.client.post("/api/trace/events", json=events_body(ids[:101], ["materials"]))
        assert over.status_code == 413, over.text[:300]
        error = error_of(over)
        assert error["code"] == "CID_LIMIT_EXCEEDED" and error["cid_count"] == 101 and error["limit"] == 100

        status = server.client.get("/api/trace/job/0123456789abcdef0123456789abcdef")
        assert status.status_code == 503 and error_of(status)["code"] == "REDIS_UNAVAILABLE"
        assert int(status.headers["retry-after"]) > 0


# --- several hosts on one Redis ------------------------------------------------------------------
def test_any_host_serves_any_jobs_status_stream_pages_and_cancel(
    demo_warehouse_60k: Path,
    ids: list[str],
    redis_url: str,
    redis_prefix: str,
) -> None:
    settings = {
        "TRACE_ASYNC_CID_THRESHOLD": 5,
        "TRACE_STREAM_BATCH_SIZE": 40,
        "DB_IN_BATCH_SIZE": 20,
        "TRACE_WORKER_COUNT": 1,
        "TRACE_JOB_STEP_DELAY_SECONDS": 0.1,
    }
    env = jobs_env(demo_warehouse_60k, redis_url, redis_prefix, **settings)
    with running_servers(env, env) as (one, other):
        assert one.env["TRACE_HOST_ID"] != other.env["TRACE_HOST_ID"]
        job_id = submit(one, ids[6000:6030], ["history", "materials"])
        lines = read_stream(other.base_url, job_id, deadline=JOB_DEADLINE)
        check = check_stream(lines, 40)
        status = wait_job(other, job_id, "finished", 10)
        assert get_status(one, job_id) == status
        page = other.client.get(
            f"/api/trace/job/{job_id}/result", params={"domain": "history", "offset": 35, "limit": 50}
        ).json()
        assert page["data"] == check.records["history"][35:85]
        assert one.client.get(f"/api/trace/job/{job_id}/result").content == other.client.get(
            f"/api/trace/job/{job_id}/result"
        ).content

        # Both hosts take jobs; a job taken by one is cancelled through the other.
        running = [submit(one, ids[7000 + 100 * k : 7100 + 100 * k], ["history"]) for k in range(2)]
        hosts = {wait_job(one, j, "started", 20)["host"] for j in running}
        assert hosts == {one.env["TRACE_HOST_ID"], other.env["TRACE_HOST_ID"]}
        for job in running:
            response = other.client.delete(f"/api/trace/job/{job}")
            assert response.status_code == 200 and response.json()["cancelled"] is True
            assert wait_job(one, job, "cancelled", 10)["status"] == "cancelled"
