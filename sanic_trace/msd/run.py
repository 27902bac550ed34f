"""An MSD analysis run alongside an events request, the same way on the inline path and in a job.

    analysis = begin(source, request, lineage)   # stations, population, genealogy (DB)
    for domain in request.domains:
        for batch in iter_domain_batches(source, domain, analysis.container_ids):
            analysis.observe(domain, batch)       # ... and the batch goes on to the socket / chunks
    index, aggregation = analysis.finish()        # MsdIndex (kept for re-aggregation) + its JSON

The records of an MSD request cover what the older dashboard asked for: the seeds with their
closure (backward) or tracked set (forward), and whatever else `container_ids` named — so a
request carrying only the seeds still returns the ancestors' upstream history.
"""

from __future__ import annotations

import gc
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import ujson

from sanic_trace.db.source import DataSource
from sanic_trace.msd.aggregator import MsdAggregator
from sanic_trace.msd.analysis import aggregate
from sanic_trace.msd.index import MsdIndex
from sanic_trace.msd.session import MsdRequest, event_container_ids, start_analysis
from sanic_trace.trace.events import EventsRequest
from sanic_trace.trace.params import MSD
from sanic_trace.trace.seeds import msd_common_params, validate_seed_request


def normalise_params(params: Mapping[str, Any], max_range_days: int) -> dict[str, Any]:
    """The params of an MSD events request, normalised as seed-resolve normalises them (400 naming
    the field otherwise). Without a date range and without `mode`, the analysis is container mode
    over the seeds themselves: their latest track-in at the station, at any date."""
    if not ({"start_date", "end_date", "date_range", "mode"} & params.keys()):
        return {"mode": "container", **msd_common_params(params)}
    return validate_seed_request(MSD, params, max_range_days)


def encode_aggregation(aggregation: Mapping[str, Any]) -> bytes:
    """The one encoding of an aggregation: the inline body, the job's stored copy and re-aggregation."""
    return ujson.dumps(aggregation, ensure_ascii=False).encode()


@dataclass
class RunningAnalysis:
    aggregator: MsdAggregator
    container_ids: list[str]
    loss_reasons: list[str]

    def observe(self, domain: str, records: list[dict[str, Any]]) -> None:
        self.aggregator.feed(domain, records)

    def finish(self) -> tuple[MsdIndex, bytes]:
        index = self.aggregator.finish()
        # The index holds all the rest needs: the genealogy (its id map above all) can go first.
        del self.aggregator
        gc.collect()
        return index, encode_aggregation(aggregate(index, self.loss_reasons))


def begin(source: DataSource, request: EventsRequest, lineage: Mapping[str, Any] | None = None) -> RunningAnalysis:
    """Start the analysis of an MSD events request (its params normalised by the HTTP layer).

    `lineage` is the genealogy the request named (its lineage object, or the one its
    lineage_query_id points at); without a usable one the genealogy is walked from the seeds.
    """
    seeds = request.seed_container_ids or request.container_ids
    msd = MsdRequest(request.params, seeds, lineage if lineage is not None else request.lineage)
    aggregator = start_analysis(source, msd)
    return RunningAnalysis(aggregator, event_container_ids(aggregator, request.container_ids), msd.loss_reasons)
