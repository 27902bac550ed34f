"""The demo MES warehouse generator, checked on real SQLite files it builds."""

from __future__ import annotations

import hashlib
import re
import sqlite3
from collections import defaultdict
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

from sanic_trace.demo.generator import (
    BAD_MACHINES,
    BAD_MATERIAL_LOTS,
    FINAL_TEST_WORKCENTER,
    LEAD_DAYS,
    STATION_GROUPS,
    TMTT_WORKCENTER,
    WORK_CENTERS,
    build_demo_warehouse,
)

LOTS = 1500
SEED = 7
START = date(2026, 1, 5)
DAYS = 150
TABLES = (
    "DW_MES_CONTAINER",
    "DW_MES_LOTWIPHISTORY",
    "DW_MES_LOTMATERIALSHISTORY",
    "DW_MES_LOTREJECTHISTORY",
    "DW_MES_HOLDRELEASEHISTORY",
    "DW_MES_JOB",
    "DW_MES_PJ_COMBINEDASSYLOTS",
    "DW_MES_SPEC_WORKCENTER_V",
    "DW_MES_RESOURCE",
)
TS_RE = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$")

# A lot's genealogy up the split chain: (lot, ancestor-or-self) pairs.
ANCESTRY_CTE = """
WITH RECURSIVE anc(cid, aid) AS (
    SELECT CONTAINERID, CONTAINERID FROM DW_MES_CONTAINER WHERE OBJECTTYPE = 'LOT'
    UNION ALL
    SELECT anc.cid, c.SPLITFROMID FROM anc JOIN DW_MES_CONTAINER c ON c.CONTAINERID = anc.aid
    WHERE c.SPLITFROMID IS NOT NULL
)
"""


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int]]:
    path = tmp_path_factory.mktemp("demo") / "warehouse.sqlite"
    counts = build_demo_warehouse(path, LOTS, seed=SEED, progress=False, start_date=START, days=DAYS)
    return path, counts


@pytest.fixture(scope="module")
def db(built: tuple[Path, dict[str, int]]) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(built[0])
    yield conn
    conn.close()


def scalar(db: sqlite3.Connection, sql: str, *params: object) -> object:
    return db.execute(sql, params).fetchone()[0]


def table_digest(path: Path) -> str:
    conn = sqlite3.connect(path)
    try:
        digest = hashlib.sha256()
        for line in conn.iterdump():
            digest.update(line.encode())
            digest.update(b"\n")
        return digest.hexdigest()
    finally:
        conn.close()


def test_returned_counts_are_the_table_counts(built: tuple[Path, dict[str, int]], db: sqlite3.Connection) -> None:
    _, counts = built
    assert set(counts) == set(TABLES)
    for table in TABLES:
        assert counts[table] == scalar(db, f"SELECT COUNT(*) FROM {table}"), table


def test_sizes_are_in_the_expected_ranges(db: sqlite3.Connection) -> None:
    containers = scalar(db, "SELECT COUNT(*) FROM DW_MES_CONTAINER")
    assert 0.9 * LOTS <= containers <= 1.1 * LOTS
    history = scalar(db, "SELECT COUNT(*) FROM DW_MES_LOTWIPHISTORY")
    assert 8 * containers <= history <= 13 * containers
    materials = scalar(db, "SELECT COUNT(*) FROM DW_MES_LOTMATERIALSHISTORY")
    assert 2 * containers <= materials <= 7 * containers
    rejected = scalar(db, "SELECT COUNT(DISTINCT CONTAINERID) FROM DW_MES_LOTREJECTHISTORY")
    assert 0.25 * containers <= rejected <= 0.6 * containers
    held = scalar(db, "SELECT COUNT(DISTINCT CONTAINERID) FROM DW_MES_HOLDRELEASEHISTORY")
    assert 0.01 * containers <= held <= 0.1 * containers
    jobs = scalar(db, "SELECT COUNT(*) FROM DW_MES_JOB")
    assert containers / 120 <= jobs <= containers / 25


def test_ids_and_names_have_the_plant_shapes(db: sqlite3.Connection) -> None:
    rows = db.execute("SELECT CONTAINERID, CONTAINERNAME, OBJECTTYPE FROM DW_MES_CONTAINER").fetchall()
    assert len({r[0] for r in rows}) == len(rows)
    assert len({r[1] for r in rows}) == len(rows)
    for cid, name, kind in rows:
        assert re.fullmatch(r"[0-9a-f]{16}", cid), cid
        if kind == "LOT":
            assert re.fullmatch(r"G[A-Z]\d{8}-[A-Z]\d{2}-\d{3}", name), name
        else:
            assert kind == "FINISHED"
            assert re.fullmatch(r"GF\d{10}", name), name


def test_every_container_reference_exists(db: sqlite3.Connection) -> None:
    known = {r[0] for r in db.execute("SELECT CONTAINERID FROM DW_MES_CONTAINER")}
    references = [
        ("DW_MES_CONTAINER", "SPLITFROMID"),
        ("DW_MES_CONTAINER", "ORIGINALCONTAINERID"),
        ("DW_MES_LOTWIPHISTORY", "CONTAINERID"),
        ("DW_MES_LOTMATERIALSHISTORY", "CONTAINERID"),
        ("DW_MES_LOTREJECTHISTORY", "CONTAINERID"),
        ("DW_MES_HOLDRELEASEHISTORY", "CONTAINERID"),
        ("DW_MES_PJ_COMBINEDASSYLOTS", "CONTAINERID"),
        ("DW_MES_PJ_COMBINEDASSYLOTS", "LOTID"),
    ]
    for table, column in references:
        values = {r[0] for r in db.execute(f"SELECT DISTINCT {column} FROM {table} WHERE {column} IS NOT NULL")}
        assert values, (table, column)
        assert values <= known, (table, column, sorted(values - known)[:5])


def test_jobs_list_existing_lots_in_step_with_their_names(db: sqlite3.Connection) -> None:
    names = dict(db.execute("SELECT CONTAINERID, CONTAINERNAME FROM DW_MES_CONTAINER"))
    machines = {r[0] for r in db.execute("SELECT DISTINCT EQUIPMENTNAME FROM DW_MES_LOTWIPHISTORY")}
    jobs = db.execute("SELECT RESOURCENAME, CONTAINERIDS, CONTAINERNAMES, JOBSTATUS, COMPLETEDATE FROM DW_MES_JOB")
    for machine, ids, lot_names, status, completed in jobs:
        assert machine in machines
        assert " " not in ids
        id_list = ids.split(",")
        assert 1 <= len(id_list) <= 30
        assert len(set(id_list)) == len(id_list)
        assert lot_names.split(",") == [names[i] for i in id_list]
        assert (status == "COMPLETE") == (completed is not None)


def test_lots_in_a_job_were_on_that_machine(db: sqlite3.Connection) -> None:
    on_machine = defaultdict(set)
    for cid, machine in db.execute("SELECT DISTINCT CONTAINERID, EQUIPMENTNAME FROM DW_MES_LOTWIPHISTORY"):
        on_machine[machine].add(cid)
    for machine, ids in db.execute("SELECT RESOURCENAME, CONTAINERIDS FROM DW_MES_JOB"):
        assert set(ids.split(",")) <= on_machine[machine]


def test_split_chains_are_consistent_and_sometimes_deep(db: sqlite3.Connection) -> None:
    rows = db.execute("SELECT CONTAINERID, SPLITFROMID, ORIGINALCONTAINERID, FIRSTNAME, MFGORDERNAME, "
                      "CREATETIMESTAMP FROM DW_MES_CONTAINER WHERE OBJECTTYPE = 'LOT'").fetchall()
    by_id = {r[0]: r for r in rows}
    depths = []
    for cid, parent, original, wafer, order, created in rows:
        depth, node = 0, cid
        while by_id[node][1] is not None:
            node = by_id[node][1]
            depth += 1
        depths.append(depth)
        assert original == node  # the first lot of the chain
        if parent is not None:
            # A child keeps its parent's wafer lot and work order and is created after it.
            assert by_id[parent][3] == wafer and by_id[parent][4] == order
            assert by_id[parent][5] < created
    children = sum(1 for d in depths if d >= 1)
    assert 0.15 * len(rows) <= children <= 0.5 * len(rows)
    assert sum(1 for d in depths if d >= 2) >= 10  # multi-level chains
    # A child's name keeps the root's wafer-lot base (GA25120001-B01-011 from GA25120001-A00-011).
    assert scalar(db, "SELECT COUNT(*) FROM DW_MES_CONTAINER c "
                      "JOIN DW_MES_CONTAINER p ON p.CONTAINERID = c.SPLITFROMID "
                      "WHERE substr(c.CONTAINERNAME, 1, 10) <> substr(p.CONTAINERNAME, 1, 10)") == 0


def test_work_orders_and_wafer_lots_are_shared(db: sqlite3.Connection) -> None:
    assert scalar(db, "SELECT MAX(n) FROM (SELECT COUNT(*) n FROM DW_MES_CONTAINER GROUP BY MFGORDERNAME)") >= 5
    assert scalar(db, "SELECT COUNT(*) FROM (SELECT FIRSTNAME FROM DW_MES_CONTAINER WHERE SPLITFROMID IS NULL "
                      "AND OBJECTTYPE = 'LOT' GROUP BY FIRSTNAME HAVING COUNT(*) > 1)") > 10


def test_merges_combine_tested_lots_into_finished_lots(db: sqlite3.Connection) -> None:
    kinds = dict(db.execute("SELECT CONTAINERID, OBJECTTYPE FROM DW_MES_CONTAINER"))
    rows = db.execute("SELECT CONTAINERID, CONTAINERNAME, LOTID, FINISHEDNAME FROM DW_MES_PJ_COMBINEDASSYLOTS")
    rows = rows.fetchall()
    sources = defaultdict(list)
    serials = defaultdict(set)
    for source, _, finished, serial in rows:
        assert kinds[source] == "LOT" and kinds[finished] == "FINISHED"
        sources[finished].append(source)
        serials[finished].add(serial)
    assert len({r[0] for r in rows}) == len(rows)  # an assembly lot is combined once
    assert set(sources) == {cid for cid, kind in kinds.items() if kind == "FINISHED"}
    assert all(len(s) == 1 and re.fullmatch(r"SN\d{10}", next(iter(s))) for s in serials.values())
    assert len({next(iter(s)) for s in serials.values()}) == len(serials)
    several = sum(1 for s in sources.values() if len(s) >= 2)
    assert several >= 0.6 * len(sources)
    assert max(len(s) for s in sources.values()) >= 4
    # Names recorded with the combine are the sources' names.
    assert scalar(db, "SELECT COUNT(*) FROM DW_MES_PJ_COMBINEDASSYLOTS m JOIN DW_MES_CONTAINER c "
                      "ON c.CONTAINERID = m.CONTAINERID WHERE c.CONTAINERNAME <> m.CONTAINERNAME") == 0


def test_spec_view_maps_the_route(db: sqlite3.Connection) -> None:
    rows = db.execute("SELECT SPECNAME, WORKCENTERNAME, WORKCENTER_GROUP, WORKCENTERSEQUENCE_GROUP "
                      "FROM DW_MES_SPEC_WORKCENTER_V").fetchall()
    assert len(STATION_GROUPS) == 9
    assert {r[2] for r in rows} == set(STATION_GROUPS)
    for _, workcenter, group, sequence in rows:
        assert sequence == STATION_GROUPS.index(group) + 1
        assert workcenter in WORK_CENTERS[group]
    assert set(WORK_CENTERS["測試"]) == {FINAL_TEST_WORKCENTER, TMTT_WORKCENTER}
    # Every history row names a spec of the view, under that spec's work center.
    assert scalar(db, "SELECT COUNT(*) FROM DW_MES_LOTWIPHISTORY h LEFT JOIN DW_MES_SPEC_WORKCENTER_V v "
                      "ON v.SPECNAME = h.SPECNAME WHERE v.WORKCENTERNAME IS NULL "
                      "OR v.WORKCENTERNAME <> h.WORKCENTERNAME") == 0
    # Each group has several machines with stable ids.
    machines = db.execute("SELECT v.WORKCENTER_GROUP, COUNT(DISTINCT h.EQUIPMENTNAME), COUNT(DISTINCT h.EQUIPMENTID) "
                          "FROM DW_MES_LOTWIPHISTORY h JOIN DW_MES_SPEC_WORKCENTER_V v USING (SPECNAME) "
                          "WHERE h.EQUIPMENTID IS NOT NULL GROUP BY 1").fetchall()
    assert {m[0] for m in machines} == set(STATION_GROUPS)
    assert all(m[1] >= 3 and m[1] == m[2] for m in machines)


def test_track_ins_follow_the_route(db: sqlite3.Connection) -> None:
    rows = db.execute(
        "SELECT h.CONTAINERID, v.WORKCENTERSEQUENCE_GROUP, h.TRACKINTIMESTAMP, h.TRACKOUTTIMESTAMP "
        "FROM DW_MES_LOTWIPHISTORY h JOIN DW_MES_SPEC_WORKCENTER_V v USING (SPECNAME) "
        "WHERE h.TRACKINTIMESTAMP IS NOT NULL AND h.EQUIPMENTID IS NOT NULL ORDER BY h.HISTORYID"
    ).fetchall()
    last: dict[str, tuple[int, str]] = {}
    for cid, sequence, track_in, track_out in rows:
        if track_out is not None:
            assert track_out > track_in
        if cid in last:
            previous_sequence, previous_in = last[cid]
            assert sequence >= previous_sequence
            assert track_in >= previous_in
        last[cid] = (sequence, track_in)


def test_partial_track_outs_and_noise_rows_exist(db: sqlite3.Connection) -> None:
    partial = db.execute(
        "SELECT CONTAINERID, EQUIPMENTID, SPECNAME, TRACKINTIMESTAMP, COUNT(*), COUNT(DISTINCT TRACKOUTTIMESTAMP) "
        "FROM DW_MES_LOTWIPHISTORY WHERE EQUIPMENTID IS NOT NULL AND TRACKINTIMESTAMP IS NOT NULL "
        "GROUP BY 1, 2, 3, 4 HAVING COUNT(*) > 1"
    ).fetchall()
    assert len(partial) >= 100
    assert all(r[4] == r[5] for r in partial)  # each part has its own track-out time
    assert scalar(db, "SELECT COUNT(*) FROM DW_MES_LOTWIPHISTORY WHERE EQUIPMENTID IS NULL") > 0
    assert scalar(db, "SELECT COUNT(*) FROM DW_MES_LOTWIPHISTORY WHERE TRACKINTIMESTAMP IS NULL") > 0
    # Noise stays noise: a small minority.
    assert scalar(db, "SELECT COUNT(*) FROM DW_MES_LOTWIPHISTORY WHERE EQUIPMENTID IS NULL "
                      "OR TRACKINTIMESTAMP IS NULL") < 0.01 * scalar(db, "SELECT COUNT(*) FROM DW_MES_LOTWIPHISTORY")


def test_lots_at_test_cover_the_whole_window(db: sqlite3.Connection) -> None:
    # What the mid-section-defect profile seeds from: lots tracked in at the 測試 group in a date range.
    window_end = START + timedelta(days=DAYS)
    per_month = defaultdict(set)
    for cid, track_in in db.execute(
        "SELECT h.CONTAINERID, h.TRACKINTIMESTAMP FROM DW_MES_LOTWIPHISTORY h "
        "JOIN DW_MES_SPEC_WORKCENTER_V v USING (SPECNAME) WHERE v.WORKCENTER_GROUP = '測試' "
        "AND h.TRACKINTIMESTAMP IS NOT NULL"
    ):
        assert str(START - timedelta(days=LEAD_DAYS)) <= track_in < str(window_end)
        per_month[track_in[:7]].add(cid)
    months = sorted(m for m in per_month if str(START)[:7] <= m <= str(window_end)[:7])
    assert len(months) == 6
    assert all(len(per_month[m]) >= 50 for m in months[:-1])
    tested = scalar(db, "SELECT COUNT(DISTINCT CONTAINERID) FROM DW_MES_LOTWIPHISTORY "
                        "WHERE WORKCENTERNAME IN (?, ?) AND TRACKINTIMESTAMP >= ? AND TRACKINTIMESTAMP < ?",
                    FINAL_TEST_WORKCENTER, TMTT_WORKCENTER, str(START), str(window_end))
    assert tested >= 0.7 * LOTS


def test_timestamps_are_text_to_the_second(db: sqlite3.Connection) -> None:
    checked = 0
    for table in TABLES:
        for _, column, declared, *_ in db.execute(f"PRAGMA table_info({table})"):
            if declared != "TIMESTAMP":
                continue
            types = {r[0] for r in db.execute(f"SELECT DISTINCT typeof({column}) FROM {table}")}
            assert types <= {"text", "null"}, (table, column, types)
            for (value,) in db.execute(f"SELECT {column} FROM {table} WHERE {column} IS NOT NULL"):
                assert TS_RE.match(value), (table, column, value)
                datetime.strptime(value, "%Y-%m-%d %H:%M:%S")
                checked += 1
    assert checked > 10_000


def test_holds_released_and_still_open(db: sqlite3.Connection) -> None:
    released = scalar(db, "SELECT COUNT(*) FROM DW_MES_HOLDRELEASEHISTORY WHERE RELEASETXNDATE IS NOT NULL")
    open_holds = scalar(db, "SELECT COUNT(*) FROM DW_MES_HOLDRELEASEHISTORY WHERE RELEASETXNDATE IS NULL")
    assert released > open_holds > 0
    assert scalar(db, "SELECT COUNT(*) FROM DW_MES_HOLDRELEASEHISTORY WHERE RELEASETXNDATE <= HOLDTXNDATE") == 0


def test_materials_and_rejects_are_recorded_at_stations(db: sqlite3.Connection) -> None:
    assert scalar(db, "SELECT COUNT(*) FROM DW_MES_LOTMATERIALSHISTORY WHERE MATERIALPARTNAME IS NULL "
                      "OR MATERIALLOTNAME IS NULL OR QTYCONSUMED <= 0 OR EQUIPMENTNAME IS NULL") == 0
    assert scalar(db, "SELECT COUNT(DISTINCT MATERIALPARTNAME) FROM DW_MES_LOTMATERIALSHISTORY") >= 8
    # The five reject columns add up to the units rejected: at least one, at most the defects found.
    total = ("COALESCE(REJECTQTY, 0) + COALESCE(STANDBYQTY, 0) + COALESCE(QTYTOPROCESS, 0) "
             "+ COALESCE(INPROCESSQTY, 0) + COALESCE(PROCESSEDQTY, 0)")
    assert scalar(db, "SELECT COUNT(*) FROM DW_MES_LOTREJECTHISTORY WHERE LOSSREASONNAME IS NULL "
                      f"OR DEFECTQTY IS NULL OR {total} < 1 OR {total} > DEFECTQTY") == 0
    assert scalar(db, "SELECT COUNT(*) FROM DW_MES_LOTREJECTHISTORY WHERE STANDBYQTY IS NULL") > 0
    # Failures at test are counted as processed units.
    assert scalar(db, "SELECT COUNT(*) FROM DW_MES_LOTREJECTHISTORY WHERE PROCESSEDQTY > 0") > 0
    assert scalar(db, "SELECT COUNT(DISTINCT WORKCENTERNAME) FROM DW_MES_LOTREJECTHISTORY") >= 8


def test_every_container_id_column_is_indexed(db: sqlite3.Connection) -> None:
    for table in TABLES:
        columns = [r[1] for r in db.execute(f"PRAGMA table_info({table})")]
        if "CONTAINERID" not in columns:
            continue
        first_columns = set()
        for index in db.execute(f"PRAGMA index_list({table})").fetchall():
            info = db.execute(f"PRAGMA index_info({index[1]})").fetchall()
            first_columns.add(info[0][2])
        assert "CONTAINERID" in first_columns, table
    assert scalar(db, "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name = 'IX_COMB_LOTID'") == 1


def _defect_rates(db: sqlite3.Connection, exposed_sql: str, *params: object) -> tuple[float, float, int]:
    """Defect rate at final test (DEFECTQTY / units tracked in) of lots whose genealogy is exposed, and not."""
    rows = db.execute(
        ANCESTRY_CTE + f""",
        exposed AS (SELECT DISTINCT anc.cid FROM anc WHERE {exposed_sql}),
        tested AS (
            SELECT CONTAINERID AS cid, SUM(TRACKINQTY) AS units FROM (
                SELECT DISTINCT CONTAINERID, TRACKINTIMESTAMP, TRACKINQTY FROM DW_MES_LOTWIPHISTORY
                WHERE WORKCENTERNAME = ? AND TRACKINTIMESTAMP IS NOT NULL AND EQUIPMENTID IS NOT NULL
            ) GROUP BY 1),
        defects AS (SELECT CONTAINERID AS cid, SUM(DEFECTQTY) AS n FROM DW_MES_LOTREJECTHISTORY
                    WHERE WORKCENTERNAME = ? GROUP BY 1)
        SELECT t.cid IN exposed, SUM(COALESCE(d.n, 0)) * 1.0 / SUM(t.units), COUNT(*)
        FROM tested t LEFT JOIN defects d USING (cid) GROUP BY 1""",
        (*params, FINAL_TEST_WORKCENTER, FINAL_TEST_WORKCENTER),
    ).fetchall()
    by_flag = {flag: (rate, n) for flag, rate, n in rows}
    return by_flag[1][0], by_flag[0][0], by_flag[1][1]


def test_planted_machine_signal(db: sqlite3.Connection) -> None:
    marks = ",".join("?" * len(BAD_MACHINES))
    exposed, clean, lots = _defect_rates(
        db,
        f"EXISTS (SELECT 1 FROM DW_MES_LOTWIPHISTORY h WHERE h.CONTAINERID = anc.aid AND h.EQUIPMENTNAME IN ({marks}))",
        *BAD_MACHINES,
    )
    assert lots >= 100
    assert exposed > 5 * clean
    # The bad machines also stand out one by one against every other machine of their step.
    for bad in BAD_MACHINES:
        group_rates = db.execute(
            ANCESTRY_CTE + """,
            through AS (SELECT DISTINCT anc.cid, h.EQUIPMENTNAME AS machine FROM anc
                        JOIN DW_MES_LOTWIPHISTORY h ON h.CONTAINERID = anc.aid
                        WHERE h.EQUIPMENTNAME LIKE ? AND h.EQUIPMENTID IS NOT NULL),
            tested AS (SELECT CONTAINERID AS cid, MAX(TRACKINQTY) AS units FROM DW_MES_LOTWIPHISTORY
                       WHERE WORKCENTERNAME = ? AND TRACKINTIMESTAMP IS NOT NULL GROUP BY 1),
            defects AS (SELECT CONTAINERID AS cid, SUM(DEFECTQTY) AS n FROM DW_MES_LOTREJECTHISTORY
                        WHERE WORKCENTERNAME = ? GROUP BY 1)
            SELECT machine, SUM(COALESCE(d.n, 0)) * 1.0 / SUM(t.units) AS rate FROM through
            JOIN tested t USING (cid) LEFT JOIN defects d USING (cid) GROUP BY machine ORDER BY rate DESC""",
            (bad.split("-")[0] + "-%", FINAL_TEST_WORKCENTER, FINAL_TEST_WORKCENTER),
        ).fetchall()
        assert group_rates[0][0] == bad, group_rates[:3]


def test_planted_material_signal(db: sqlite3.Connection) -> None:
    marks = ",".join("?" * len(BAD_MATERIAL_LOTS))
    exposed, clean, lots = _defect_rates(
        db,
        "EXISTS (SELECT 1 FROM DW_MES_LOTMATERIALSHISTORY m WHERE m.CONTAINERID = anc.aid "
        f"AND m.MATERIALLOTNAME IN ({marks}))",
        *BAD_MATERIAL_LOTS,
    )
    assert lots >= 10
    assert exposed > 3 * clean
    # The bad material lots are loaded on machines other than the bad ones, so neither signal is an
    # alias of the other.
    machines = {r[0] for r in db.execute(
        f"SELECT DISTINCT EQUIPMENTNAME FROM DW_MES_LOTMATERIALSHISTORY WHERE MATERIALLOTNAME IN ({marks})",
        BAD_MATERIAL_LOTS,
    )}
    assert machines and not machines & set(BAD_MACHINES)


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path) -> None:
    first, again, other = tmp_path / "a.sqlite", tmp_path / "b.sqlite", tmp_path / "c.sqlite"
    assert build_demo_warehouse(first, 400, seed=3, progress=False) == build_demo_warehouse(
        again, 400, seed=3, progress=False
    )
    build_demo_warehouse(other, 400, seed=4, progress=False)
    assert table_digest(first) == table_digest(again)
    assert table_digest(first) != table_digest(other)


def test_replaces_an_existing_file_and_shows_progress(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "w.sqlite"
    path.write_bytes(b"not a database")
    build_demo_warehouse(str(path), 300, seed=1, progress=True)
    err = capsys.readouterr().err
    assert "\r[" in err and "100%" in err
    assert not Path(f"{path}.tmp").exists()
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT COUNT(*) FROM DW_MES_CONTAINER").fetchone()[0] > 200
    conn.close()
    build_demo_warehouse(path, 300, seed=1, progress=False)
    assert capsys.readouterr().err == ""


def test_other_windows_and_bad_arguments(tmp_path: Path) -> None:
    counts = build_demo_warehouse(tmp_path / "short.sqlite", 300, seed=2, progress=False,
                                  start_date=date(2025, 3, 1), days=20)
    assert counts["DW_MES_CONTAINER"] > 200
    conn = sqlite3.connect(tmp_path / "short.sqlite")
    low, high = conn.execute("SELECT MIN(TRACKINTIMESTAMP), MAX(TRACKINTIMESTAMP) FROM DW_MES_LOTWIPHISTORY").fetchone()
    conn.close()
    assert "2025-02-22" <= low and high < "2025-03-21"
    with pytest.raises(ValueError):
        build_demo_warehouse(tmp_path / "none.sqlite", 0)


def test_the_service_reads_it_attached_as_dwh(built: tuple[Path, dict[str, int]]) -> None:
    import sanic_trace.db.sqlite_source  # noqa: F401  (registers the TIMESTAMP converter)

    conn = sqlite3.connect(":memory:", detect_types=sqlite3.PARSE_DECLTYPES)
    conn.execute("ATTACH DATABASE ? AS DWH", (str(built[0]),))
    value = conn.execute("SELECT TRACKINTIMESTAMP FROM DWH.DW_MES_LOTWIPHISTORY "
                         "WHERE TRACKINTIMESTAMP IS NOT NULL LIMIT 1").fetchone()[0]
    conn.close()
    assert isinstance(value, datetime)


def test_machines_have_families_but_the_aoi_stations_and_containers_have_workflows(db: sqlite3.Connection) -> None:
    used = {r[0]: r[1] for r in db.execute("SELECT DISTINCT EQUIPMENTID, EQUIPMENTNAME FROM DW_MES_LOTWIPHISTORY "
                                            "WHERE EQUIPMENTID IS NOT NULL")}
    families = {r[0]: (r[1], r[2]) for r in db.execute("SELECT RESOURCEID, RESOURCENAME, RESOURCEFAMILYNAME "
                                                         "FROM DW_MES_RESOURCE")}
    for equipment_id, name in used.items():
        if name.startswith("AOI-"):
            assert equipment_id not in families  # a machine of no family: readers show (未知)
        else:
            assert families[equipment_id][0] == name and families[equipment_id][1], equipment_id
    assert families["EQ05007"] == ("WB-07", "WIRE BONDER")
    assert scalar(db, "SELECT COUNT(*) FROM DW_MES_CONTAINER WHERE WORKFLOWNAME IS NULL") == 0
    assert scalar(db, "SELECT COUNT(*) FROM DW_MES_CONTAINER WHERE OBJECTTYPE = 'FINISHED' "
                      "AND WORKFLOWNAME NOT LIKE 'WF-%-FINISH'") == 0
