"""TRACE_DB_URL, parsed in one place: `sqlite:///PATH` (the demo warehouse) or `oracle://USER:PASSWORD@HOST:PORT/SERVICE`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

SQLITE_SCHEME = "sqlite:///"
ORACLE_SCHEME = "oracle://"


@dataclass(frozen=True)
class SqliteUrl:
    path: Path  # relative paths are relative to the working directory of the service


@dataclass(frozen=True)
class OracleUrl:
    user: str
    password: str
    host: str
    port: int
    service: str

    @property
    def dsn(self) -> str:
        return f"{self.host}:{self.port}/{self.service}"


def parse_db_url(url: str) -> SqliteUrl | OracleUrl:
    """Raise ValueError saying what is accepted when `url` is neither form."""
    if url.startswith(SQLITE_SCHEME):
        path = url[len(SQLITE_SCHEME) :]
        if not path:
            raise ValueError("sqlite:/// needs a path: sqlite:///PATH")
        return SqliteUrl(Path(path))
    if url.startswith(ORACLE_SCHEME):
        parts = urlsplit(url)
        if not parts.hostname or not parts.username or not parts.path.strip("/"):
            raise ValueError("expected oracle://USER:PASSWORD@HOST:PORT/SERVICE")
        return OracleUrl(
            user=unquote(parts.username),
            password=unquote(parts.password or ""),
            host=parts.hostname,
            port=parts.port or 1521,
            service=parts.path.strip("/"),
        )
    raise ValueError("use sqlite:///PATH or oracle://USER:PASSWORD@HOST:PORT/SERVICE")
