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
import hashlib
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


def analysis_digest(request: EventsRequest) -> str:
    """What decides an analysis — the seeds, the records' containers, the params but the loss-reason
    filter — as a digest: a repeated request (the dashboard's, with another filter) finds the stored
    analysis by it and is answered from its index, without the analysis's queries."""
    params = {k: v for k, v in request.params.items() if k != "loss_reasons"}
    material = [request.seed_container_ids or request.container_ids, request.container_ids, params]
    canonical = ujson.dumps(material, sort_keys=True, ensure_ascii=False).encode()
    return hashlib.sha256(canonical).hexdigest()[:32]


@dataclass
class RunningAnalysis:
    aggregator: MsdAggregator | None
    container_ids: list[str]
    loss_reasons: list[str]
    # A repeated request's analysis: the stored index, not recomputed (its records are still read).
    stored: MsdIndex | None = None

    @property
    def reused(self) -> bool:
        return self.stored is not None

    def observe(self, domain: str, records: list[dict[str, Any]]) -> None:
        if self.aggregator is not None:
            self.aggregator.feed(domain, records)

    def finish(self) -> tuple[MsdIndex, bytes]:
        if self.stored is not None:
            return self.stored, encode_aggregation(aggregate(self.stored, self.loss_reasons))
        assert self.aggregator is not None
        index = self.aggregator.finish()
        index.container_ids = self.container_ids
        # The index holds all the rest needs: the genealogy (its id map above all) can go first.
        self.aggregator = None
        gc.collect()
        return index, encode_aggregation(aggregate(index, self.loss_reasons))


def begin(
    source: DataSource,
    request: EventsRequest,
    lineage: Mapping[str, Any] | None = None,
    stored: MsdIndex | None = None,
) -> RunningAnalysis:
    """Start the analysis of an MSD events request (its params normalised by the HTTP layer).

    `lineage` is the genealogy the request named (its lineage object, or the one its
    lineage_query_id points at); without a usable one the genealogy is walked from the seeds.
    `stored`: the index of the same analysis (analysis_digest) kept from an earlier request.
    """
    if stored is not None:
        return RunningAnalysis(None, list(stored.container_ids), list(request.params.get("loss_reasons") or []), stored)
    seeds = request.seed_container_ids or request.container_ids
    msd = MsdRequest(request.params, seeds, lineage if lineage is not None else request.lineage)
    aggregator = start_analysis(source, msd)
    return RunningAnalysis(aggregator, event_container_ids(aggregator, request.container_ids), msd.loss_reasons)
