"""Faults made real: packaged queries made slow or failing (TRACE_SQL_OVERRIDE_DIR), and a Redis that can be cut."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

SQL_DIR = Path(__file__).resolve().parents[2] / "sanic_trace" / "sql"

# A scalar subquery that counts to `steps` with a recursive CTE: SQLite evaluates it once, and only
# when a row of the outer query reaches it (so the query must match a row). ~0.5 µs a step here:
# 10**9 steps are minutes, i.e. the query is only ever ended by DB_QUERY_TIMEOUT_SECONDS.
SLOW_CONJUNCT = (
    "(WITH RECURSIVE N(X) AS (SELECT 1 UNION ALL SELECT X + 1 FROM N WHERE X < {steps}) SELECT COUNT(*) FROM N) > 0"
)


def packaged_sql(name: str) -> str:
    return (SQL_DIR / f"{name}.sql").read_text(encoding="utf-8")


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
