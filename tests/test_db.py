"""DB access: IN-batching, the fetchmany stream (batch sizes, early stop), timeouts, JSON-safe values."""

from __future__ import annotations

import gc
import math
import sqlite3
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from sanic_trace.db.batching import batch_count, bind_in_list, in_batches, normalise_ids
from sanic_trace.db.errors import DatabaseUnavailable, QueryTimeout
from sanic_trace.db.source import open_source
from sanic_trace.db.sqlite_source import SqliteSource
from sanic_trace.db.values import json_safe
from sanic_trace.settings import load_settings


# --- IN-batching -----------------------------------------------------------------------------
@pytest.mark.parametrize(("n", "expected_sizes"), [(0, []), (1, [1]), (1000, [1000]), (1001, [1000, 1])])
def test_in_batches_sizes(n: int, expected_sizes: list[int]) -> None:
    ids = [f"{i:016x}" for i in range(n)]
    batches = list(in_batches(ids, 1000))
    assert [len(b) for b in batches] == expected_sizes
    assert [x for b in batches for x in b] == ids


def test_in_batches_incident_size() -> None:
    ids = [f"{i:016x}" for i in range(114_000)]
    batches = list(in_batches(ids, 1000))
    assert len(batches) == 114 == batch_count(114_000, 1000)
    assert all(len(b) == 1000 for b in batches)


def test_in_batches_rejects_oracle_illegal_size() -> None:
    with pytest.raises(ValueError, match="1..1000"):
        list(in_batches(["a"], 1001))


def test_normalise_ids_drops_blanks_duplicates_non_strings_and_keeps_order() -> None:
    assert normalise_ids([" b ", "a", "", "  ", "b", None, 3, "a", "c"]) == ["b", "a", "c"]


def test_bind_in_list_binds_and_pads() -> None:
    sql, params = bind_in_list("SELECT X FROM T WHERE ID IN (:ids) AND Y = :idsx", "ids", ["a", "b"], pad_to=4)
    assert sql == "SELECT X FROM T WHERE ID IN (:ids_0, :ids_1, :ids_2, :ids_3) AND Y = :idsx"
    assert params == {"ids_0": "a", "ids_1": "b", "ids_2": "b", "ids_3": "b"}
    with pytest.raises(ValueError):
        bind_in_list("SELECT 1", "ids", ["a"])


# --- the stream -------------------------------------------------------------------------------
@pytest.fixture
def numbers_db(tmp_path: Path) -> Path:
    path = tmp_path / "numbers.sqlite"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE N (I INTEGER, TS TIMESTAMP, NAME TEXT)")
        connection.executemany(
            "INSERT INTO N VALUES (?, ?, ?)",
            ((i, f"2026-01-{1 + i % 28:02d} 10:00:{i % 60:02d}", f"n{i}") for i in range(2503)),
        )
    return path


def test_stream_respects_batch_size_and_returns_every_row(numbers_db: Path) -> None:
    source = SqliteSource(numbers_db, fetch_size=1000, timeout_seconds=5)
    sizes = []
    seen = []
    for columns, rows in source.stream("SELECT N.I, N.TS FROM DWH.N N ORDER BY N.I"):
        assert columns == ["I", "TS"]
        sizes.append(len(rows))
        seen.extend(r[0] for r in rows)
    assert sizes == [1000, 1000, 503]
    assert seen == list(range(2503))
    assert source.open_cursors == 0


def test_stream_fetch_size_override(numbers_db: Path) -> None:
    source = SqliteSource(numbers_db, fetch_size=1000, timeout_seconds=5)
    assert [len(r) for _, r in source.stream("SELECT I FROM DWH.N", fetch_size=2000)] == [2000, 503]


def test_stopping_early_releases_cursor_and_connection(numbers_db: Path) -> None:
    source = SqliteSource(numbers_db, fetch_size=100, timeout_seconds=5)
    stream = source.stream("SELECT I FROM DWH.N")
    next(stream)
    assert source.open_cursors == 1
    stream.close()
    assert source.open_cursors == 0
    # A consumer that breaks out of a loop and drops the generator releases it too.
    for _ in source.stream("SELECT I FROM DWH.N"):
        break
    gc.collect()
    assert source.open_cursors == 0


def test_timestamps_round_trip_as_datetimes_and_compare_with_datetime_binds(numbers_db: Path) -> None:
    source = SqliteSource(numbers_db, fetch_size=5000, timeout_seconds=5)
    sql = "SELECT N.I, N.TS FROM DWH.N N WHERE N.TS >= :since AND N.I < 3 ORDER BY N.I"
    rows = [r for _, batch in source.stream(sql, {"since": datetime(2026, 1, 2)}) for r in batch]
    assert rows == [(1, datetime(2026, 1, 2, 10, 0, 1)), (2, datetime(2026, 1, 3, 10, 0, 2))]


def test_query_timeout_surfaces_as_one_exception_type(numbers_db: Path) -> None:
    source = SqliteSource(numbers_db, fetch_size=10, timeout_seconds=0.2)
    slow = "SELECT COUNT(*) FROM DWH.N A, DWH.N B, DWH.N C"
    with pytest.raises(QueryTimeout, match="0.2 s"):
        list(source.stream(slow))
    assert source.open_cursors == 0


def test_missing_warehouse_is_unavailable(tmp_path: Path) -> None:
    source = open_source(load_settings({"TRACE_DB_URL": f"sqlite:///{tmp_path / 'absent.sqlite'}"}))
    with pytest.raises(DatabaseUnavailable, match="does not exist"):
        source.ping()


def test_source_is_read_only(numbers_db: Path) -> None:
    source = SqliteSource(numbers_db, fetch_size=10, timeout_seconds=5)
    with pytest.raises(Exception, match="readonly"):
        list(source.stream("DELETE FROM DWH.N"))


# --- JSON-safe values -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("x", "x"),
        (3, 3),
        (True, True),
        (1.5, 1.5),
        (math.nan, None),
        (math.inf, None),
        (datetime(2026, 2, 25, 7, 8, 9), "2026-02-25T07:08:09"),
        (date(2026, 2, 25), "2026-02-25"),
        (Decimal("12"), 12),
        (Decimal("12.50"), 12.5),
        (Decimal("NaN"), None),
        (b"\x01\xff", "01ff"),
    ],
)
def test_json_safe(value: object, expected: object) -> None:
    result = json_safe(value)
    assert result == expected and type(result) is type(expected)
