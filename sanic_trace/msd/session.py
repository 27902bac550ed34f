"""One analysis for one events request: stations, population and genealogy, then an aggregator
that the events reader feeds (inline path or job child alike)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import numpy as np

from sanic_trace.db.errors import DatabaseError
from sanic_trace.db.source import DataSource
from sanic_trace.msd import genealogy as genealogies
from sanic_trace.msd.aggregator import MsdAggregator
from sanic_trace.msd.population import read_population
from sanic_trace.trace.stations import read_station_groups, resolve_detection


@dataclass(frozen=True)
class MsdRequest:
    """What an MSD events request asks the analysis (validated: trace.seeds normalises the params)."""

    params: Mapping[str, Any]  # validate_seed_request("mid_section_defect", ...) output
    seeds: list[str]
    lineage: Mapping[str, Any] | None = None
    extra_ids: list[str] = field(default_factory=list)  # container_ids the request names

    @property
    def direction(self) -> str:
        return str(self.params.get("direction") or "backward")

    @property
    def loss_reasons(self) -> list[str]:
        return list(self.params.get("loss_reasons") or [])

    @property
    def window(self) -> tuple[date | None, date | None]:
        if self.params.get("mode") == "container":
            return None, None
        return date.fromisoformat(self.params["start_date"]), date.fromisoformat(self.params["end_date"])


def start_analysis(source: DataSource, request: MsdRequest) -> MsdAggregator:
    """Read the stations, the population and the genealogy; an aggregator ready for the records.

    The population queries and the genealogy walk are independent (the walk starts from every
    seed; the lots without a detection track-in are dropped afterwards), so they run side by side:
    SQLite and Oracle work in their own threads, off the GIL. A genealogy that cannot be read (a
    database error during the walk) does not fail the analysis: it is computed over the lots
    alone and says so (genealogy_status "error").
    """
    detection = resolve_detection(request.params.get("station") or "測試", read_station_groups(source))
    start, end = request.window
    direction = request.direction
    seeds = list(dict.fromkeys(request.seeds))
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="msd") as pool:
        population_future = pool.submit(read_population, source, seeds, detection, start, end)
        ancestors_future = None
        if direction == genealogies.FORWARD:
            # Detail rows show ANCESTOR_COUNT in both directions: the closure is walked for its size only.
            ancestors_future = pool.submit(_walk, source, seeds, genealogies.BACKWARD, None)
        genealogy = _walk(source, seeds, direction, request.lineage)
        population = population_future.result()
        lots = population.lot_ids
        ancestors = None
        if ancestors_future is not None:
            closure = ancestors_future.result()
            if closure.status == "ready":
                closure = closure.for_lots(lots)
                ancestors = np.diff(closure.member_offsets).astype(np.int32) - 1
    if genealogy.status == "ready":
        genealogy = genealogy.for_lots(lots)
        # A lot's own name where its genealogy did not know it (no container row).
        if direction == genealogies.BACKWARD:
            genealogy.root_names = [
                root if root != cid else name for root, cid, name in zip(genealogy.root_names, lots, population.names)
            ]
    else:
        genealogy = genealogies.lots_alone(lots, population.names, direction, genealogy.error or "")
    mode = "container" if request.params.get("mode") == "container" else "date_range"
    return MsdAggregator(population, genealogy, detection, direction, mode, ancestors)


def _walk(
    source: DataSource, seeds: list[str], direction: str, lineage: Mapping[str, Any] | None
) -> genealogies.Genealogy:
    """The genealogy of every seed: from the request's lineage object when it is usable, else walked."""
    try:
        if genealogies.usable_lineage(lineage, direction):
            return genealogies.from_lineage(lineage, seeds, seeds, direction)
        return genealogies.walk(source, seeds, seeds, direction)
    except DatabaseError as exc:
        return genealogies.lots_alone(seeds, seeds, direction, str(exc))


def event_container_ids(aggregator: MsdAggregator, extra_ids: Sequence[str]) -> list[str]:
    """The containers whose records the request returns: the seeds with their closure (or tracked
    set), and whatever else it named — sorted, so that IN-batches give one global order."""
    return sorted(set(aggregator.genealogy.containers) | set(extra_ids))
