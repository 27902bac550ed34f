"""The genealogy index of an analysis (docs/msd.md §3): per detection lot, its closure (backward)
or tracked set (forward), as integer arrays over interned container ids.

It comes from the lineage object a request carries (ours: `parent_map` / `children_map` and
`names`), or is walked here from the seeds with the lineage SQL — level by level, IN-batched,
interning ids as they are found, keeping edges as integer pairs. Either way it holds one
integer per edge and per (lot, container) membership, not dicts of strings per container.
"""

from __future__ import annotations

from array import array
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from sanic_trace.db.batching import in_batches
from sanic_trace.db.source import DataSource
from sanic_trace.trace.lineage import MAX_DEPTH
from sanic_trace.trace.queries import column_index, stream_in_batch

BACKWARD, FORWARD = "backward", "forward"


@dataclass
class Genealogy:
    containers: list[str]  # container index -> CONTAINERID
    index: dict[str, int]
    # Per detection lot (population order): its closure / tracked set (the lot itself included).
    member_offsets: np.ndarray  # int64, len lots + 1
    members: np.ndarray  # int32 container indexes
    root_names: list[str]  # backward: the lot's wafer root (docs/msd.md §3); forward: []
    source: str  # "request" (a lineage object), "derived" (walked here), or "none" (failed)
    status: str = "ready"
    error: str | None = None
    lots: list[str] | None = None  # the lots the rows are for, in order

    def for_lots(self, lot_ids: Sequence[str]) -> Genealogy:
        """The same genealogy with rows for `lot_ids` only (a subset of its lots), in that order."""
        position = {cid: i for i, cid in enumerate(self.lots or [])}
        rows = np.asarray([position[cid] for cid in lot_ids], dtype=np.int64)
        starts, stops = self.member_offsets[rows], self.member_offsets[rows + 1]
        counts = stops - starts
        offsets = np.zeros(len(rows) + 1, dtype=np.int64)
        offsets[1:] = np.cumsum(counts)
        positions = np.repeat(starts - offsets[:-1], counts) + np.arange(int(counts.sum()))
        return Genealogy(
            containers=self.containers,
            index=self.index,
            member_offsets=offsets,
            members=self.members[positions],
            root_names=[self.root_names[r] for r in rows.tolist()] if self.root_names else [],
            source=self.source,
            status=self.status,
            error=self.error,
            lots=list(lot_ids),
        )

    def lot_members(self, lot: int) -> np.ndarray:
        return self.members[self.member_offsets[lot] : self.member_offsets[lot + 1]]

    def container_ids(self) -> list[str]:
        """Every container the analysis reads events of, sorted (one global record order)."""
        return sorted(self.containers)


class _Builder:
    """Interned containers and directed edges (from -> to), as the walk or a lineage object finds them."""

    def __init__(self, lot_ids: Sequence[str]) -> None:
        self.containers: list[str] = []
        self.index: dict[str, int] = {}
        # CONTAINERNAME per container index (None: not known); a list, not a dict: ~100k entries.
        self.names: list[str | None] = []
        self.edge_from = array("i")
        self.edge_to = array("i")
        for cid in lot_ids:
            self.intern(cid)

    def intern(self, cid: str) -> int:
        i = self.index.get(cid)
        if i is None:
            i = self.index[cid] = len(self.containers)
            self.containers.append(cid)
            self.names.append(None)
        return i

    def edge(self, source: str, target: str) -> None:
        self.edge_from.append(self.intern(source))
        self.edge_to.append(self.intern(target))

    def _root_names(
        self,
        keys: np.ndarray,
        pair_lot: np.ndarray,
        pair_node: np.ndarray,
        offsets: np.ndarray,
        targets: np.ndarray,
        n: int,
        lot_names: Sequence[str],
    ) -> list[str]:
        """Per lot: the smallest name among its closure's containers none of whose parents is in the
        closure (where the 20-step limit cuts a chain, its last container); none (a cycle): its own."""
        counts = offsets[pair_node + 1] - offsets[pair_node]
        total = int(counts.sum())
        positions = np.repeat(offsets[pair_node] - np.cumsum(counts) + counts, counts) + np.arange(total)
        inside = np.isin(np.repeat(pair_lot, counts) * max(n, 1) + targets[positions], keys)
        parents_inside = np.bincount(np.repeat(np.arange(len(keys)), counts), weights=inside, minlength=len(keys))
        root_pairs = parents_inside == 0
        # The names themselves (str objects already held), ranked once; no copy of them is made.
        names = [name or cid for name, cid in zip(self.names, self.containers, strict=True)]
        by_rank = np.asarray(sorted(range(len(names)), key=names.__getitem__), dtype=np.int64)
        rank = np.empty(len(names), dtype=np.int64)
        rank[by_rank] = np.arange(len(names))
        none = np.iinfo(np.int64).max
        best = np.full(len(lot_names), none, dtype=np.int64)
        np.minimum.at(best, pair_lot[root_pairs], rank[pair_node[root_pairs]])
        return [names[by_rank[r]] if r != none else lot_names[lot] for lot, r in enumerate(best.tolist())]

    def build(self, lot_ids: Sequence[str], lot_names: Sequence[str], backward: bool, source: str) -> Genealogy:
        for cid, name in zip(lot_ids, lot_names, strict=True):
            i = self.index[cid]
            if self.names[i] is None:
                self.names[i] = name
        n = len(self.containers)
        sources = np.frombuffer(self.edge_from, dtype=np.int32).astype(np.int64)
        order = np.argsort(sources, kind="stable")
        targets = np.frombuffer(self.edge_to, dtype=np.int32)[order]
        offsets = np.cumsum(np.concatenate([[0], np.bincount(sources, minlength=n)])).astype(np.int64)
        del sources, order
        self.edge_from, self.edge_to = array("i"), array("i")
        starts = np.asarray([self.index[cid] for cid in lot_ids], dtype=np.int64)
        keys = _closure_keys(starts, offsets, targets, n)  # sorted lot * n + container
        pair_lot, pair_node = keys // max(n, 1), keys % max(n, 1)
        member_offsets = np.zeros(len(lot_ids) + 1, dtype=np.int64)
        member_offsets[1:] = np.cumsum(np.bincount(pair_lot, minlength=len(lot_ids)))
        roots: list[str] = []
        if backward:
            roots = self._root_names(keys, pair_lot, pair_node, offsets, targets, n, lot_names)
        return Genealogy(
            containers=self.containers,
            index=self.index,
            member_offsets=member_offsets,
            members=pair_node.astype(np.int32),
            root_names=roots,
            source=source,
            lots=list(lot_ids),
        )


def _closure_keys(starts: np.ndarray, offsets: np.ndarray, targets: np.ndarray, n: int) -> np.ndarray:
    """Every (lot, container) of the lots' closures as sorted keys lot * n + container: each lot's
    start and what is reachable within MAX_DEPTH edges of it (cycle-safe), level by level for all
    lots at once."""
    n = max(n, 1)
    lots = np.arange(len(starts), dtype=np.int64)
    seen = np.unique(lots * n + starts)
    frontier_lot, frontier_node = lots, starts
    for _ in range(MAX_DEPTH):
        counts = offsets[frontier_node + 1] - offsets[frontier_node]
        total = int(counts.sum())
        if not total:
            break
        positions = np.repeat(offsets[frontier_node] - np.cumsum(counts) + counts, counts) + np.arange(total)
        candidates = np.unique(np.repeat(frontier_lot, counts) * n + targets[positions])
        fresh = candidates[~np.isin(candidates, seen, assume_unique=True)]
        if not len(fresh):
            break
        seen = np.union1d(seen, fresh)
        frontier_lot, frontier_node = fresh // n, fresh % n
    return seen


def usable_lineage(lineage: Mapping[str, Any] | None, direction: str) -> bool:
    """A lineage object of ours for this direction: its edges (and, backward, names) are there."""
    if not isinstance(lineage, Mapping):
        return False
    if direction == BACKWARD:
        return isinstance(lineage.get("parent_map"), Mapping) and isinstance(lineage.get("names"), Mapping)
    return isinstance(lineage.get("children_map"), Mapping)


def from_lineage(
    lineage: Mapping[str, Any], lot_ids: Sequence[str], lot_names: Sequence[str], direction: str
) -> Genealogy:
    """The index of a lineage response (the lineage stage's shape), for these lots."""
    builder = _Builder(lot_ids)
    edges = lineage["parent_map"] if direction == BACKWARD else lineage["children_map"]
    for node, targets in edges.items():
        for target in targets:
            builder.edge(str(node), str(target))
    for cid, name in (lineage.get("names") or {}).items():
        i = builder.index.get(cid)
        if i is not None and name is not None:
            builder.names[i] = str(name)
    return builder.build(lot_ids, lot_names, direction == BACKWARD, "request")


def walk(source: DataSource, lot_ids: Sequence[str], lot_names: Sequence[str], direction: str) -> Genealogy:
    """The index walked from the lots with the lineage SQL: level by level, IN-batched, MAX_DEPTH levels."""
    builder = _Builder(lot_ids)
    nodes_sql = source.sql.load("lineage_nodes")
    backward = direction == BACKWARD
    edge_sql = source.sql.load("lineage_merge_sources" if backward else "lineage_children")
    frontier = list(lot_ids)
    seen = set(frontier)
    depth = 0
    while frontier:
        expand = depth < MAX_DEPTH  # the last level is read for names, not expanded
        found: list[str] = []

        def reach(node: str, neighbour: str, found: list[str] = found) -> None:
            builder.edge(node, neighbour)
            if neighbour not in seen:
                seen.add(neighbour)
                found.append(neighbour)

        for batch in in_batches(frontier, source.in_batch_size):
            for columns, rows in stream_in_batch(source, nodes_sql, batch):
                i_id, i_name, i_split = column_index(columns, "CONTAINERID", "CONTAINERNAME", "SPLITFROMID")
                for row in rows:
                    if row[i_name] is not None:
                        builder.names[builder.intern(row[i_id])] = row[i_name]
                    if backward and expand and row[i_split]:
                        reach(row[i_id], row[i_split])
            if not expand:
                continue
            for columns, rows in stream_in_batch(source, edge_sql, batch):
                if backward:
                    i_lot, i_source = column_index(columns, "LOTID", "CONTAINERID")
                    for row in rows:
                        reach(row[i_lot], row[i_source])
                else:
                    i_parent, i_child = column_index(columns, "PARENTID", "CHILDID")
                    for row in rows:
                        reach(row[i_parent], row[i_child])
        frontier = sorted(found)
        depth += 1
    return builder.build(lot_ids, lot_names, backward, "derived")


def lots_alone(lot_ids: Sequence[str], lot_names: Sequence[str], direction: str, error: str) -> Genealogy:
    """When the genealogy cannot be had: every closure is the lot alone (genealogy_status error)."""
    genealogy = _Builder(lot_ids).build(lot_ids, lot_names, direction == BACKWARD, "none")
    genealogy.status, genealogy.error = "error", error
    return genealogy
