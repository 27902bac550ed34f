"""One analysis for one events request: stations, population and genealogy, then an aggregator
that the events reader feeds (inline path or job child alike)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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

    A genealogy that cannot be read (a database error during the walk) does not fail the analysis:
    it is computed over the lots alone and says so (genealogy_status "error").
    """
    detection = resolve_detection(request.params.get("station") or "測試", read_station_groups(source))
    start, end = request.window
    population = read_population(source, request.seeds, detection, start, end)
    direction = request.direction
    try:
        if genealogies.usable_lineage(request.lineage, direction):
            genealogy = genealogies.from_lineage(request.lineage, population.lot_ids, population.names, direction)
        else:
            genealogy = genealogies.walk(source, population.lot_ids, population.names, direction)
    except DatabaseError as exc:
        genealogy = genealogies.lots_alone(population.lot_ids, population.names, direction, str(exc))
    mode = "container" if request.params.get("mode") == "container" else "date_range"
    ancestors = None
    if direction == genealogies.FORWARD and genealogy.status == "ready":
        # Detail rows show ANCESTOR_COUNT in both directions: the closure is walked for its size only.
        try:
            closure = genealogies.walk(source, population.lot_ids, population.names, genealogies.BACKWARD)
            ancestors = np.diff(closure.member_offsets).astype(np.int32) - 1
        except DatabaseError as exc:
            genealogy = genealogies.lots_alone(population.lot_ids, population.names, direction, str(exc))
    return MsdAggregator(population, genealogy, detection, direction, mode, ancestors)


def event_container_ids(aggregator: MsdAggregator, extra_ids: Sequence[str]) -> list[str]:
    """The containers whose records the request returns: the seeds with their closure (or tracked
    set), and whatever else it named — sorted, so that IN-batches give one global order."""
    return sorted(set(aggregator.genealogy.containers) | set(extra_ids))
