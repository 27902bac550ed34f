"""Stage 2, lineage: the genealogy around the seeds, resolved level by level.

Edges are splits (a child's SPLITFROMID is its parent) and merges
(DW_MES_PJ_COMBINEDASSYLOTS: the source CONTAINERIDs of a finished LOTID are its parents).
Each level is one IN-batched query per batch of the frontier — never one query per id —
and a container is expanded at most once, so a cycle in the data ends the walk instead of
looping. The walk stops `max_depth` levels away from the nearest seed.

Definitions used in the results:
- `parent_map` holds every parent edge found (split and merge); `merge_edges` the merge subset.
- `ancestors[seed]`: the containers reachable from the seed through parent edges within
  `max_depth` levels, without the seed itself (even when a cycle leads back to it).
- `seed_roots[seed]`: the wafer lot the seed comes from — the FIRSTNAME of its root-most
  ancestors, i.e. of the containers among the seed and its ancestors that have no parent in
  the traced genealogy (a depth-capped container counts as a root). Several roots (a merge of
  lots from different wafer lots) → the smallest FIRSTNAME, so the answer is deterministic;
  no root with a FIRSTNAME (all in a cycle, or none known) → the smallest FIRSTNAME among the
  seed and its ancestors; none at all → null.
- `total_ancestor_count`: distinct containers that are an ancestor of at least one seed.
- `leaf_serials[seed]` (forward): serial numbers (FINISHEDNAME) of the finished lots the seed
  or its descendants were merged into, within `max_depth` levels.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from sanic_trace.db.batching import in_batches, normalise_ids
from sanic_trace.db.source import DataSource
from sanic_trace.trace.params import DIRECTIONS, MSD, choice
from sanic_trace.trace.queries import column_index, stream_in_batch

MAX_DEPTH = 20


def lineage_direction(profile: str, params: Mapping[str, Any] | None = None) -> str:
    """`backward` (towards wafer lots) or `forward` (towards finished lots) for a request.

    query_tool traces forward; query_tool_reverse backward; mid_section_defect backward
    unless params.direction is "forward".
    """
    requested = (params or {}).get("direction")
    if requested is not None:
        # An unknown direction is a client error, never silently read as the default.
        choice(requested, "params.direction", DIRECTIONS)
    if profile == "query_tool":
        return "forward"
    if profile == MSD and requested == "forward":
        return "forward"
    return "backward"


def lineage_container_ids(lineage_result: Mapping[str, Any]) -> list[str]:
    """Every container of a lineage result: the seeds first (in their order), then the rest sorted."""
    roots = list(lineage_result.get("roots", []))
    edges = lineage_result.get("parent_map") or lineage_result.get("children_map") or {}
    others: set[str] = set(edges)
    for targets in edges.values():
        others.update(targets)
    others.difference_update(roots)
    return roots + sorted(others)


EdgeReader = Callable[[Sequence[str], Sequence[Sequence[Any]], list[str]], None]


class _Walk:
    """Breadth-first walk from the seeds: per level, one nodes query and one edges query per IN-batch."""

    def __init__(self, source: DataSource, seeds: list[str], max_depth: int):
        self.source = source
        self.seeds = seeds
        self.max_depth = max_depth
        self.nodes_sql = source.sql.load("lineage_nodes")
        self.seen: set[str] = set(seeds)
        self.names: dict[str, str] = {}
        self.firstnames: dict[str, str] = {}
        self.edges: dict[str, set[str]] = {}

    def add_edge(self, node: str, neighbour: str, discovered: list[str]) -> None:
        self.edges.setdefault(node, set()).add(neighbour)
        # A container is expanded once, the first time it is seen: this is what ends cycles.
        if neighbour not in self.seen:
            self.seen.add(neighbour)
            discovered.append(neighbour)

    def run(self, edge_sql: str, read_edges: EdgeReader, *, follow_split_parents: bool) -> None:
        frontier = self.seeds
        depth = 0
        while frontier:
            # The last level is still read for names and wafer lots, but not expanded.
            expand = depth < self.max_depth
            discovered: list[str] = []
            for batch in in_batches(frontier, self.source.in_batch_size):
                self._read_nodes(batch, discovered if expand and follow_split_parents else None)
                if expand:
                    for columns, rows in stream_in_batch(self.source, edge_sql, batch):
                        read_edges(columns, rows, discovered)
            # Sorted so that a level's batches (and so its queries) do not depend on row order.
            frontier = sorted(discovered)
            depth += 1

    def _read_nodes(self, batch: Sequence[str], split_parents: list[str] | None) -> None:
        """Names and wafer lots of a batch; with `split_parents`, also follow SPLITFROMID upwards."""
        for columns, rows in stream_in_batch(self.source, self.nodes_sql, batch):
            i_id, i_name, i_first, i_split = column_index(
                columns, "CONTAINERID", "CONTAINERNAME", "FIRSTNAME", "SPLITFROMID"
            )
            for row in rows:
                cid = row[i_id]
                if row[i_name] is not None:
                    self.names[cid] = row[i_name]
                if row[i_first] is not None:
                    self.firstnames[cid] = row[i_first]
                if split_parents is not None and row[i_split]:
                    self.add_edge(cid, row[i_split], split_parents)


def backward_lineage(
    source: DataSource,
    container_ids: Iterable[str],
    *,
    max_depth: int = MAX_DEPTH,
) -> dict[str, Any]:
    """Ancestors of the seeds through split parents and merge sources (see the module doc)."""
    seeds = normalise_ids(container_ids)
    walk = _Walk(source, seeds, max_depth)
    merges: dict[str, set[str]] = {}

    def read_merges(columns: Sequence[str], rows: Sequence[Sequence[Any]], discovered: list[str]) -> None:
        i_lot, i_source = column_index(columns, "LOTID", "CONTAINERID")
        for row in rows:
            merges.setdefault(row[i_lot], set()).add(row[i_source])
            walk.add_edge(row[i_lot], row[i_source], discovered)

    walk.run(source.sql.load("lineage_merge_sources"), read_merges, follow_split_parents=True)
    parents = walk.edges
    ancestors = {seed: _reachable(seed, parents, max_depth) for seed in seeds}
    every_ancestor: set[str] = set()
    for found in ancestors.values():
        every_ancestor.update(found)
    return {
        "roots": seeds,
        "ancestors": {seed: sorted(found) for seed, found in ancestors.items()},
        "parent_map": _sorted_map(parents),
        "merge_edges": _sorted_map(merges),
        "seed_roots": {seed: _wafer_lot(seed, ancestors[seed], parents, walk.firstnames) for seed in seeds},
        "names": dict(sorted(walk.names.items())),
        "total_nodes": len(walk.seen),
        "total_ancestor_count": len(every_ancestor),
    }


def forward_lineage(
    source: DataSource,
    container_ids: Iterable[str],
    *,
    max_depth: int = MAX_DEPTH,
) -> dict[str, Any]:
    """Descendants of the seeds through split children and merges into finished lots."""
    seeds = normalise_ids(container_ids)
    walk = _Walk(source, seeds, max_depth)
    serials: dict[str, str] = {}  # finished lot → its serial number (FINISHEDNAME)

    def read_children(columns: Sequence[str], rows: Sequence[Sequence[Any]], discovered: list[str]) -> None:
        i_parent, i_child, i_serial = column_index(columns, "PARENTID", "CHILDID", "FINISHEDNAME")
        for row in rows:
            walk.add_edge(row[i_parent], row[i_child], discovered)
            if row[i_serial] is not None:
                serials[row[i_child]] = row[i_serial]

    walk.run(source.sql.load("lineage_children"), read_children, follow_split_parents=False)
    children = walk.edges
    leaf_serials = {
        seed: sorted({serials[c] for c in _reachable(seed, children, max_depth) if c in serials}) for seed in seeds
    }
    return {
        "roots": seeds,
        "children_map": _sorted_map(children),
        "leaf_serials": leaf_serials,
        "names": dict(sorted(walk.names.items())),
        "total_nodes": len(walk.seen),
    }


def _reachable(start: str, edges: Mapping[str, set[str]], max_depth: int) -> set[str]:
    """Containers within `max_depth` edges of `start`, without `start`; cycle-safe."""
    found: set[str] = set()
    level = [start]
    for _ in range(max_depth):
        following: list[str] = []
        for node in level:
            for neighbour in edges.get(node, ()):
                if neighbour != start and neighbour not in found:
                    found.add(neighbour)
                    following.append(neighbour)
        if not following:
            break
        level = following
    return found


def _wafer_lot(
    seed: str, ancestors: set[str], parents: Mapping[str, set[str]], firstnames: Mapping[str, str]
) -> str | None:
    family = ancestors | {seed}
    roots = [c for c in family if not parents.get(c)]
    names = [firstnames[c] for c in roots if c in firstnames] or [firstnames[c] for c in family if c in firstnames]
    return min(names) if names else None


def _sorted_map(edges: Mapping[str, set[str]]) -> dict[str, list[str]]:
    return {node: sorted(targets) for node, targets in sorted(edges.items())}
