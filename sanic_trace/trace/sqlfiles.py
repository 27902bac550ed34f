"""Where the trace stages get their SQL: `sanic_trace/sql/<name>.sql`, or an override directory.

The override directory exists so that tests (and an operator reproducing a failure) can swap
one query for another *real* query — e.g. one that fails at run time on a later IN-batch —
without mocking the database. The HTTP layer passes `TRACE_SQL_OVERRIDE_DIR` (a setting) as
`sql_override_dir`; a name without a file there falls back to the packaged SQL.
"""

from __future__ import annotations

import os
from pathlib import Path

from sanic_trace.sql import load_sql

SqlDir = str | os.PathLike[str] | None


def get_sql(name: str, override_dir: SqlDir = None) -> str:
    """The text of query `name`, from `override_dir/<name>.sql` when that file exists."""
    if override_dir:
        path = Path(override_dir) / f"{name}.sql"
        if path.is_file():
            # Read on every call (not cached like load_sql): overrides are for tests that
            # write the file just before the request.
            text = path.read_text(encoding="utf-8").strip()
            # Same rule as load_sql: Oracle's driver rejects a trailing semicolon.
            return text[:-1].rstrip() if text.endswith(";") else text
    return load_sql(name)
