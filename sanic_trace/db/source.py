"""A data source: the one streaming primitive every query goes through.

`DataSource.stream(sql, params)` yields `(columns, rows)` batches fetched with
`cursor.fetchmany` — never `fetchall` — and releases cursor and connection in `finally`,
also when the consumer stops early (closing the generator, or dropping it).
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sanic_trace.db.batching import ORACLE_MAX_IN_LIST
from sanic_trace.db.url import SqliteUrl, parse_db_url
from sanic_trace.sql import SqlLibrary

if TYPE_CHECKING:
    from sanic_trace.settings import Settings

Batch = tuple[list[str], list[Sequence[Any]]]


class DataSource(ABC):
    """Opens connections and streams query results in fetchmany batches."""

    name: str = "abstract"

    def __init__(
        self,
        fetch_size: int,
        timeout_seconds: float,
        in_batch_size: int = ORACLE_MAX_IN_LIST,
        sql: SqlLibrary | None = None,
    ) -> None:
        self.fetch_size = fetch_size
        self.timeout_seconds = timeout_seconds
        # Ids per bound IN-list of every id query through this source (DB_IN_BATCH_SIZE, ≤ 1000).
        self.in_batch_size = in_batch_size
        # Every query is loaded through here: the packaged SQL or, for fault injection, an override.
        self.sql = sql or SqlLibrary()
        # Cursors currently open through stream(); tests check that early stops release them.
        self._open_cursors = 0
        self._lock = threading.Lock()

    @property
    def open_cursors(self) -> int:
        return self._open_cursors

    def _count_cursor(self, delta: int) -> None:
        with self._lock:
            self._open_cursors += delta

    def stream(
        self, sql: str, params: Mapping[str, Any] | None = None, fetch_size: int | None = None
    ) -> Iterator[Batch]:
        size = fetch_size or self.fetch_size
        connection = self._acquire()
        cursor = None
        try:
            cursor = self._execute(connection, sql, dict(params or {}), size)
            self._count_cursor(1)
            columns = [d[0].upper() for d in cursor.description]
            while True:
                rows = self._fetch(cursor, size)
                if not rows:
                    break
                yield columns, rows
        finally:
            if cursor is not None:
                self._count_cursor(-1)
                try:
                    cursor.close()
                except Exception:  # noqa: BLE001 - the connection is released below either way
                    pass
            self._release(connection)

    def ping(self) -> None:
        """Raise DatabaseUnavailable (or another DatabaseError) unless a trivial query answers."""
        for _ in self.stream(self.ping_sql):
            pass

    ping_sql = "SELECT 1 AS ONE FROM DUAL"

    @abstractmethod
    def _acquire(self) -> Any: ...

    @abstractmethod
    def _release(self, connection: Any) -> None: ...

    @abstractmethod
    def _execute(self, connection: Any, sql: str, params: dict[str, Any], fetch_size: int) -> Any: ...

    @abstractmethod
    def _fetch(self, cursor: Any, size: int) -> list[Sequence[Any]]: ...

    def close(self) -> None:
        """Release pooled resources (a no-op for sources without a pool)."""


def open_source(settings: Settings) -> DataSource:
    """The data source TRACE_DB_URL names, with every database setting applied."""
    target = parse_db_url(settings.db_url)
    sql = SqlLibrary(settings.sql_override_dir or None)
    common = {
        "fetch_size": settings.db_fetchmany_size,
        "timeout_seconds": settings.db_query_timeout_seconds,
        "in_batch_size": settings.db_in_batch_size,
        "sql": sql,
    }
    if isinstance(target, SqliteUrl):
        from sanic_trace.db.sqlite_source import SqliteSource

        return SqliteSource(target.path, **common)
    from sanic_trace.db.oracle_source import OracleSource

    return OracleSource(target, pool_min=settings.db_pool_min, pool_max=settings.db_pool_max, **common)
