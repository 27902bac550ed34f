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


def load_sql(name: str, override_dir: SqlDir = None) -> str:
    """The text of query `name`: `override_dir/<name>.sql` when that file exists, else sql/<name>.sql."""
    if override_dir:
        path = Path(override_dir) / f"{name}.sql"
        if path.is_file():
            # Read on every call, not cached: tests write the file just before the request.
            return _statement(path.read_text(encoding="utf-8"))
    return _packaged(name)


def sql_names() -> list[str]:
    return sorted(p.stem for p in SQL_DIR.glob("*.sql"))
