"""POST /api/trace/events over a generated warehouse, checked record by record against independent SQL.

The expected records are built by support.expected from plain sqlite3 reads of the same file (Python
grouping for the partial-track-out rule, Python string splitting for the jobs expansion), and the
whole streamed body is compared. Then the partial-failure rule, with domains made to fail for
real through TRACE_SQL_OVERRIDE_DIR: a query that runs fine for the first IN-batch and raises
"malformed JSON" on a later one, and a query that only the DB timeout can end.
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from support.apps import asgi_client
from support.expected import ALL_DOMAINS, EXPECTED, expected_holds, expected_rejects
from support.faults import failing_variant, slow_variant, write_override
from support.redis_keys import cache_keys
from support.settings import make_settings
from support.warehouses import DemoWarehouses, container_ids

LOTS = 2000


@pytest.fixture(scope="module")
def warehouse(demo_warehouses: DemoWarehouses) -> Path:
    return demo_warehouses(LOTS)


@pytest.fixture(scope="module")
def db(warehouse: Path) -> Iterator[sqlite3.Connection]:
    connection = sqlite3.connect(warehouse)
    yield connection
    connection.close()


async def events(settings: Any, body: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    _, response = await asgi_client(settings).post("/api/trace/events", json=body)
    assert response.status == 200, response.text[:500]
    # The body is parsed from the raw bytes: it must be one valid JSON document.
    return response, json.loads(response.content)


async def test_every_domain_matches_independent_sql(
    warehouse: Path, db: sqlite3.Connection, redis_url: str, redis_prefix: str
) -> None:
    ids = container_ids(db)
    assert len(ids) > LOTS
    # Small IN-batches and fetches: the body is stitched from many batches of every domain.
    settings = make_settings(warehouse, redis_url, redis_prefix, DB_IN_BATCH_SIZE=300, DB_FETCHMANY_SIZE=700)
    response, body = await events(settings, {"profile": "query_tool", "container_ids": ids, "domains": ALL_DOMAINS})
    assert response.headers["X-Trace-Path"] == "inline"
    assert list(body) == ["stage", "results", "aggregation"]
    assert (body["stage"], body["aggregation"]) == ("events", None)
    assert list(body["results"]) == ALL_DOMAINS
    for domain in ALL_DOMAINS:
        result = body["results"][domain]
        expected = EXPECTED[domain](db, ids)
        assert result["count"] == len(result["data"]) == len(expected) > 0, domain
        assert all(record["CONTAINERID"] in ids for record in result["data"]), domain
        got_per_container = Counter(r["CONTAINERID"] for r in result["data"])
        assert got_per_container == Counter(r["CONTAINERID"] for r in expected), domain
        # Sorted ids: the per-IN-batch ORDER BY is one global order, so the lists are equal as they stand.
        assert result["data"] == expected, domain
    results = body["results"]

    # The partial-track-out rule is exercised: track-ins with several track-outs exist, and each kept
    # record carries the latest track-out of its track-in (and that row's quantity).
    partial = db.execute(
        "SELECT CONTAINERID, EQUIPMENTID, SPECNAME, TRACKINTIMESTAMP, MAX(TRACKOUTTIMESTAMP), COUNT(*) "
        "FROM DW_MES_LOTWIPHISTORY WHERE EQUIPMENTID IS NOT NULL AND TRACKINTIMESTAMP IS NOT NULL "
        "GROUP BY CONTAINERID, EQUIPMENTID, SPECNAME, TRACKINTIMESTAMP HAVING COUNT(*) > 1"
    ).fetchall()
    assert len(partial) > 100
    history = {
        (r["CONTAINERID"], r["EQUIPMENTID"], r["SPECNAME"], r["TRACKINTIMESTAMP"].replace("T", " ")): r
        for r in results["history"]["data"]
    }
    for cid, equipment, spec, track_in, latest_out, _ in partial:
        record = history[(cid, equipment, spec, track_in)]
        assert record["TRACKOUTTIMESTAMP"] == (latest_out.replace(" ", "T") if latest_out else None)
    raw_rows = db.execute(
        "SELECT COUNT(*) FROM DW_MES_LOTWIPHISTORY WHERE EQUIPMENTID IS NOT NULL AND TRACKINTIMESTAMP IS NOT NULL"
    ).fetchone()[0]
    assert results["history"]["count"] == raw_rows - sum(n - 1 for *_, n in partial)

    # The jobs expansion: one record per listed container, so a job listing k of the ids gives k records.
    per_job = Counter(r["JOBID"] for r in results["jobs"]["data"])
    listed = {
        job_id: len(set(text.split(",")) & set(ids))
        for job_id, text in db.execute("SELECT JOBID, CONTAINERIDS FROM DW_MES_JOB")
    }
    assert per_job == Counter({job: n for job, n in listed.items() if n})
    assert max(per_job.values()) > 1

    # Reject totals per container, summed by SQL itself.
    totals: dict[str, int] = defaultdict(int)
    for record in results["rejects"]["data"]:
        totals[record["CONTAINERID"]] += record["REJECT_TOTAL_QTY"]
    assert dict(totals) == dict(
        db.execute(
            "SELECT CONTAINERID, SUM(IFNULL(REJECTQTY, 0) + IFNULL(STANDBYQTY, 0) + IFNULL(QTYTOPROCESS, 0) "
            "+ IFNULL(INPROCESSQTY, 0) + IFNULL(PROCESSEDQTY, 0)) FROM DW_MES_LOTREJECTHISTORY GROUP BY CONTAINERID"
        )
    )
    assert any(r["DEFECTQTY"] != r["REJECT_TOTAL_QTY"] for r in results["rejects"]["data"])

    # Hold status: HOLD exactly for the rows without a release.
    statuses = Counter(r["HOLD_STATUS"] for r in results["holds"]["data"])
    on_hold = db.execute("SELECT COUNT(*) FROM DW_MES_HOLDRELEASEHISTORY WHERE RELEASETXNDATE IS NULL").fetchone()[0]
    assert statuses["HOLD"] == on_hold > 0
    assert statuses["RELEASED"] == len(results["holds"]["data"]) - on_hold > 0


async def test_unsorted_ids_give_the_same_records_per_container(
    warehouse: Path, db: sqlite3.Connection, redis_url: str, redis_prefix: str
) -> None:
    ids = container_ids(db)[:600]
    shuffled = ids[::-1][::2] + ids[::-1][1::2]
    settings = make_settings(warehouse, redis_url, redis_prefix, DB_IN_BATCH_SIZE=100)
    _, body = await events(
        settings, {"profile": "query_tool", "container_ids": shuffled, "domains": ["history", "jobs"]}
    )
    for domain in ("history", "jobs"):
        expected = EXPECTED[domain](db, ids)
        got = body["results"][domain]["data"]
        assert sorted(map(json.dumps, got)) == sorted(map(json.dumps, expected)), domain


# --- partial failure ----------------------------------------------------------------------------------
IN_BATCH = 100


@pytest.fixture(scope="module")
def failing_target(db: sqlite3.Connection) -> tuple[list[str], str]:
    """400 ids (4 IN-batches of 100), and an id of the second batch that has rejects."""
    ids = container_ids(db)[:400]
    with_rejects = {row[0] for row in db.execute("SELECT DISTINCT CONTAINERID FROM DW_MES_LOTREJECTHISTORY")}
    assert any(c in with_rejects for c in ids[:IN_BATCH])
    target = next(c for c in ids[IN_BATCH : 2 * IN_BATCH] if c in with_rejects)
    return ids, target


@pytest.mark.parametrize("domains", [["history", "rejects", "holds"], ["rejects", "holds"]])
async def test_a_domain_failing_midway_leaves_valid_json_with_partial_failure(
    warehouse: Path,
    db: sqlite3.Connection,
    tmp_path: Path,
    redis_url: str,
    redis_prefix: str,
    redis_client: redis.Redis,
    failing_target: tuple[list[str], str],
    domains: list[str],
) -> None:
    ids, target = failing_target
    write_override(tmp_path / "sql", "events_rejects", failing_variant("events_rejects", "R.CONTAINERID", target))
    settings = make_settings(
        warehouse, redis_url, redis_prefix, DB_IN_BATCH_SIZE=IN_BATCH, TRACE_SQL_OVERRIDE_DIR=tmp_path / "sql"
    )
    request = {"profile": "query_tool", "container_ids": ids, "domains": domains}
    response, body = await events(settings, request)
    # Whether rejects is the first domain (its first batch is fetched before the status line) or not,
    # a failure after the first byte is reported in the body, not by the status.
    assert list(body) == ["stage", "results", "aggregation", "code", "failed_domains", "errors"]
    assert body["code"] == "EVENTS_PARTIAL_FAILURE"
    assert body["failed_domains"] == ["rejects"]
    assert list(body["results"]) == domains
    rejects = body["results"]["rejects"]
    # Exactly the records of the first IN-batch were sent, and `count` says so.
    sent = expected_rejects(db, ids[:IN_BATCH])
    assert rejects["count"] == len(rejects["data"]) == len(sent) > 0
    assert rejects["data"] == sent
    error = body["errors"]["rejects"]
    assert set(body["errors"]) == {"rejects"}
    assert error["code"] == "EVENTS_FAILED"
    assert "malformed JSON" in error["message"] and f"(after {len(sent)} records)" in error["message"]
    # The other domains, before and after the failed one, are complete and right.
    for domain in domains:
        if domain != "rejects":
            expected = EXPECTED[domain](db, ids)
            assert body["results"][domain] == {"data": expected, "count": len(expected)}, domain

    # A partly failed body is never cached: the same request is computed again, and no key is left.
    assert response.headers["X-Cache"] == "miss"
    again, body_again = await events(settings, request)
    assert again.headers["X-Cache"] == "miss"
    assert body_again == body
    assert cache_keys(redis_client, redis_prefix) == []


async def test_a_domain_timing_out_after_the_first_byte_is_a_partial_failure(
    warehouse: Path,
    db: sqlite3.Connection,
    tmp_path: Path,
    redis_url: str,
    redis_prefix: str,
    redis_client: redis.Redis,
) -> None:
    ids = container_ids(db)[:600]
    write_override(tmp_path / "sql", "events_history", slow_variant("events_history"))
    settings = make_settings(
        warehouse,
        redis_url,
        redis_prefix,
        DB_QUERY_TIMEOUT_SECONDS=0.5,
        TRACE_SQL_OVERRIDE_DIR=tmp_path / "sql",
    )
    _, body = await events(settings, {"profile": "query_tool", "container_ids": ids, "domains": ["holds", "history"]})
    assert body["code"] == "EVENTS_PARTIAL_FAILURE"
    assert body["failed_domains"] == ["history"]
    assert body["errors"]["history"]["code"] == "EVENTS_TIMEOUT"
    assert body["results"]["history"] == {"data": [], "count": 0}
    holds = expected_holds(db, ids)
    assert body["results"]["holds"] == {"data": holds, "count": len(holds)}
    assert cache_keys(redis_client, redis_prefix) == []
