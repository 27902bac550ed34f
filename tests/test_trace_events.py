"""Events domains over a hand-built warehouse, each checked against an independent query.

The expected values come from plain sqlite3 over the same file, written differently from the
service's SQL (GROUP BY and MAX where the service uses ROW_NUMBER, Python string splitting
where it uses INSTR), so a shared mistake is unlikely.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from sanic_trace.db.batching import batch_count
from sanic_trace.db.errors import DatabaseError
from sanic_trace.db.sqlite_source import SqliteSource
from sanic_trace.errors import ApiError
from sanic_trace.trace.events import (
    DOMAIN_SPECS,
    DOMAINS,
    default_domains,
    iter_domain_batches,
    validate_domains,
)
from support.standard_warehouse import F1, ORPHAN, R1, R2, S2, S3, T1
from support.warehouses import cid, open_warehouse

# Every container with events, plus ids without any.
IDS = sorted([S3, T1, R1, R2, S2, F1, ORPHAN, cid(0xabc), cid(0xdead)])


@pytest.fixture
def source(standard_warehouse: Path) -> SqliteSource:
    return open_warehouse(standard_warehouse)


@pytest.fixture(scope="module")
def db(standard_warehouse: Path) -> Iterator[sqlite3.Connection]:
    connection = sqlite3.connect(standard_warehouse)
    yield connection
    connection.close()


def sized(
    source: SqliteSource, in_batch_size: int = 1000, fetch_size: int = 1000, sql_override_dir: Path | None = None
) -> SqliteSource:
    """The same warehouse read with other batch sizes (or an SQL override directory)."""
    return open_warehouse(source.path, fetch_size, in_batch_size, sql_override_dir)


def records(
    source: SqliteSource, domain: str, ids: list[str] = IDS, on_batch_done: Any = None, **sizes: Any
) -> list[dict[str, Any]]:
    reader = sized(source, **sizes)
    out: list[dict[str, Any]] = []
    for batch in iter_domain_batches(reader, domain, ids, on_batch_done=on_batch_done):
        out.extend(batch)
    assert reader.open_cursors == 0
    return out


def db_time(value: str | None) -> str | None:
    """An ISO record time as the file stores it."""
    return None if value is None else value.replace("T", " ")


def test_history_keeps_one_row_per_track_in_with_the_latest_track_out(
    source: SqliteSource, db: sqlite3.Connection
) -> None:
    got = records(source, "history")
    expected = {
        (cid_, eq, spec, tin): tout
        for cid_, eq, spec, tin, tout in db.execute(
            "SELECT CONTAINERID, EQUIPMENTID, SPECNAME, TRACKINTIMESTAMP, MAX(TRACKOUTTIMESTAMP) "
            "FROM DW_MES_LOTWIPHISTORY WHERE EQUIPMENTID IS NOT NULL AND TRACKINTIMESTAMP IS NOT NULL "
            "GROUP BY CONTAINERID, EQUIPMENTID, SPECNAME, TRACKINTIMESTAMP"
        )
    }
    keyed = {(r["CONTAINERID"], r["EQUIPMENTID"], r["SPECNAME"], db_time(r["TRACKINTIMESTAMP"])): r for r in got}
    assert len(keyed) == len(got) == len(expected)
    assert {k: db_time(r["TRACKOUTTIMESTAMP"]) for k, r in keyed.items()} == expected
    # The partial track-out: 09:00 (50 units) then 10:00 (100 units) for one track-in.
    partial = keyed[(S3, "EQ-DB-1", "SP-DB", "2025-01-03 08:00:00")]
    assert (partial["TRACKOUTTIMESTAMP"], partial["TRACKOUTQTY"]) == ("2025-01-03T10:00:00", 100)
    # A rework track-in without a track-out is its own event, with a null track-out.
    assert keyed[(S3, "EQ-DB-1", "SP-DB", "2025-01-04 08:00:00")]["TRACKOUTTIMESTAMP"] is None
    assert Counter(r["CONTAINERID"] for r in got) == Counter({S3: 4, S2: 2, T1: 2, R2: 1, R1: 1, ORPHAN: 1})


def test_upstream_history_is_one_row_per_station_machine(source: SqliteSource, db: sqlite3.Connection) -> None:
    got = records(source, "upstream_history")
    expected = {
        (c, wc, eq): (first_in, last_out, n, group)
        for c, wc, eq, first_in, last_out, n, group in db.execute(
            "SELECT H.CONTAINERID, H.WORKCENTERNAME, H.EQUIPMENTID, MIN(H.TRACKINTIMESTAMP), "
            "MAX(H.TRACKOUTTIMESTAMP), COUNT(*), "
            "(SELECT S.WORKCENTER_GROUP FROM DW_MES_SPEC_WORKCENTER_V S WHERE S.WORKCENTERNAME = H.WORKCENTERNAME) "
            "FROM DW_MES_LOTWIPHISTORY H WHERE H.EQUIPMENTID IS NOT NULL AND H.TRACKINTIMESTAMP IS NOT NULL "
            "GROUP BY H.CONTAINERID, H.WORKCENTERNAME, H.EQUIPMENTID"
        )
    }
    assert {
        (r["CONTAINERID"], r["WORKCENTERNAME"], r["EQUIPMENTID"]): (
            db_time(r["FIRST_TRACKINTIMESTAMP"]),
            db_time(r["LAST_TRACKOUTTIMESTAMP"]),
            r["TRACK_ROWS"],
            r["WORKCENTER_GROUP"],
        )
        for r in got
    } == expected
    assert len(got) == len(expected)
    die_bond = next(r for r in got if r["CONTAINERID"] == S3 and r["WORKCENTERNAME"] == "DB-01")
    assert die_bond["WORKCENTERSEQUENCE_GROUP"] == 2


def test_materials(source: SqliteSource, db: sqlite3.Connection) -> None:
    got = records(source, "materials")
    expected = dict(db.execute("SELECT MATERIALHISTORYID, QTYCONSUMED FROM DW_MES_LOTMATERIALSHISTORY"))
    assert {r["MATERIALHISTORYID"]: r["QTYCONSUMED"] for r in got} == expected
    # Within a container by time, a record without a time last.
    assert [r["MATERIALLOTNAME"] for r in got if r["CONTAINERID"] == S3] == ["WIRE-LOT-1", "EPOXY-LOT-7"]


def test_rejects_add_up_every_quantity_column(source: SqliteSource, db: sqlite3.Connection) -> None:
    got = records(source, "rejects")
    rows = db.execute(
        "SELECT REJECTHISTORYID, REJECTQTY, STANDBYQTY, QTYTOPROCESS, INPROCESSQTY, PROCESSEDQTY, DEFECTQTY "
        "FROM DW_MES_LOTREJECTHISTORY"
    ).fetchall()
    expected = {row[0]: (sum(q or 0 for q in row[1:6]), row[6]) for row in rows}
    assert {r["REJECTHISTORYID"]: (r["REJECT_TOTAL_QTY"], r["DEFECTQTY"]) for r in got} == expected
    assert expected[1] == (3, 4)  # DEFECTQTY stays separate from the total


def test_downstream_rejects_are_the_rejects_with_their_station_group(source: SqliteSource) -> None:
    rejects = {r["REJECTHISTORYID"]: r for r in records(source, "rejects")}
    downstream = records(source, "downstream_rejects")
    assert [r["REJECTHISTORYID"] for r in downstream] == list(rejects)
    for record in downstream:
        assert record["REJECT_TOTAL_QTY"] == rejects[record["REJECTHISTORYID"]]["REJECT_TOTAL_QTY"]
    groups = {r["SPECNAME"]: (r["WORKCENTER_GROUP"], r["WORKCENTERSEQUENCE_GROUP"]) for r in downstream}
    assert groups == {"SP-DB": ("焊接_DB", 2), "SP-TEST": ("測試", 9), "SP-TMTT": ("測試", 9), "SP-LAB": (None, None)}


def test_holds_status_and_hours(source: SqliteSource, db: sqlite3.Connection) -> None:
    got = records(source, "holds")
    assert len(got) == db.execute("SELECT COUNT(*) FROM DW_MES_HOLDRELEASEHISTORY").fetchone()[0]
    by_id = {r["HOLDHISTORYID"]: r for r in got}
    assert (by_id[1]["HOLD_STATUS"], by_id[1]["HOLD_HOURS"]) == ("RELEASED", 12.5)
    assert (by_id[2]["HOLD_STATUS"], by_id[2]["HOLD_HOURS"], by_id[2]["RELEASETXNDATE"]) == ("HOLD", None, None)
    assert (by_id[3]["HOLD_STATUS"], by_id[3]["HOLD_HOURS"]) == ("RELEASED", 0.33)  # 20 minutes
    for record in got:
        held = datetime.fromisoformat(record["HOLDTXNDATE"])
        if record["RELEASETXNDATE"] is not None:
            hours = (datetime.fromisoformat(record["RELEASETXNDATE"]) - held).total_seconds() / 3600
            assert record["HOLD_HOURS"] == round(hours, 2)
    # Columns in SQL order; the derived one last.
    assert list(got[0])[-2:] == ["HOLDHISTORYID", "HOLD_HOURS"]


def test_jobs_are_expanded_to_one_record_per_listed_container(source: SqliteSource, db: sqlite3.Connection) -> None:
    got = records(source, "jobs")
    known = {row[0] for row in db.execute("SELECT CONTAINERID FROM DW_MES_CONTAINER")}
    expected = sorted(
        (container_id, job_id)
        for job_id, listed in db.execute("SELECT JOBID, CONTAINERIDS FROM DW_MES_JOB")
        for container_id in listed.split(",")
        if container_id in IDS and container_id in known
    )
    assert sorted((r["CONTAINERID"], r["JOBID"]) for r in got) == expected
    # S3's id inside a longer list entry ("<S3>ff") does not match; R1 in the same job does.
    assert [(r["CONTAINERID"], r["JOBID"]) for r in got] == [(R1, "JOB-3"), (S3, "JOB-1"), (S3, "JOB-2"), (T1, "JOB-1")]


@pytest.mark.parametrize("domain", DOMAINS)
def test_records_are_json_safe_and_carry_the_container(source: SqliteSource, domain: str) -> None:
    got = records(source, domain)
    assert got, domain
    json.dumps(got, allow_nan=False)
    for record in got:
        assert record["CONTAINERID"] in IDS
        for value in record.values():
            # Times are ISO 8601 with a T: a 'YYYY-MM-DD HH:MM' text would be a timestamp that lost its type.
            assert not (isinstance(value, str) and len(value) >= 16 and value[10] == " " and value[4] == "-")


@pytest.mark.parametrize("domain", DOMAINS)
def test_batches_never_exceed_fetch_size_and_batching_changes_nothing(source: SqliteSource, domain: str) -> None:
    expected = records(source, domain, in_batch_size=1000, fetch_size=1000)
    for in_batch_size, fetch_size in ((1, 1), (2, 2), (3, 1000), (1000, 1)):
        batches = list(iter_domain_batches(sized(source, in_batch_size, fetch_size), domain, IDS))
        assert all(0 < len(batch) <= fetch_size for batch in batches)
        # Ids in sorted order: the per-IN-batch ORDER BY then gives one global order.
        assert [r for batch in batches for r in batch] == expected


def test_progress_is_reported_after_every_in_batch(source: SqliteSource) -> None:
    calls: list[tuple[int, int]] = []
    ids = [cid(0xdead), cid(0xbeef), S3, cid(0xfeed), cid(0xface)]  # four of the five batches are empty
    got = records(source, "holds", ids, in_batch_size=1, on_batch_done=lambda done, total: calls.append((done, total)))
    assert len(got) == 1
    assert calls == [(1, 5), (2, 5), (3, 5), (4, 5), (5, 5)]
    assert batch_count(5, 1) == 5
    assert batch_count(2001, 1000) == 3
    assert batch_count(0, 1000) == 0
    assert list(iter_domain_batches(sized(source, 10, 10), "holds", [])) == []


def test_stopping_early_releases_the_cursor(source: SqliteSource) -> None:
    reader = sized(source, 1000, 1)
    batches = iter_domain_batches(reader, "history", IDS)
    first = next(batches)
    assert len(first) == 1
    assert reader.open_cursors == 1
    batches.close()
    assert reader.open_cursors == 0

    reader = sized(source, 2, 1)
    for _batch in iter_domain_batches(reader, "materials", IDS):
        break
    assert reader.open_cursors == 0


FAIL_ON_SECOND_BATCH = """
-- The rejects query, made to fail at run time for one container: json() of a non-JSON text
-- raises "malformed JSON" when SQLite evaluates it, i.e. only for an IN-batch holding {target}.
SELECT R.CONTAINERID AS CONTAINERID, R.REJECTHISTORYID AS REJECTHISTORYID
FROM DWH.DW_MES_LOTREJECTHISTORY R
WHERE R.CONTAINERID IN (:ids)
  AND CASE WHEN R.CONTAINERID = '{target}' THEN json('{{' || R.CONTAINERID) ELSE 1 END = 1
ORDER BY R.CONTAINERID, R.REJECTHISTORYID
"""


def test_an_override_sql_file_makes_a_domain_fail_midway_for_real(source: SqliteSource, tmp_path: Path) -> None:
    ids = sorted([S3, T1])  # in_batch_size=1: S3 first, then T1
    (tmp_path / f"{DOMAIN_SPECS['rejects'].sql_name}.sql").write_text(FAIL_ON_SECOND_BATCH.format(target=T1))
    reader = sized(source, 1, 100, tmp_path)
    batches = iter_domain_batches(reader, "rejects", ids)
    first = next(batches)
    assert {r["CONTAINERID"] for r in first} == {S3}
    with pytest.raises(DatabaseError, match="malformed JSON"):
        next(batches)
    assert reader.open_cursors == 0
    # A domain without an override file in the directory keeps its packaged SQL.
    assert records(source, "holds", ids, sql_override_dir=tmp_path) == records(source, "holds", ids)


def test_validate_domains() -> None:
    assert validate_domains(["jobs", "history", "jobs"]) == ["jobs", "history"]
    for bad in ([], "history", None, ["history", 1]):
        with pytest.raises(ApiError) as caught:
            validate_domains(bad)
        assert caught.value.code == "INVALID_PARAMS" and caught.value.message.startswith("domains ")
    with pytest.raises(ApiError) as caught:
        validate_domains(["history", "bogus", "nope"])
    assert "bogus, nope" in caught.value.message


def test_default_domains() -> None:
    query = ["history", "materials", "rejects", "holds", "jobs"]
    assert default_domains("query_tool") == query
    assert default_domains("query_tool_reverse", {}) == query
    assert default_domains("mid_section_defect") == ["upstream_history", "materials"]
    assert default_domains("mid_section_defect", {"direction": "forward"}) == ["upstream_history", "downstream_rejects"]
    assert set(DOMAIN_SPECS) == set(DOMAINS)


def test_unknown_domain_is_refused(source: SqliteSource) -> None:
    with pytest.raises(ApiError):
        next(iter_domain_batches(source, "bogus", [S3]))


def test_a_plain_job_child_does_not_import_the_msd_analysis() -> None:
    # numpy alone is ~12 MB of RSS: the job function's module must leave it to MSD jobs.
    probe = "import sys, sanic_trace.trace.job; print(sorted(m for m in ('numpy', 'sanic') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
