"""The SQLite data source: the demo warehouse attached as schema DWH, read-only.

Timestamps live in the file as 'YYYY-MM-DD HH:MM:SS' text in TIMESTAMP-declared columns.
Explicit adapters and converters make Python datetimes go in and come out, so the same
SQL with datetime binds compares the same way here as on Oracle.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from sanic_trace.db.batching import ORACLE_MAX_IN_LIST
from sanic_trace.db.errors import DatabaseError, DatabaseUnavailable, QueryTimeout
from sanic_trace.db.source import DataSource
from sanic_trace.sql import SqlLibrary

TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S"


def _adapt_datetime(value: datetime) -> str:
    return value.strftime(TIMESTAMP_FORMAT)


def _adapt_date(value: date) -> str:
    return value.strftime("%Y-%m-%d")


def _convert_timestamp(raw: bytes) -> datetime | str:
    text = raw.decode()
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        # A malformed value is shown as stored rather than failing the whole query.
        return text


sqlite3.register_adapter(datetime, _adapt_datetime)
sqlite3.register_adapter(date, _adapt_date)
sqlite3.register_converter("TIMESTAMP", _convert_timestamp)

# How many SQLite VM steps run between two looks at the clock while a query runs.
_PROGRESS_STEPS = 20_000


class SqliteSource(DataSource):
    name = "sqlite"
    ping_sql = "SELECT 1 AS ONE"

    def __init__(
        self,
        path: str | os.PathLike[str],
        fetch_size: int,
        timeout_seconds: float,
        in_batch_size: int = ORACLE_MAX_IN_LIST,
        sql: SqlLibrary | None = None,
    ) -> None:
        super().__init__(fetch_size, timeout_seconds, in_batch_size, sql)
        self.path = Path(path)

    def _acquire(self) -> sqlite3.Connection:
        # A connection per query: cheap for SQLite, and it keeps threads and processes apart.
        if not self.path.is_file():
            raise DatabaseUnavailable(f"SQLite warehouse {self.path} does not exist")
        connection = sqlite3.connect(":memory:", detect_types=sqlite3.PARSE_DECLTYPES, check_same_thread=False)
        try:
            uri = f"file:{quote(str(self.path.resolve()))}?mode=ro"
            connection.execute("ATTACH DATABASE ? AS DWH", (uri,))
        except sqlite3.Error as exc:
            connection.close()
            raise DatabaseUnavailable(f"cannot open SQLite warehouse {self.path}: {exc}") from exc
        connection.row_factory = None
        # LIKE compares case-sensitively, as Oracle's does (SQLite's default folds ASCII case).
        connection.execute("PRAGMA case_sensitive_like = ON")
        return connection

    def _release(self, connection: sqlite3.Connection) -> None:
        connection.close()

    def _arm_deadline(self, connection: sqlite3.Connection) -> None:
        # The timeout applies to each round trip, as Oracle's call_timeout does.
        deadline = time.monotonic() + self.timeout_seconds
        connection.set_progress_handler(lambda: 1 if time.monotonic() > deadline else 0, _PROGRESS_STEPS)

    def _execute(self, connection: sqlite3.Connection, sql: str, params: dict[str, Any], fetch_size: int) -> Any:
        cursor = connection.cursor()
        cursor.arraysize = fetch_size
        self._arm_deadline(connection)
        try:
            cursor.execute(sql, params)
        except sqlite3.Error as exc:
            cursor.close()
            raise _translate(exc, self.timeout_seconds) from exc
        return cursor

    def _fetch(self, cursor: Any, size: int) -> list[Sequence[Any]]:
        self._arm_deadline(cursor.connection)
        try:
            return cursor.fetchmany(size)
        except sqlite3.Error as exc:
            raise _translate(exc, self.timeout_seconds) from exc


def _translate(exc: sqlite3.Error, timeout_seconds: float) -> DatabaseError:
    message = str(exc)
    if isinstance(exc, sqlite3.OperationalError) and "interrupted" in message:
        return QueryTimeout(f"query ran past {timeout_seconds:g} s and was interrupted")
    if isinstance(exc, sqlite3.OperationalError) and ("unable to open" in message or "locked" in message):
        return DatabaseUnavailable(message)
    return DatabaseError(f"{type(exc).__name__}: {message}")
