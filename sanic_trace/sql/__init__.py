"""One .sql file per query, in the subset of SQL that both Oracle and SQLite run.

tests/test_sql_portability.py parses every file with sqlglot and checks each construct
against an allowlist, so nothing SQLite-only reaches production.

An override directory (setting TRACE_SQL_OVERRIDE_DIR) may replace a query by name. It
exists so that tests — and an operator reproducing a failure — can swap one query for
another *real* query (one that fails at run time on a later IN-batch, say) without mocking
the database. A name without a file there falls back to the packaged SQL.
"""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

SQL_DIR = Path(__file__).parent

SqlDir = str | os.PathLike[str] | None


def _statement(text: str) -> str:
    # Oracle's driver rejects a trailing semicolon.
    text = text.strip()
    return text[:-1].rstrip() if text.endswith(";") else text


@cache
def _packaged(name: str) -> str:
    return _statement((SQL_DIR / f"{name}.sql").read_text(encoding="utf-8"))


def load_sql(name: str) -> str:
    """The packaged text of query `name` (sql/<name>.sql)."""
    return _packaged(name)


class SqlLibrary:
    """Where a data source takes its queries from: the packaged SQL, or an override file of the same name.

    The one place the fault-injection hook (TRACE_SQL_OVERRIDE_DIR) acts: a data source is built
    with its library (db.source.open_source), and every query is loaded through it.
    """

    def __init__(self, override_dir: SqlDir = None) -> None:
        self.override_dir = Path(override_dir) if override_dir else None

    def load(self, name: str) -> str:
        """`override_dir/<name>.sql` when that file exists, else the packaged sql/<name>.sql."""
        if self.override_dir is not None:
            path = self.override_dir / f"{name}.sql"
            if path.is_file():
                # Read on every call, not cached: tests write the file just before the request.
                return _statement(path.read_text(encoding="utf-8"))
        return _packaged(name)


def sql_names() -> list[str]:
    return sorted(p.stem for p in SQL_DIR.glob("*.sql"))
