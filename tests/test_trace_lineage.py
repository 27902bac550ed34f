"""Lineage over a hand-built genealogy: split chains, merges, cycles and the depth cap."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from sanic_trace.db.source import Batch
from sanic_trace.db.sqlite_source import SqliteSource
from sanic_trace.trace.lineage import (
    MAX_DEPTH,
    backward_lineage,
    forward_lineage,
    lineage_container_ids,
    lineage_direction,
)
from support.standard_warehouse import (
    DEEP,
    F1,
    F2,
    F3,
    M1,
    M2,
    NAMES,
    R1,
    R2,
    S1,
    S2,
    S3,
    T1,
    X1,
    X2,
    X3,
)
from support.warehouses import cid


class CountingSource(SqliteSource):
    """The real SQLite source, recording how many ids each query bound (to prove IN-batching)."""

    def __init__(self, path: Path, in_batch_size: int = 1000) -> None:
        super().__init__(path, fetch_size=1000, timeout_seconds=30, in_batch_size=in_batch_size)
        self.queries: list[int] = []

    def stream(
        self, sql: str, params: Mapping[str, Any] | None = None, fetch_size: int | None = None
    ) -> Iterator[Batch]:
        self.queries.append(len(set(re.findall(r":ids_\d+\b", sql))))
        return super().stream(sql, params, fetch_size)


@pytest.fixture
def source(standard_warehouse: Path) -> CountingSource:
    return CountingSource(standard_warehouse)


def test_backward_follows_a_split_chain(source: CountingSource) -> None:
    result = backward_lineage(source, [S3])
    assert result["roots"] == [S3]
    assert result["ancestors"] == {S3: sorted([R1, S1, S2])}
    assert result["parent_map"] == {S1: [R1], S2: [S1], S3: [S2]}
    assert result["merge_edges"] == {}
    assert result["seed_roots"] == {S3: "WAF-A"}
    assert result["names"] == {c: NAMES[c] for c in (R1, S1, S2, S3)}
    assert (result["total_nodes"], result["total_ancestor_count"]) == (4, 3)
    # One nodes query and one merge query per level, for 4 levels, whatever the number of ids.
    assert source.queries == [1000] * 8
    assert source.open_cursors == 0


def test_backward_follows_merges_into_both_wafer_lots(source: CountingSource) -> None:
    result = backward_lineage(source, [F1, F3])
    assert result["ancestors"] == {F1: sorted([S3, S2, S1, R1, T1, R2]), F3: [R2]}
    assert result["merge_edges"] == {F1: sorted([S3, T1]), F3: [R2]}
    assert result["parent_map"][F1] == sorted([S3, T1])
    # Two roots (R1 of WAF-A, R2 of WAF-B): the smallest wafer lot name is the answer.
    assert result["seed_roots"] == {F1: "WAF-A", F3: "WAF-B"}
    # F3 has no container row: it is a node without a name.
    assert F3 not in result["names"]
    assert result["total_ancestor_count"] == 6


def test_cycles_terminate(source: CountingSource) -> None:
    result = backward_lineage(source, [X3, M1])
    assert result["ancestors"] == {X3: sorted([X1, X2]), M1: [M2]}
    assert result["parent_map"] == {X1: [X2], X2: [X1], X3: [X2], M1: [M2], M2: [M1]}
    # No root: every container of X3's family has a parent; the smallest FIRSTNAME of the family.
    assert result["seed_roots"] == {X3: "WAF-X1", M1: "WAF-M"}
    forward = forward_lineage(source, [X1])
    assert forward["children_map"] == {X1: [X2], X2: sorted([X1, X3])}
    assert forward["total_nodes"] == 3


def test_depth_is_capped_at_20_levels(source: CountingSource) -> None:
    assert MAX_DEPTH == 20
    result = backward_lineage(source, [DEEP[25]])
    assert result["ancestors"][DEEP[25]] == sorted(DEEP[5:25])
    assert DEEP[4] not in result["names"] and DEEP[5] in result["names"]
    assert DEEP[5] not in result["parent_map"]
    assert result["total_nodes"] == 21
    forward = forward_lineage(source, [DEEP[0]])
    assert lineage_container_ids(forward) == DEEP[:21]
    shallow = backward_lineage(source, [DEEP[25]], max_depth=3)
    assert shallow["ancestors"][DEEP[25]] == DEEP[22:25]


def test_forward_reaches_finished_lots_and_their_serials(source: CountingSource) -> None:
    result = forward_lineage(source, [R1, T1, F1])
    assert result["roots"] == [R1, T1, F1]
    assert result["children_map"] == {R1: [S1], S1: [S2], S2: sorted([S3, F2]), S3: [F1], T1: [F1]}
    assert result["leaf_serials"] == {R1: ["SN-0001", "SN-0002"], T1: ["SN-0001"], F1: []}
    assert result["names"][F2] == NAMES[F2]
    assert result["total_nodes"] == 7


def test_in_batch_size_changes_queries_not_results(source: CountingSource, standard_warehouse: Path) -> None:
    seeds = [F1, X3, DEEP[25], M1, S2, T1, cid(0xdead)]
    for build in (backward_lineage, forward_lineage):
        wide_source = CountingSource(standard_warehouse)
        narrow_source = CountingSource(standard_warehouse, in_batch_size=2)
        wide = build(wide_source, seeds)
        narrow = build(narrow_source, seeds)
        assert narrow == wide
        assert set(wide_source.queries) == {1000} and set(narrow_source.queries) == {2}
        assert len(narrow_source.queries) > len(wide_source.queries)
        # Level by level: at most two queries per level with one batch per level.
        assert len(wide_source.queries) <= 2 * (MAX_DEPTH + 1)


def test_unknown_and_duplicate_seeds(source: CountingSource) -> None:
    unknown = cid(0xdead)
    result = backward_lineage(source, [unknown, " ", S1, S1])
    assert result["roots"] == [unknown, S1]
    assert result["ancestors"] == {unknown: [], S1: [R1]}
    assert result["seed_roots"] == {unknown: None, S1: "WAF-A"}
    assert backward_lineage(source, [])["total_nodes"] == 0


def test_a_seed_that_is_another_seeds_ancestor(source: CountingSource) -> None:
    result = backward_lineage(source, [S3, S1])
    assert result["ancestors"] == {S3: sorted([R1, S1, S2]), S1: [R1]}
    assert result["total_ancestor_count"] == 3


def test_lineage_container_ids_puts_seeds_first() -> None:
    backward = {"roots": ["b", "a"], "parent_map": {"b": ["c"], "c": ["a", "d"]}}
    assert lineage_container_ids(backward) == ["b", "a", "c", "d"]
    forward = {"roots": ["z"], "children_map": {"z": ["y", "x"]}}
    assert lineage_container_ids(forward) == ["z", "x", "y"]
    assert lineage_container_ids({"roots": ["q"], "parent_map": {}}) == ["q"]


@pytest.mark.parametrize(
    ("profile", "params", "direction"),
    [
        ("query_tool", {}, "forward"),
        ("query_tool", {"direction": "backward"}, "forward"),
        ("query_tool_reverse", {"direction": "forward"}, "backward"),
        ("mid_section_defect", {}, "backward"),
        ("mid_section_defect", None, "backward"),
        ("mid_section_defect", {"direction": "forward"}, "forward"),
    ],
)
def test_lineage_direction(profile: str, params: dict[str, Any] | None, direction: str) -> None:
    assert lineage_direction(profile, params) == direction


def test_an_unknown_direction_is_refused_naming_the_field() -> None:
    from sanic_trace.errors import ApiError
    from sanic_trace.trace.lineage import lineage_direction

    for profile in ("query_tool", "query_tool_reverse", "mid_section_defect"):
        with pytest.raises(ApiError, match=r"params\.direction must be one of backward, forward") as caught:
            lineage_direction(profile, {"direction": "sideways"})
        assert caught.value.code == "INVALID_PARAMS"
    assert lineage_direction("mid_section_defect", {"direction": "forward"}) == "forward"
    assert lineage_direction("mid_section_defect", {"direction": "backward"}) == "backward"
