"""The trace stages end to end over a small generated demo warehouse (500 lots).

The hand-built warehouse checks the rules exactly; this checks that the SQL and the stages
hold up on the generator's realistic shapes (splits, merges, partial track-outs, jobs), with
the numbers compared against independent queries over the same file.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sanic_trace.db.sqlite_source import SqliteSource
from sanic_trace.trace.events import DOMAINS, iter_domain_batches
from sanic_trace.trace.lineage import backward_lineage, forward_lineage, lineage_container_ids
from sanic_trace.trace.seeds import resolve_seeds
from support.warehouses import DemoWarehouses

IN_BATCH = 50
FETCH = 500
RANGE = {"start_date": "2026-02-01", "end_date": "2026-02-28"}


@pytest.fixture(scope="module")
def warehouse(demo_warehouses: DemoWarehouses) -> Path:
    return demo_warehouses(500, seed=3)


@pytest.fixture(scope="module")
def db(warehouse: Path) -> Iterator[sqlite3.Connection]:
    connection = sqlite3.connect(warehouse)
    yield connection
    connection.close()


@pytest.fixture(scope="module")
def source(warehouse: Path) -> SqliteSource:
    return SqliteSource(warehouse, FETCH, 60, IN_BATCH)


@pytest.fixture(scope="module")
def msd(source: SqliteSource) -> dict[str, Any]:
    seeds = resolve_seeds(source, "mid_section_defect", RANGE, msd_max_range_days=366)
    ids = [s["container_id"] for s in seeds["seeds"]]
    return {"seeds": seeds, "lineage": backward_lineage(source, ids)}


def test_msd_seeds_are_the_distinct_lots_tested_in_the_range(msd: dict[str, Any], db: sqlite3.Connection) -> None:
    expected = [
        row[0]
        for row in db.execute(
            "SELECT DISTINCT H.CONTAINERID FROM DW_MES_LOTWIPHISTORY H "
            "JOIN DW_MES_SPEC_WORKCENTER_V S ON S.WORKCENTERNAME = H.WORKCENTERNAME "
            "WHERE S.WORKCENTER_GROUP = '測試' AND H.TRACKINTIMESTAMP >= '2026-02-01 00:00:00' "
            "AND H.TRACKINTIMESTAMP < '2026-03-01 00:00:00' ORDER BY 1"
        )
    ]
    seeds = msd["seeds"]
    assert len(expected) > 50
    assert [s["container_id"] for s in seeds["seeds"]] == expected
    assert seeds["seed_count"] == len(expected)


def test_backward_lineage_matches_a_recursive_query(msd: dict[str, Any], db: sqlite3.Connection) -> None:
    lineage = msd["lineage"]
    seeds = lineage["roots"]
    marks = ",".join("?" * len(seeds))
    # SQLite's WITH RECURSIVE is fine here: this is the independent check, not service SQL.
    expected = {
        row[0]
        for row in db.execute(
            "WITH RECURSIVE edge(child, parent) AS ("
            "  SELECT CONTAINERID, SPLITFROMID FROM DW_MES_CONTAINER WHERE SPLITFROMID IS NOT NULL"
            "  UNION SELECT LOTID, CONTAINERID FROM DW_MES_PJ_COMBINEDASSYLOTS),"
            " up(id, depth) AS ("
            f"  SELECT CONTAINERID, 0 FROM DW_MES_CONTAINER WHERE CONTAINERID IN ({marks})"
            "  UNION SELECT edge.parent, up.depth + 1 FROM up JOIN edge ON edge.child = up.id WHERE up.depth < 20)"
            " SELECT DISTINCT id FROM up WHERE depth > 0",
            seeds,
        )
    }
    found = {a for ancestors in lineage["ancestors"].values() for a in ancestors}
    assert found == expected
    assert lineage["total_ancestor_count"] == len(expected)
    assert lineage["merge_edges"], "tested finished lots come from merges"
    assert all(lineage["seed_roots"][seed] for seed in seeds)


def test_forward_lineage_reaches_serials(source: SqliteSource, db: sqlite3.Connection) -> None:
    roots = [row[0] for row in db.execute("SELECT DISTINCT CONTAINERID FROM DW_MES_PJ_COMBINEDASSYLOTS LIMIT 5")]
    result = forward_lineage(SqliteSource(source.path, FETCH, 60, 2), roots)
    for root in roots:
        rows = db.execute("SELECT FINISHEDNAME FROM DW_MES_PJ_COMBINEDASSYLOTS WHERE CONTAINERID = ?", (root,))
        serials = {r[0] for r in rows}
        assert serials <= set(result["leaf_serials"][root])


def test_reverse_serial_resolves_and_traces_back(source: SqliteSource, db: sqlite3.Connection) -> None:
    serial, lot = db.execute("SELECT FINISHEDNAME, LOTID FROM DW_MES_PJ_COMBINEDASSYLOTS LIMIT 1").fetchone()
    seeds = resolve_seeds(
        source, "query_tool_reverse", {"resolve_type": "serial_number", "values": [serial]},
        msd_max_range_days=366,
    )
    # A serial resolves to the finished lot's source lots, which trace back to their wafer lots.
    sources = {r[0] for r in db.execute("SELECT CONTAINERID FROM DW_MES_PJ_COMBINEDASSYLOTS WHERE LOTID = ?", (lot,))}
    assert {s["container_id"] for s in seeds["seeds"]} == sources
    lineage = backward_lineage(source, sorted(sources))
    for source_lot in sources:
        row = db.execute("SELECT SPLITFROMID FROM DW_MES_CONTAINER WHERE CONTAINERID = ?", (source_lot,)).fetchone()
        parent = row[0]
        assert parent is None or parent in lineage["ancestors"][source_lot]


def _count(db: sqlite3.Connection, sql: str, ids: list[str]) -> int:
    db.execute("CREATE TEMP TABLE IF NOT EXISTS ids (id TEXT PRIMARY KEY)")
    db.execute("DELETE FROM ids")
    db.executemany("INSERT INTO ids VALUES (?)", [(i,) for i in ids])
    return db.execute(sql).fetchone()[0]


EXPECTED_COUNTS = {
    "history": "SELECT COUNT(*) FROM (SELECT DISTINCT CONTAINERID, EQUIPMENTID, SPECNAME, TRACKINTIMESTAMP "
    "FROM DW_MES_LOTWIPHISTORY WHERE CONTAINERID IN (SELECT id FROM ids) "
    "AND EQUIPMENTID IS NOT NULL AND TRACKINTIMESTAMP IS NOT NULL)",
    "upstream_history": "SELECT COUNT(*) FROM (SELECT DISTINCT CONTAINERID, WORKCENTERNAME, EQUIPMENTID "
    "FROM DW_MES_LOTWIPHISTORY WHERE CONTAINERID IN (SELECT id FROM ids) "
    "AND EQUIPMENTID IS NOT NULL AND TRACKINTIMESTAMP IS NOT NULL)",
    "materials": "SELECT COUNT(*) FROM DW_MES_LOTMATERIALSHISTORY WHERE CONTAINERID IN (SELECT id FROM ids)",
    "rejects": "SELECT COUNT(*) FROM DW_MES_LOTREJECTHISTORY WHERE CONTAINERID IN (SELECT id FROM ids)",
    "downstream_rejects": "SELECT COUNT(*) FROM DW_MES_LOTREJECTHISTORY WHERE CONTAINERID IN (SELECT id FROM ids)",
    "holds": "SELECT COUNT(*) FROM DW_MES_HOLDRELEASEHISTORY WHERE CONTAINERID IN (SELECT id FROM ids)",
    "jobs": "SELECT COUNT(*) FROM DW_MES_JOB J JOIN ids ON "
    "(',' || J.CONTAINERIDS || ',') LIKE ('%,' || ids.id || ',%')",
}


@pytest.mark.parametrize("domain", DOMAINS)
def test_events_over_the_msd_lineage(
    domain: str, msd: dict[str, Any], source: SqliteSource, db: sqlite3.Connection
) -> None:
    ids = lineage_container_ids(msd["lineage"])
    total = 0
    containers = set()
    for batch in iter_domain_batches(source, domain, ids):
        assert 0 < len(batch) <= FETCH
        json.dumps(batch, allow_nan=False)
        total += len(batch)
        containers.update(r["CONTAINERID"] for r in batch)
    assert source.open_cursors == 0
    assert total == _count(db, EXPECTED_COUNTS[domain], ids)
    assert containers <= set(ids)
    if domain != "holds":  # holds are rare enough to miss a month of lots
        assert total > 0
