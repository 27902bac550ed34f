"""Every query file runs on both Oracle and SQLite: checked by construct, and run for real on SQLite.

sqlglot parses each file as Oracle and every node of the tree must be of a type on an explicit
allowlist of constructs both databases support. sqlglot is lenient (it reads LIMIT, WITH
RECURSIVE, IFNULL and julianday in Oracle mode, and turns IFNULL into a COALESCE node), so the
tokens are checked against a deny list as well, and the negative cases at the bottom show each
rule catching what it must.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

import pytest
import sqlglot
from sqlglot import exp
from sqlglot.tokens import TokenType

from sanic_trace.db.batching import bind_in_list
from sanic_trace.sql import SQL_DIR, load_sql, sql_names
from support.standard_warehouse import F1, NAMES, R1, S3, T1, TEST_GROUP
from support.warehouses import open_warehouse

# Node types both Oracle and SQLite run with the same meaning.
ALLOWED_NODES = frozenset(
    {
        "Select", "From", "Join", "Where", "Group", "Having", "Order", "Ordered", "Distinct",
        "Union", "Subquery", "With", "CTE", "TableAlias", "Table", "Column", "Alias", "Identifier", "Star",
        "EQ", "NEQ", "GT", "GTE", "LT", "LTE", "And", "Or", "Not", "In", "Is", "Between", "Like", "Escape", "Exists",
        "Null", "Literal", "Placeholder", "Paren", "Neg",
        "Add", "Sub", "Mul", "Div", "DPipe",
        "Case", "If", "Coalesce",
        "Count", "Sum", "Min", "Max", "Avg",
        "Window", "RowNumber", "FirstValue",
        "Upper", "Lower", "Trim", "Length", "Substring", "StrPosition",
    }
)
# Functions sqlglot has no node for (Anonymous) that both databases have.
ALLOWED_ANONYMOUS = frozenset({"INSTR", "SUBSTR", "LENGTH", "ABS", "REPLACE"})
# Words that must not appear outside string literals: SQLite-only or Oracle-only constructs,
# including ones sqlglot would silently normalise (IFNULL/NVL → COALESCE).
DENIED_WORDS = frozenset(
    {
        "LIMIT", "OFFSET", "FETCH", "TOP", "RECURSIVE",
        "NVL", "NVL2", "IFNULL", "ISNULL", "DECODE",
        "JULIANDAY", "STRFTIME", "DATETIME", "DATE", "UNIXEPOCH",
        "SYSDATE", "SYSTIMESTAMP", "CURRENT_DATE", "CURRENT_TIMESTAMP", "NOW",
        "TO_DATE", "TO_CHAR", "TRUNC", "ROWNUM", "ROWID", "DUAL", "CONNECT", "PRIOR",
        "GROUP_CONCAT", "LISTAGG", "GLOB", "REGEXP",
    }
)
# Inside these, a timestamp column is compared or ordered by, not turned into a value.
PREDICATES = (exp.Is, exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.Between, exp.In, exp.Order)

SCHEMA_SQL = Path(SQL_DIR).parent / "demo" / "schema.sql"
TIMESTAMP_COLUMNS = frozenset(re.findall(r"^\s*(\w+)\s+TIMESTAMP\b", SCHEMA_SQL.read_text(encoding="utf-8"), re.M))
BIND_NAME = re.compile(r"[a-z][a-z0-9_]*")


def portability_problems(sql: str) -> list[str]:
    """Everything in `sql` outside the Oracle/SQLite subset, each naming the construct."""
    problems: list[str] = []
    for token in sqlglot.Dialect.get_or_raise("oracle").tokenize(sql):
        if token.token_type not in (TokenType.STRING, TokenType.IDENTIFIER) and token.text.upper() in DENIED_WORDS:
            problems.append(f"denied word {token.text.upper()}")
    try:
        tree = sqlglot.parse_one(sql, read="oracle")
    except sqlglot.errors.ParseError as exc:
        return [*problems, f"does not parse as Oracle: {exc}"]

    cte_names = {cte.alias_or_name.upper() for cte in tree.find_all(exp.CTE)}
    for node in tree.walk():
        kind = type(node).__name__
        if isinstance(node, exp.Anonymous):
            if node.name.upper() not in ALLOWED_ANONYMOUS:
                problems.append(f"function {node.name.upper()}")
        elif kind not in ALLOWED_NODES:
            problems.append(f"construct {kind}: {node.sql(dialect='oracle')[:60]}")
        if isinstance(node, exp.With) and node.args.get("recursive"):
            problems.append("WITH RECURSIVE (Oracle: plain WITH name (cols) AS ...)")
        if isinstance(node, exp.Coalesce) and node.args.get("is_nvl"):
            problems.append("NVL (use COALESCE)")
        if isinstance(node, exp.Table) and node.name.upper() not in cte_names:
            if node.db.upper() != "DWH" or not node.name.upper().startswith("DW_MES_"):
                problems.append(f"table {node.sql()} (tables are DWH.DW_MES_...)")
        if isinstance(node, exp.Alias) and node.alias != node.alias.upper():
            problems.append(f"alias {node.alias} (aliases are uppercase)")
        if isinstance(node, exp.Placeholder):
            problems.extend(_bind_problems(node))
    problems.extend(_timestamp_value_problems(tree))
    return problems


def _bind_problems(node: exp.Placeholder) -> list[str]:
    if not node.name or not BIND_NAME.fullmatch(node.name):
        return [f"bind {node.sql()} (binds are named, :lower_case)"]
    if node.name == "ids":
        parent = node.parent
        if not isinstance(parent, exp.In) or len(parent.expressions) != 1:
            return [":ids outside IN (:ids)"]
    return []


def _timestamp_value_problems(tree: exp.Expression) -> list[str]:
    """A timestamp column under a function, aggregate or arithmetic in a select list.

    SQLite types a result column by its declared type only when it is a plain column
    reference; MIN(ts), FIRST_VALUE(ts) or ts + 1 come back as text there but as datetime on
    Oracle. Comparing or ordering by a timestamp is fine.
    """
    problems = []
    for select in tree.find_all(exp.Select):
        for projection in select.expressions:
            value = projection.this if isinstance(projection, exp.Alias) else projection
            if isinstance(value, exp.Column):
                continue
            for column in value.find_all(exp.Column):
                if column.name.upper() not in TIMESTAMP_COLUMNS:
                    continue
                node, inside_predicate = column.parent, False
                while node is not None and node is not value.parent:
                    if isinstance(node, PREDICATES) or (isinstance(node, exp.Window) and column.arg_key != "this"):
                        inside_predicate = True
                        break
                    node = node.parent
                if not inside_predicate:
                    problems.append(f"timestamp {column.name.upper()} used as a value in {value.sql()[:60]}")
    return problems


@pytest.mark.parametrize("name", sql_names())
def test_sql_file_is_portable(name: str) -> None:
    assert portability_problems(load_sql(name)) == [], f"{name}.sql"


def test_there_are_sql_files() -> None:
    assert len(sql_names()) >= 10


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("SELECT C.CONTAINERID AS CONTAINERID FROM DWH.DW_MES_CONTAINER C LIMIT 5", "LIMIT"),
        ("SELECT C.CONTAINERID AS X FROM DWH.DW_MES_CONTAINER C OFFSET 5 ROWS", "OFFSET"),
        ("SELECT C.CONTAINERID AS X FROM DWH.DW_MES_CONTAINER C FETCH FIRST 5 ROWS ONLY", "FETCH"),
        (
            "WITH RECURSIVE R (ID) AS (SELECT C.CONTAINERID FROM DWH.DW_MES_CONTAINER C) SELECT R.ID AS ID FROM R",
            "RECURSIVE",
        ),
        ("SELECT IFNULL(C.QTY, 0) AS QTY FROM DWH.DW_MES_CONTAINER C", "IFNULL"),
        ("SELECT NVL(C.QTY, 0) AS QTY FROM DWH.DW_MES_CONTAINER C", "NVL"),
        ("SELECT julianday(C.CREATETIMESTAMP) AS D FROM DWH.DW_MES_CONTAINER C", "JULIANDAY"),
        ("SELECT strftime('%Y', C.CREATETIMESTAMP) AS Y FROM DWH.DW_MES_CONTAINER C", "STRFTIME"),
        ("SELECT date(C.CREATETIMESTAMP) AS D FROM DWH.DW_MES_CONTAINER C", "DATE"),
        ("SELECT C.CONTAINERID AS X FROM DWH.DW_MES_CONTAINER C WHERE ROWNUM < 5", "ROWNUM"),
        ("SELECT SYSDATE AS NOW_ FROM DUAL", "SYSDATE"),
        ("SELECT C.CONTAINERID AS X FROM DW_MES_CONTAINER C", "table"),
        ("SELECT C.CONTAINERID AS x FROM DWH.DW_MES_CONTAINER C", "alias x"),
        ("SELECT C.CONTAINERID AS X FROM DWH.DW_MES_CONTAINER C WHERE C.CONTAINERID = :ids", ":ids outside"),
        ("SELECT CAST(C.QTY AS VARCHAR2(10)) AS Q FROM DWH.DW_MES_CONTAINER C", "construct Cast"),
        ("SELECT LISTAGG(C.CONTAINERID, ',') AS L FROM DWH.DW_MES_CONTAINER C", "LISTAGG"),
        ("SELECT MAX(H.TRACKOUTTIMESTAMP) AS T FROM DWH.DW_MES_LOTWIPHISTORY H", "timestamp TRACKOUTTIMESTAMP"),
        (
            "SELECT FIRST_VALUE(H.TRACKOUTTIMESTAMP) OVER (ORDER BY H.HISTORYID) AS T FROM DWH.DW_MES_LOTWIPHISTORY H",
            "timestamp TRACKOUTTIMESTAMP",
        ),
    ],
)
def test_check_rejects_non_portable_sql(sql: str, expected: str) -> None:
    problems = portability_problems(sql)
    assert any(expected in p for p in problems), problems


def test_check_accepts_the_portable_forms() -> None:
    sql = (
        "WITH R (ID) AS (SELECT C.CONTAINERID FROM DWH.DW_MES_CONTAINER C WHERE C.CONTAINERID IN (:ids)) "
        "SELECT R.ID AS ID, COALESCE(C.QTY, 0) AS QTY, "
        "CASE WHEN C.CREATETIMESTAMP IS NULL THEN 'N' ELSE 'Y' END AS HAS_TIME, "
        "ROW_NUMBER() OVER (PARTITION BY C.FIRSTNAME ORDER BY C.CREATETIMESTAMP DESC) AS RN "
        "FROM R JOIN DWH.DW_MES_CONTAINER C ON INSTR(',' || C.CONTAINERNAME || ',', ',' || R.ID || ',') > 0"
    )
    assert portability_problems(sql) == []


# --- every file runs on a real SQLite warehouse ----------------------------------------------------

SAMPLE_BINDS = {
    "start_time": datetime(2025, 1, 1),
    "end_time": datetime(2025, 2, 1),
    "station": TEST_GROUP,
    "windowed": 1,
    "pattern": "%",
    "since": datetime(2025, 1, 1),
}
# Work centers for queries that take an IN-list of them (the MSD detection work centers).
SAMPLE_WORKCENTERS = ["TEST-01", "TMTT"]
# Ids, names, work orders, wafer lots and serials: every query finds something among them.
SAMPLE_IDS = [S3, T1, R1, F1, NAMES[S3], NAMES[F1], "SN-0001", "WO-1", "GD-WO-1", "WAF-A"]
LEAKED_TIMESTAMP = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}")


@pytest.mark.parametrize("name", sql_names())
def test_sql_file_runs_on_sqlite(name: str, standard_warehouse: Path) -> None:
    sql = load_sql(name)
    binds: dict[str, object] = {}
    if re.search(r":ids\b", sql):
        sql, binds = bind_in_list(sql, "ids", SAMPLE_IDS, pad_to=1000)
    if re.search(r":wcs\b", sql):
        sql, wc_binds = bind_in_list(sql, "wcs", SAMPLE_WORKCENTERS, pad_to=8)
        binds.update(wc_binds)
    for bind in set(re.findall(r":([a-z][a-z0-9_]*)\b", sql)):
        if not bind.startswith(("ids_", "wcs_")):
            assert bind in SAMPLE_BINDS, f"{name}.sql binds :{bind}; add a sample value to SAMPLE_BINDS"
            binds[bind] = SAMPLE_BINDS[bind]
    source = open_warehouse(standard_warehouse)
    rows = 0
    for columns, batch in source.stream(sql, binds):
        assert all(c == c.upper() for c in columns)
        for row in batch:
            rows += 1
            # A timestamp that came back as text lost its type in SQL (see the rule above).
            leaked = [v for v in row if isinstance(v, str) and LEAKED_TIMESTAMP.match(v)]
            assert not leaked, f"{name}.sql returned timestamps as text: {leaked}"
    assert rows > 0, f"{name}.sql returned nothing from the sample warehouse"
    assert source.open_cursors == 0
