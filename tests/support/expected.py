"""The expected records of the events domains, independent of the service.

Plain sqlite3 queries over the warehouse file, written differently from the service's SQL (Python
grouping and string splitting instead of window functions and INSTR), so that a mistake shared by
both is unlikely. Nothing here imports the service.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

DOMAINS5 = ["history", "materials", "rejects", "holds", "jobs"]
ALL_DOMAINS = [*DOMAINS5, "upstream_history", "downstream_rejects"]


def iso(value: Any) -> Any:
    """A TIMESTAMP as the file stores it ('YYYY-MM-DD HH:MM:SS') → as the API sends it (ISO 8601)."""
    if isinstance(value, str) and len(value) == 19 and value[10] == " ":
        return value.replace(" ", "T")
    return value


def _rows(db: sqlite3.Connection, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
    cursor = db.execute(sql, params)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row)) for row in cursor]


def _null_last(value: Any) -> tuple[int, Any]:
    return (1, "") if value is None else (0, value)


def _in_ids(db: sqlite3.Connection, table: str, ids: Sequence[str]) -> list[dict[str, Any]]:
    """Every row of `table` for the ids, through a temp table (no IN-list limit, no service SQL)."""
    db.execute("CREATE TEMP TABLE IF NOT EXISTS WANTED (CID TEXT PRIMARY KEY)")
    db.execute("DELETE FROM WANTED")
    db.executemany("INSERT OR IGNORE INTO WANTED VALUES (?)", [(i,) for i in ids])
    return _rows(db, f"SELECT T.* FROM {table} T JOIN WANTED W ON W.CID = T.CONTAINERID")


def expected_history(db: sqlite3.Connection, ids: Sequence[str]) -> list[dict[str, Any]]:
    """One record per (container, machine, spec, track-in); the row with the latest track-out wins."""
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = defaultdict(list)
    for row in _in_ids(db, "DW_MES_LOTWIPHISTORY", ids):
        if row["EQUIPMENTID"] is None or row["TRACKINTIMESTAMP"] is None:
            continue
        groups[(row["CONTAINERID"], row["EQUIPMENTID"], row["SPECNAME"], row["TRACKINTIMESTAMP"])].append(row)
    kept = [
        max(rows, key=lambda r: (r["TRACKOUTTIMESTAMP"] is not None, r["TRACKOUTTIMESTAMP"] or "", r["HISTORYID"]))
        for rows in groups.values()
    ]
    columns = [
        "CONTAINERID", "WORKCENTERNAME", "SPECNAME", "EQUIPMENTID", "EQUIPMENTNAME", "TRACKINTIMESTAMP",
        "TRACKOUTTIMESTAMP", "TRACKINQTY", "TRACKOUTQTY", "FINISHEDRUNCARD", "PJ_WORKORDER", "HISTORYID",
    ]  # fmt: skip
    kept.sort(key=lambda r: (r["CONTAINERID"], r["TRACKINTIMESTAMP"], r["HISTORYID"]))
    return [{c: iso(r[c]) for c in columns} for r in kept]


def expected_materials(db: sqlite3.Connection, ids: Sequence[str]) -> list[dict[str, Any]]:
    columns = [
        "CONTAINERID", "MATERIALPARTNAME", "MATERIALLOTNAME", "QTYCONSUMED", "WORKCENTERNAME", "SPECNAME",
        "EQUIPMENTNAME", "TXNDATE", "MATERIALHISTORYID",
    ]  # fmt: skip
    rows = _in_ids(db, "DW_MES_LOTMATERIALSHISTORY", ids)
    rows.sort(key=lambda r: (r["CONTAINERID"], _null_last(r["TXNDATE"]), r["MATERIALHISTORYID"]))
    return [{c: iso(r[c]) for c in columns} for r in rows]


REJECT_QTY_COLUMNS = ("REJECTQTY", "STANDBYQTY", "QTYTOPROCESS", "INPROCESSQTY", "PROCESSEDQTY")


def expected_rejects(db: sqlite3.Connection, ids: Sequence[str]) -> list[dict[str, Any]]:
    rows = _in_ids(db, "DW_MES_LOTREJECTHISTORY", ids)
    rows.sort(key=lambda r: (r["CONTAINERID"], _null_last(r["TXNDATE"]), r["REJECTHISTORYID"]))
    out = []
    for r in rows:
        record = {c: r[c] for c in ("CONTAINERID", "WORKCENTERNAME", "SPECNAME", "EQUIPMENTNAME", "LOSSREASONNAME")}
        record.update({c: r[c] for c in REJECT_QTY_COLUMNS})
        record["REJECT_TOTAL_QTY"] = sum(r[c] or 0 for c in REJECT_QTY_COLUMNS)
        record.update({c: iso(r[c]) for c in ("DEFECTQTY", "REJECTCOMMENT", "TXNDATE", "REJECTHISTORYID")})
        out.append(record)
    return out


def expected_holds(db: sqlite3.Connection, ids: Sequence[str]) -> list[dict[str, Any]]:
    rows = _in_ids(db, "DW_MES_HOLDRELEASEHISTORY", ids)
    rows.sort(key=lambda r: (r["CONTAINERID"], _null_last(r["HOLDTXNDATE"]), r["HOLDHISTORYID"]))
    out = []
    for r in rows:
        held, released = r["HOLDTXNDATE"], r["RELEASETXNDATE"]
        hours = None
        if held is not None and released is not None:
            seconds = (datetime.fromisoformat(released) - datetime.fromisoformat(held)).total_seconds()
            hours = round(seconds / 3600, 2)
        out.append(
            {
                "CONTAINERID": r["CONTAINERID"],
                "WORKCENTERNAME": r["WORKCENTERNAME"],
                "HOLD_STATUS": "HOLD" if released is None else "RELEASED",
                "HOLDTXNDATE": iso(held),
                "HOLDEMPNAME": r["HOLDEMPNAME"],
                "HOLDREASONNAME": r["HOLDREASONNAME"],
                "HOLDCOMMENTS": r["HOLDCOMMENTS"],
                "RELEASETXNDATE": iso(released),
                "RELEASEEMPNAME": r["RELEASEEMPNAME"],
                "RELEASECOMMENTS": r["RELEASECOMMENTS"],
                "NCRID": r["NCRID"],
                "HOLDHISTORYID": r["HOLDHISTORYID"],
                "HOLD_HOURS": hours,
            }
        )
    return out


def expected_jobs(db: sqlite3.Connection, ids: Sequence[str]) -> list[dict[str, Any]]:
    """One record per (job, listed container among the ids): CONTAINERIDS split in Python."""
    wanted = set(ids)
    known = {row[0] for row in db.execute("SELECT CONTAINERID FROM DW_MES_CONTAINER")}
    out = []
    for job in _rows(db, "SELECT * FROM DW_MES_JOB"):
        for listed in set((job["CONTAINERIDS"] or "").split(",")):
            if listed in wanted and listed in known:
                out.append(
                    {
                        "CONTAINERID": listed,
                        **{
                            c: iso(job[c])
                            for c in (
                                "JOBID",
                                "RESOURCENAME",
                                "JOBMODELNAME",
                                "JOBSTATUS",
                                "CREATEDATE",
                                "COMPLETEDATE",
                                "SYMPTOMCODENAME",
                                "CAUSECODENAME",
                                "REPAIRCODENAME",
                            )  # fmt: skip
                        },
                    }
                )
    out.sort(key=lambda r: (r["CONTAINERID"], _null_last(r["CREATEDATE"]), r["JOBID"]))
    return out


def _spec_groups(db: sqlite3.Connection) -> dict[str, tuple[str, int]]:
    return {
        spec: (group, sequence)
        for spec, group, sequence in db.execute(
            "SELECT SPECNAME, WORKCENTER_GROUP, WORKCENTERSEQUENCE_GROUP FROM DW_MES_SPEC_WORKCENTER_V"
        )
    }


def expected_upstream_history(db: sqlite3.Connection, ids: Sequence[str]) -> list[dict[str, Any]]:
    """One record per (container, work center, machine): first track-in row, last track-out, row count."""
    specs = _spec_groups(db)
    families = dict(db.execute("SELECT RESOURCEID, RESOURCEFAMILYNAME FROM DW_MES_RESOURCE"))
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = defaultdict(list)
    for row in _in_ids(db, "DW_MES_LOTWIPHISTORY", ids):
        if row["EQUIPMENTID"] is not None and row["TRACKINTIMESTAMP"] is not None:
            groups[(row["CONTAINERID"], row["WORKCENTERNAME"], row["EQUIPMENTID"])].append(row)
    out = []
    for rows in groups.values():
        first = min(rows, key=lambda r: (r["TRACKINTIMESTAMP"], r["HISTORYID"]))
        outs = [r["TRACKOUTTIMESTAMP"] for r in rows if r["TRACKOUTTIMESTAMP"] is not None]
        group, sequence = specs.get(first["SPECNAME"], (None, None))
        out.append(
            {
                "CONTAINERID": first["CONTAINERID"],
                "WORKCENTERNAME": first["WORKCENTERNAME"],
                "WORKCENTER_GROUP": group,
                "WORKCENTERSEQUENCE_GROUP": sequence,
                "EQUIPMENTID": first["EQUIPMENTID"],
                "EQUIPMENTNAME": first["EQUIPMENTNAME"],
                "SPECNAME": first["SPECNAME"],
                "RESOURCEFAMILYNAME": families.get(first["EQUIPMENTID"]),
                "FIRST_TRACKINTIMESTAMP": iso(first["TRACKINTIMESTAMP"]),
                # The quantity of the first track-in: the largest of its rows (partial track-outs).
                "FIRST_TRACKINQTY": max(
                    (r["TRACKINQTY"] for r in rows if r["TRACKINTIMESTAMP"] == first["TRACKINTIMESTAMP"]),
                    key=lambda q: (q is not None, q),
                ),
                "LAST_TRACKOUTTIMESTAMP": iso(max(outs)) if outs else None,
                "TRACK_ROWS": len(rows),
                "FIRST_HISTORYID": first["HISTORYID"],
            }
        )
    out.sort(key=lambda r: (r["CONTAINERID"], r["FIRST_TRACKINTIMESTAMP"], r["FIRST_HISTORYID"]))
    return out


def expected_downstream_rejects(db: sqlite3.Connection, ids: Sequence[str]) -> list[dict[str, Any]]:
    specs = _spec_groups(db)
    out = []
    for r in expected_rejects(db, ids):
        group, sequence = specs.get(r["SPECNAME"], (None, None))
        out.append(
            {
                "CONTAINERID": r["CONTAINERID"],
                "WORKCENTERNAME": r["WORKCENTERNAME"],
                "WORKCENTER_GROUP": group,
                "WORKCENTERSEQUENCE_GROUP": sequence,
                "SPECNAME": r["SPECNAME"],
                "EQUIPMENTNAME": r["EQUIPMENTNAME"],
                "LOSSREASONNAME": r["LOSSREASONNAME"],
                "REJECT_TOTAL_QTY": r["REJECT_TOTAL_QTY"],
                "DEFECTQTY": r["DEFECTQTY"],
                "TXNDATE": r["TXNDATE"],
                "REJECTHISTORYID": r["REJECTHISTORYID"],
            }
        )
    return out


EXPECTED = {
    "history": expected_history,
    "materials": expected_materials,
    "rejects": expected_rejects,
    "holds": expected_holds,
    "jobs": expected_jobs,
    "upstream_history": expected_upstream_history,
    "downstream_rejects": expected_downstream_rejects,
}
