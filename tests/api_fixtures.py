"""Helpers of the HTTP API tests: generated warehouses, settings, clients, servers and independent SQL.

Three ways to drive the service, from cheapest to most real:
- `asgi_client(settings)`: sanic-testing's ASGI client. Each request runs the server start and
  stop listeners, so every request sees fresh connections and fresh DB slots: fine for
  contracts, useless for concurrency. It also does not enforce REQUEST_MAX_SIZE (Sanic's HTTP
  protocol does), so PAYLOAD_TOO_LARGE is tested on a live server.
- `live_server(settings)`: the app served by Sanic's real HTTP server inside the test's event loop
  (create_server), so a test can watch the app's state (e.g. its DB slots) while requests run.
- `server_process.ServerProcess` (shared with the job tests): the service in a subprocess, driven
  over HTTP; the only place where the server's own memory is measured.

The expected records of the events domains come from plain sqlite3 queries written here, in a
different way from the service's SQL (Python grouping and string splitting instead of window
functions and INSTR), so that a mistake shared by both is unlikely.
"""

from __future__ import annotations

import asyncio
import socket
import sqlite3
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from sanic import Sanic
from sanic_testing.testing import SanicASGITestClient

from sanic_trace.app import create_app
from sanic_trace.demo.generator import build_demo_warehouse
from sanic_trace.settings import Settings, load_settings

DOMAINS5 = ["history", "materials", "rejects", "holds", "jobs"]
ALL_DOMAINS = [*DOMAINS5, "upstream_history", "downstream_rejects"]

# --- warehouses ---------------------------------------------------------------------------------
# Generated once per session, whichever test module asks first (pytest would build a fixture
# imported into several modules once per module).
_WAREHOUSES: dict[tuple[int, int], Path] = {}


def demo_warehouse(factory: pytest.TempPathFactory, lots: int, seed: int = 1) -> Path:
    key = (lots, seed)
    if key not in _WAREHOUSES:
        path = factory.mktemp(f"api-warehouse-{lots}") / "warehouse.sqlite"
        build_demo_warehouse(path, lots, seed=seed, progress=False)
        _WAREHOUSES[key] = path
    return _WAREHOUSES[key]


# --- settings and apps -------------------------------------------------------------------------
def settings_env(db: Path | str, redis_url: str, prefix: str, **overrides: Any) -> dict[str, str]:
    """Environment of a test service: generous limits unless a test narrows one."""
    db_url = db if isinstance(db, str) and db.startswith("sqlite:///") else f"sqlite:///{db}"
    env = {
        "TRACE_DB_URL": db_url,
        "REDIS_URL": redis_url,
        "TRACE_REDIS_PREFIX": prefix,
        # Keep every events request of these tests on the inline path.
        "TRACE_ASYNC_CID_THRESHOLD": "50000",
        "TRACE_EVENTS_CID_LIMIT": "50000",
        "TRACE_RATE_LIMIT_SEED_RESOLVE": "0",
        "TRACE_RATE_LIMIT_LINEAGE": "0",
        "TRACE_RATE_LIMIT_EVENTS": "0",
        "TRACE_LOG_LEVEL": "INFO",
    }
    env.update({key: str(value) for key, value in overrides.items()})
    return env


def make_settings(db: Path | str, redis_url: str, prefix: str, **overrides: Any) -> Settings:
    return load_settings(settings_env(db, redis_url, prefix, **overrides))


def make_app(settings: Settings) -> Sanic:
    # No supervisor: these tests never submit jobs, and a supervisor thread per request would only cost time.
    return create_app(settings, name=f"api{uuid.uuid4().hex}", with_supervisor=False)


def asgi_client(settings: Settings) -> SanicASGITestClient:
    return SanicASGITestClient(make_app(settings))


@dataclass
class LiveServer:
    app: Sanic
    url: str

    def client(self, **kwargs: Any) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url=self.url, timeout=kwargs.pop("timeout", 60), **kwargs)


@asynccontextmanager
async def live_server(settings: Settings, *, send_buffer_bytes: int | None = None) -> AsyncIterator[LiveServer]:
    """The app on Sanic's HTTP server, in this event loop, on a free port.

    `send_buffer_bytes` fixes the kernel send buffer of its connections (otherwise autotuned up to
    megabytes): a test can then make the server block on a client that does not read.
    """
    app = make_app(settings)
    # TouchUp rewrites Sanic's own methods at start-up, once per process: a second app started in
    # this process would fail on the rewritten source. Nothing about the service depends on it.
    app.config.TOUCHUP = False
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if send_buffer_bytes is not None:
        # Accepted connections inherit it from the listening socket.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, send_buffer_bytes)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = await app.create_server(sock=sock, return_asyncio_server=True, access_log=False)
    assert server is not None
    await server.startup()
    await server.before_start()
    await server.start_serving()
    await server.after_start()
    try:
        yield LiveServer(app, f"http://127.0.0.1:{port}")
    finally:
        await server.before_stop()
        server.close()
        await server.wait_closed()
        await server.after_stop()
        sock.close()


async def wait_until(condition: Callable[[], bool], deadline_seconds: float, what: str) -> None:
    deadline = time.monotonic() + deadline_seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {deadline_seconds} s waiting for {what}")
        await asyncio.sleep(0.01)


# --- envelope ------------------------------------------------------------------------------------
def assert_error(response: Any, status: int, code: str, *, message_has: Iterable[str] = ()) -> dict[str, Any]:
    """The error envelope, exactly: success false, error {code, message (+extra)}, meta {timestamp, request_id}."""
    status_code = getattr(response, "status_code", None) or response.status
    assert status_code == status, response.text[:500]
    body = response.json() if callable(response.json) else response.json
    assert set(body) == {"success", "error", "meta"}, body
    assert body["success"] is False
    assert body["error"]["code"] == code, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    for part in message_has:
        assert part in body["error"]["message"], body["error"]["message"]
    assert set(body["meta"]) == {"timestamp", "request_id"}
    datetime.fromisoformat(body["meta"]["timestamp"].replace("Z", "+00:00"))
    assert body["meta"]["request_id"] and body["meta"]["request_id"] != "-"
    assert response.headers["X-Request-ID"] == body["meta"]["request_id"]
    return body


# --- fault injection through TRACE_SQL_OVERRIDE_DIR ----------------------------------------------
# A scalar subquery that counts to `steps` with a recursive CTE: SQLite evaluates it once, and only
# when a row of the outer query reaches it (so the query must match a row). ~0.5 µs a step here:
# 10**9 steps are minutes, i.e. the query is only ever ended by DB_QUERY_TIMEOUT_SECONDS.
SLOW_CONJUNCT = (
    "(WITH RECURSIVE N(X) AS (SELECT 1 UNION ALL SELECT X + 1 FROM N WHERE X < {steps}) SELECT COUNT(*) FROM N) > 0"
)


def packaged_sql(name: str) -> str:
    return (Path(__file__).resolve().parent.parent / "sanic_trace" / "sql" / f"{name}.sql").read_text(encoding="utf-8")


def slow_variant(name: str, steps: int = 10**9) -> str:
    """The packaged query `name` with the slow conjunct added to its `IN (:ids)` condition."""
    sql = packaged_sql(name)
    marker = "IN (:ids)"
    assert sql.count(marker) >= 1, name
    # Only the first IN-list condition: enough to make every batch with a matching row slow.
    return sql.replace(marker, f"{marker} AND {SLOW_CONJUNCT.format(steps=steps)}", 1)


def failing_variant(name: str, column: str, target: str) -> str:
    """The packaged query `name`, failing at run time ("malformed JSON") when a row of `target` is reached."""
    sql = packaged_sql(name)
    marker = "IN (:ids)"
    condition = f"CASE WHEN {column} = '{target}' THEN json('{{' || {column}) ELSE 1 END = 1"
    return sql.replace(marker, f"{marker} AND {condition}", 1)


def write_override(directory: Path, name: str, sql: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.sql"
    path.write_text(sql, encoding="utf-8")
    return path


# --- independent expectations over the SQLite file --------------------------------------------------
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


def container_ids(db: sqlite3.Connection, limit: int | None = None) -> list[str]:
    sql = "SELECT CONTAINERID FROM DW_MES_CONTAINER ORDER BY CONTAINERID"
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    return [row[0] for row in db.execute(sql)]


# --- a Redis that can be made unreachable ------------------------------------------------------------
class RedisProxy:
    """A TCP relay to the test Redis, in this event loop; cut() makes Redis unreachable for real.

    The service under test gets `url` as its REDIS_URL: until cut() it talks to the real Redis
    through the relay; after it, every open connection is closed and new ones are refused.
    """

    def __init__(self, redis_url: str) -> None:
        parts = httpx.URL(redis_url.replace("redis://", "http://", 1))
        self.target = (parts.host or "127.0.0.1", parts.port or 6379)
        self.database = parts.path.strip("/") or "0"
        self.server: asyncio.base_events.Server | None = None
        self.writers: list[asyncio.StreamWriter] = []
        self.url = ""

    async def __aenter__(self) -> RedisProxy:
        self.server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        self.url = f"redis://127.0.0.1:{port}/{self.database}"
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.cut()

    async def _relay(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(*self.target)
        self.writers += [client_writer, upstream_writer]

        async def pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                while data := await reader.read(65536):
                    writer.write(data)
                    await writer.drain()
            except (ConnectionError, asyncio.CancelledError):
                pass
            finally:
                writer.close()

        await asyncio.gather(pump(client_reader, upstream_writer), pump(upstream_reader, client_writer))

    async def cut(self) -> None:
        if self.server is not None:
            self.server.close()
            self.server = None
        for writer in self.writers:
            writer.close()
        self.writers.clear()
