"""Warehouses of the tests: written row by row (WarehouseBuilder), or generated (the demo), built once.

`WarehouseBuilder` creates a SQLite file from the demo schema (sanic_trace/demo/schema.sql) and
inserts the rows a test asks for, so that every genealogy and event is known exactly (the shared
scenario is support.standard_warehouse, the MSD ones support.msd_warehouses). `open_warehouse`
reads a file through the service's SQLite source, which attaches it AS DWH exactly as in the service.

`DemoWarehouses` builds generated demo warehouses on first use and hands the same file to every
test module that asks for the same size and seed (conftest's session fixture `demo_warehouses`).
"""

from __future__ import annotations

import os
import sqlite3
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from sanic_trace.db.sqlite_source import SqliteSource
from sanic_trace.demo.generator import build_demo_warehouse
from sanic_trace.sql import SqlLibrary

SCHEMA_SQL = Path(__file__).resolve().parents[2] / "sanic_trace" / "demo" / "schema.sql"
# The generator lands within a few percent of the lots asked for; 61,500 gives > 60,000 containers.
LOTS_60K = 61_500
MIN_CONTAINERS_60K = 60_000


def cid(n: int) -> str:
    """A container id in the warehouse's shape: 16 lowercase hex characters."""
    return f"{n:016x}"


def ts(text: str) -> datetime:
    return datetime.fromisoformat(text)


class WarehouseBuilder:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.db = sqlite3.connect(self.path)
        self.db.executescript(SCHEMA_SQL.read_text(encoding="utf-8"))
        self._ids: dict[str, int] = {}

    def _next_id(self, table: str) -> int:
        self._ids[table] = self._ids.get(table, 0) + 1
        return self._ids[table]

    def _insert(self, table: str, **values: Any) -> None:
        values = {k: (v.strftime("%Y-%m-%d %H:%M:%S") if isinstance(v, datetime) else v) for k, v in values.items()}
        names = ", ".join(values)
        marks = ", ".join("?" for _ in values)
        self.db.execute(f"INSERT INTO {table} ({names}) VALUES ({marks})", list(values.values()))

    def container(
        self,
        container_id: str,
        name: str,
        *,
        split_from: str | None = None,
        firstname: str | None = None,
        work_order: str | None = None,
        object_type: str = "LOT",
    ) -> str:
        self._insert(
            "DW_MES_CONTAINER",
            CONTAINERID=container_id,
            CONTAINERNAME=name,
            SPLITFROMID=split_from,
            FIRSTNAME=firstname,
            MFGORDERNAME=work_order,
            OBJECTTYPE=object_type,
            QTY=100,
            CREATETIMESTAMP=ts("2025-01-01 00:00:00"),
        )
        return container_id

    def combine(self, lot_id: str, sources: list[str], finished_name: str) -> None:
        for source in sources:
            self._insert(
                "DW_MES_PJ_COMBINEDASSYLOTS",
                COMBINEID=self._next_id("combine"),
                CONTAINERID=source,
                CONTAINERNAME=None,
                LOTID=lot_id,
                FINISHEDNAME=finished_name,
                COMBINEDQTY=100,
                TXNDATE=ts("2025-01-20 00:00:00"),
            )

    def spec(self, spec: str, workcenter: str, group: str, sequence: int) -> None:
        self._insert(
            "DW_MES_SPEC_WORKCENTER_V",
            SPECNAME=spec,
            WORKCENTERNAME=workcenter,
            WORKCENTER_GROUP=group,
            WORKCENTERSEQUENCE_GROUP=sequence,
        )

    def history(
        self,
        container_id: str,
        workcenter: str | None,
        spec: str | None,
        equipment: str | None,
        track_in: str | None,
        track_out: str | None,
        *,
        qty_in: int | None = 100,
        qty_out: int | None = 100,
    ) -> int:
        history_id = self._next_id("history")
        self._insert(
            "DW_MES_LOTWIPHISTORY",
            HISTORYID=history_id,
            CONTAINERID=container_id,
            WORKCENTERNAME=workcenter,
            SPECNAME=spec,
            EQUIPMENTID=equipment,
            EQUIPMENTNAME=None if equipment is None else f"{equipment}-NAME",
            TRACKINTIMESTAMP=None if track_in is None else ts(track_in),
            TRACKOUTTIMESTAMP=None if track_out is None else ts(track_out),
            TRACKINQTY=qty_in,
            TRACKOUTQTY=qty_out,
        )
        return history_id

    def material(self, container_id: str, part: str, lot: str, qty: float, txn: str | None) -> None:
        self._insert(
            "DW_MES_LOTMATERIALSHISTORY",
            MATERIALHISTORYID=self._next_id("material"),
            CONTAINERID=container_id,
            MATERIALPARTNAME=part,
            MATERIALLOTNAME=lot,
            QTYCONSUMED=qty,
            WORKCENTERNAME="DB-01",
            SPECNAME="SP-DB",
            EQUIPMENTNAME="EQ-DB-1-NAME",
            TXNDATE=None if txn is None else ts(txn),
        )

    def reject(self, container_id: str, spec: str, reason: str, txn: str | None, **quantities: int | None) -> None:
        columns = ("REJECTQTY", "STANDBYQTY", "QTYTOPROCESS", "INPROCESSQTY", "PROCESSEDQTY")
        qty = {k: quantities.get(k) for k in columns}
        self._insert(
            "DW_MES_LOTREJECTHISTORY",
            REJECTHISTORYID=self._next_id("reject"),
            CONTAINERID=container_id,
            WORKCENTERNAME=None,
            SPECNAME=spec,
            EQUIPMENTNAME="EQ-NAME",
            LOSSREASONNAME=reason,
            DEFECTQTY=quantities.get("DEFECTQTY"),
            REJECTCOMMENT=None,
            TXNDATE=None if txn is None else ts(txn),
            **qty,
        )

    def hold(self, container_id: str, held: str, released: str | None, reason: str = "QC") -> None:
        self._insert(
            "DW_MES_HOLDRELEASEHISTORY",
            HOLDHISTORYID=self._next_id("hold"),
            CONTAINERID=container_id,
            WORKCENTERNAME="DB-01",
            HOLDTXNDATE=ts(held),
            HOLDREASONNAME=reason,
            RELEASETXNDATE=None if released is None else ts(released),
        )

    def job(self, job_id: str, resource: str, container_ids: list[str], created: str | None) -> None:
        self._insert(
            "DW_MES_JOB",
            JOBID=job_id,
            RESOURCENAME=resource,
            JOBMODELNAME="PM",
            JOBSTATUS="COMPLETE",
            CREATEDATE=None if created is None else ts(created),
            COMPLETEDATE=None,
            CONTAINERIDS=",".join(container_ids),
            CONTAINERNAMES=None,
        )

    def close(self) -> Path:
        self.db.commit()
        self.db.close()
        return self.path


def open_warehouse(
    path: str | Path, fetch_size: int = 1000, in_batch_size: int = 1000, sql_override_dir: Path | None = None
) -> SqliteSource:
    return SqliteSource(path, fetch_size, 30, in_batch_size, SqlLibrary(sql_override_dir))


def container_ids(db: sqlite3.Connection, limit: int | None = None) -> list[str]:
    """The warehouse's container ids, sorted (the first `limit` of them)."""
    sql = "SELECT CONTAINERID FROM DW_MES_CONTAINER ORDER BY CONTAINERID"
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    return [row[0] for row in db.execute(sql)]


class DemoWarehouses:
    """Generated demo warehouses, each built on first use in this session: `demo_warehouses(lots, seed=1)`.

    TRACE_TEST_WAREHOUSE_DIR names a directory where a file built earlier with the same lots and
    seed is reused (and a missing one is built): handy when running the slow tests again and again.
    Tests only read these files: a test that writes into a warehouse builds its own.
    """

    def __init__(self, factory: pytest.TempPathFactory) -> None:
        self.factory = factory
        self.built: dict[tuple[int, int], Path] = {}
        self.lock = threading.Lock()

    def __call__(self, lots: int, seed: int = 1) -> Path:
        with self.lock:
            if (lots, seed) not in self.built:
                self.built[(lots, seed)] = self._build(lots, seed)
            return self.built[(lots, seed)]

    def _build(self, lots: int, seed: int) -> Path:
        reuse_dir = os.environ.get("TRACE_TEST_WAREHOUSE_DIR")
        if reuse_dir:
            path = Path(reuse_dir) / f"demo-{lots}-seed{seed}.sqlite"
            if path.exists():
                return path
            path.parent.mkdir(parents=True, exist_ok=True)
        else:
            path = self.factory.mktemp(f"warehouse-{lots}") / f"demo-{lots}-seed{seed}.sqlite"
        build_demo_warehouse(path, lots, seed=seed, progress=False)
        return path
