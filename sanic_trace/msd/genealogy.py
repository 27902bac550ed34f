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
    # Per detection lot (population order): its closure / tracked set, the lot itself first.
    member_offsets: np.ndarray  # int64, len lots + 1
    members: np.ndarray  # int32 container indexes
    root_names: list[str]  # backward: the lot's wafer root (docs/msd.md §3); forward: []
    source: str  # "request" (a lineage object), "derived" (walked here), or "none" (failed)
    status: str = "ready"
    error: str | None = None

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
        member_offsets = [0]
        members: list[int] = []
        roots: list[str] = []
        for lot, cid in enumerate(lot_ids):
            start = self.index[cid]
            reached = _reach(start, offsets, targets)
            members.append(start)
            members.extend(sorted(reached - {start}))
            member_offsets.append(len(members))
            if backward:
                # Root-most: no parent inside the lot's closure (where the 20-step limit cuts a
                # chain, its last container; a cycle has none).
                names = [
                    self.names[c] or self.containers[c]
                    for c in reached
                    if not any(p in reached for p in targets[offsets[c] : offsets[c + 1]].tolist())
                ]
                roots.append(min(names) if names else lot_names[lot])  # none: a cycle
        return Genealogy(
            containers=self.containers,
            index=self.index,
            member_offsets=np.asarray(member_offsets, dtype=np.int64),
            members=np.asarray(members, dtype=np.int32),
            root_names=roots,
            source=source,
        )


def _reach(start: int, offsets: np.ndarray, targets: np.ndarray) -> set[int]:
    """`start` and every container within MAX_DEPTH edges of it (cycle-safe)."""
    found = {start}
    level = [start]
    for _ in range(MAX_DEPTH):
        following = []
        for node in level:
            for target in targets[offsets[node] : offsets[node + 1]].tolist():
                if target not in found:
                    found.add(target)
                    following.append(target)
        if not following:
            break
        level = following
    return found


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
