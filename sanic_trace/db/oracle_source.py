"""The Oracle data source: python-oracledb thin mode with a connection pool.

Each round trip is bounded by `call_timeout` (DB_QUERY_TIMEOUT_SECONDS); `arraysize` and
`prefetchrows` follow DB_FETCHMANY_SIZE, so a large fetch takes few round trips.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import oracledb

from sanic_trace.db.batching import ORACLE_MAX_IN_LIST
from sanic_trace.db.errors import DatabaseError, DatabaseUnavailable, QueryTimeout
from sanic_trace.db.source import DataSource
from sanic_trace.db.url import OracleUrl
from sanic_trace.sql import SqlLibrary

# Oracle error codes (full_code of oracledb errors) that mean "the call ran out of time":
# ORA-01013 user requested cancel (the server side of call_timeout), DPY-4024 thin-mode
# call timeout, DPI-1067 / DPI-1080 thick-mode call timeout and connection closed by it.
TIMEOUT_CODES = frozenset({"ORA-01013", "DPY-4024", "DPI-1067", "DPI-1080"})
# Codes that mean "the database cannot be reached".
UNAVAILABLE_PREFIXES = ("DPY-6", "DPY-4011", "ORA-12541", "ORA-12514", "ORA-12170", "ORA-03113", "ORA-03114")


def classify_oracle_error(exc: BaseException) -> DatabaseError:
    """Map an oracledb error onto the service's database error types."""
    code = ""
    if exc.args and hasattr(exc.args[0], "full_code"):
        code = exc.args[0].full_code or ""
    message = str(exc)
    if code in TIMEOUT_CODES or any(c in message for c in TIMEOUT_CODES):
        return QueryTimeout(message)
    if code.startswith(UNAVAILABLE_PREFIXES) or message.startswith(UNAVAILABLE_PREFIXES):
        return DatabaseUnavailable(message)
    return DatabaseError(message)


class OracleSource(DataSource):
    name = "oracle"

    def __init__(
        self,
        params: OracleUrl,
        fetch_size: int,
        timeout_seconds: float,
        in_batch_size: int = ORACLE_MAX_IN_LIST,
        sql: SqlLibrary | None = None,
        *,
        pool_min: int = 1,
        pool_max: int = 8,
    ) -> None:
        super().__init__(fetch_size, timeout_seconds, in_batch_size, sql)
        self.params = params
        self.pool_min = pool_min
        self.pool_max = pool_max
        self._pool: oracledb.ConnectionPool | None = None
        self._pool_lock = threading.Lock()

    def pool_arguments(self) -> dict[str, Any]:
        """What the pool is created with (thin mode); separate so it can be checked without a server."""
        return {
            "user": self.params.user,
            "password": self.params.password,
            "dsn": self.params.dsn,
            "min": self.pool_min,
            "max": self.pool_max,
            "increment": 1,
            "getmode": oracledb.POOL_GETMODE_TIMEDWAIT,
            "wait_timeout": int(self.timeout_seconds * 1000),
            "tcp_connect_timeout": min(self.timeout_seconds, 20.0),
        }

    def cursor_settings(self, fetch_size: int) -> dict[str, int]:
        # prefetchrows one above arraysize lets the first round trip also tell "no more rows".
        return {"arraysize": fetch_size, "prefetchrows": fetch_size + 1}

    @property
    def call_timeout_ms(self) -> int:
        return max(1, int(self.timeout_seconds * 1000))

    def _get_pool(self) -> oracledb.ConnectionPool:
        with self._pool_lock:
            if self._pool is None:
                try:
                    self._pool = oracledb.create_pool(**self.pool_arguments())
                except oracledb.Error as exc:
                    raise classify_oracle_error(exc) from exc
            return self._pool

    def _acquire(self) -> Any:
        try:
            connection = self._get_pool().acquire()
        except oracledb.Error as exc:
            raise classify_oracle_error(exc) from exc
        connection.call_timeout = self.call_timeout_ms
        return connection

    def _release(self, connection: Any) -> None:
        try:
            connection.close()  # back to the pool
        except oracledb.Error:
            pass

    def _execute(self, connection: Any, sql: str, params: dict[str, Any], fetch_size: int) -> Any:
        cursor = connection.cursor()
        for name, value in self.cursor_settings(fetch_size).items():
            setattr(cursor, name, value)
        try:
            cursor.execute(sql, params)
        except oracledb.Error as exc:
            cursor.close()
            raise classify_oracle_error(exc) from exc
        return cursor

    def _fetch(self, cursor: Any, size: int) -> list[Sequence[Any]]:
        try:
            return cursor.fetchmany(size)
        except oracledb.Error as exc:
            raise classify_oracle_error(exc) from exc

    def close(self) -> None:
        with self._pool_lock:
            if self._pool is not None:
                self._pool.close(force=True)
                self._pool = None
