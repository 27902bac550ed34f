"""One .sql file per query, in the subset of SQL that both Oracle and SQLite run.

tests/test_sql_portability.py parses every file with sqlglot and checks each construct
against an allowlist, so nothing SQLite-only reaches production.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

SQL_DIR = Path(__file__).parent


@cache
def load_sql(name: str) -> str:
    """The text of sql/<name>.sql, without a trailing semicolon (Oracle's driver rejects one)."""
    path = SQL_DIR / f"{name}.sql"
    text = path.read_text(encoding="utf-8").strip()
    return text[:-1].rstrip() if text.endswith(";") else text


def sql_names() -> list[str]:
    return sorted(p.stem for p in SQL_DIR.glob("*.sql"))
