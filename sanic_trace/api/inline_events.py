"""The inline events path: records go from fetchmany batches straight to the socket.

The body is the events envelope (results/envelope.py) written piece by piece while rows are
fetched. Each fetchmany batch is built into records and encoded once (in a DB thread, off the
event loop); the server holds one batch at a time. A failure before the first byte is an
ordinary error response (504 EVENTS_TIMEOUT, 503 DB_UNAVAILABLE, ...). Once the status line
is out, a domain that fails midway ends its array early, its `count` says how many records
were sent, and the body closes with "code":"EVENTS_PARTIAL_FAILURE" and the failed domains;
any other failure cuts the connection (api/body_writer.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import ujson
from sanic import Request

from jobs import new_job_id
from jobs.errors import REDIS_DOWN
from sanic_trace.api.body_writer import BodyWriter
from sanic_trace.api.cache import CacheWriter
from sanic_trace.api.protection import DatabaseSlots
from sanic_trace.errors import classify_exception
from sanic_trace.msd import run as msd_run
from sanic_trace.msd import storage
from sanic_trace.msd.index import MsdIndex
from sanic_trace.msd.run import RunningAnalysis
from sanic_trace.results.envelope import DomainFailure, EventsEnvelope, array_content
from sanic_trace.trace import events
from sanic_trace.trace.events import EventsRequest
from sanic_trace.trace.params import MSD

log = logging.getLogger("sanic_trace.events")


# Records per encoded piece. A fetchmany batch (DB_FETCHMANY_SIZE rows) is encoded in pieces of
# this many records and written piece by piece, so the encoder's buffers, the HTTP chunk framing
# and the transport's send buffer each copy a piece rather than a whole batch.
ENCODE_PIECE_RECORDS = 1000

Encoded = tuple[int, list[bytes]]


def encode_next(
    batches: Iterator[list[dict[str, Any]]], observe: Callable[[list[dict[str, Any]]], None] | None = None
) -> Encoded | None:
    """Advance a record-batch iterator once: (record count, the records as JSON array content pieces).

    Each record is encoded once; EventsEnvelope.items() joins the pieces with commas. `observe`
    sees every batch before it is encoded (the MSD analysis takes its numbers from it).
    """
    for records in batches:
        if records:
            if observe is not None:
                observe(records)
            pieces = [
                array_content(ujson.dumps(records[start : start + ENCODE_PIECE_RECORDS], ensure_ascii=False).encode())
                for start in range(0, len(records), ENCODE_PIECE_RECORDS)
            ]
            return len(records), pieces
    return None


async def stream_inline(
    request: Request,
    req: EventsRequest,
    cache: CacheWriter | None,
    trace_path: str,
    lineage: dict[str, Any] | None = None,
) -> None:
    """Serve `req` inline; `cache` stores the body as it is sent; `trace_path` is the X-Trace-Path value.

    A mid_section_defect request runs its analysis beside the records (msd/run.py): started in the
    DB thread before the status line (so its failures get a status code too), fed every batch, and
    its aggregation written into the envelope. `lineage` is the genealogy a lineage_query_id named.
    """
    slots: DatabaseSlots = request.app.ctx.db_slots
    source = request.app.ctx.source
    async with slots.slot():
        analysis: RunningAnalysis | None = None
        ids = req.container_ids
        headers = {
            "X-Trace-Path": trace_path,
            # miss: this body is being stored as it is sent; bypass: this request is never cached.
            "X-Cache": "miss" if cache is not None else "bypass",
        }
        if req.profile == MSD:
            analysis_id, stored = await _stored_analysis(request, req)
            analysis = await slots.run(msd_run.begin, source, req, lineage, stored)
            ids = analysis.container_ids
            analysis_id = analysis_id or new_job_id()
            headers["X-Analysis-ID"] = analysis_id
            # "reused": a repeated request answered from the stored analysis (only its records are read).
            headers["X-Analysis"] = "reused" if analysis.reused else "computed"

        def open_domain(domain: str) -> Iterator[list[dict[str, Any]]]:
            return events.iter_domain_batches(source, domain, ids)

        def observer(domain: str) -> Callable[[list[dict[str, Any]]], None] | None:
            return partial(analysis.observe, domain) if analysis is not None else None

        batches = open_domain(req.domains[0])
        try:
            # The first batch is fetched before any byte is sent, so that a database that
            # is down or a query that times out gets a proper status code.
            # Handed over in a list so that only the consumer holds it (and lets go once it is sent).
            prefetched = [await slots.run(encode_next, batches, observer(req.domains[0]))]
        except BaseException:
            await slots.run(batches.close)
            raise
        envelope = EventsEnvelope()
        failures: list[DomainFailure] = []
        try:
            async with BodyWriter(request, "application/json", headers=headers, cache=cache) as body:
                await body.send(envelope.head())
                for index, domain in enumerate(req.domains):
                    if index:
                        batches = open_domain(domain)
                    failure = await _stream_domain(
                        body, envelope, slots, domain, batches, prefetched, observer(domain)
                    )
                    if failure is not None:
                        failures.append(failure)
                if failures:
                    # A partly failed body is complete JSON, but not the answer to cache.
                    body.withhold_from_cache()
                aggregation = None
                if analysis is not None and not failures:
                    # Numbers over records that were cut short would be wrong: a partial body has none.
                    aggregation = await _finish_analysis(request, req, slots, analysis, analysis_id)
                await body.send(envelope.end(failures, aggregation))
        finally:
            # Only reached with an open iterator when the response could not even start.
            if prefetched:
                await slots.run(batches.close)


async def _stream_domain(
    body: BodyWriter,
    envelope: EventsEnvelope,
    slots: DatabaseSlots,
    domain: str,
    batches: Iterator[list[dict[str, Any]]],
    first: list[Encoded | None],
    observe: Callable[[list[dict[str, Any]]], None] | None = None,
) -> DomainFailure | None:
    """Write one domain's `"name":{"data":[...],"count":N}`; the domain's failure, if it failed midway.

    `first` holds the domain's prefetched batch, if any; it is taken out of the list, so that
    a batch is referenced by nothing once it is written.
    """
    await body.send(envelope.open_domain(domain))
    count = 0
    failure: DomainFailure | None = None
    item = first.pop() if first else None
    try:
        while True:
            if item is None:
                try:
                    item = await slots.run(encode_next, batches, observe)
                except Exception as exc:  # noqa: BLE001 - a failed domain is reported in the body
                    failure = _domain_failure(domain, exc, count)
                    break
                if item is None:
                    break
            n, pieces = item
            item = None
            # Send errors (the client went away) are not domain failures: they propagate.
            for piece in pieces:
                await body.send(envelope.items(piece))
            # Nothing of this batch is kept while the next one is fetched.
            del pieces
            count += n
    finally:
        await slots.run(batches.close)
    await body.send(envelope.close_domain(count))
    return failure


async def _stored_analysis(request: Request, req: EventsRequest) -> tuple[str | None, MsdIndex | None]:
    """The same analysis kept from an earlier request (msd/run.py analysis_digest): (its id, index)."""
    settings = request.app.ctx.settings
    client = request.app.ctx.redis
    try:
        found = await client.get(storage.analysis_key(settings.redis_prefix, msd_run.analysis_digest(req)))
        if found is None:
            return None, None
        analysis_id = found.decode()
        blob = await client.get(storage.index_key(settings.redis_prefix, analysis_id))
    except REDIS_DOWN:
        return None, None
    if blob is None:
        return None, None
    return analysis_id, await asyncio.to_thread(MsdIndex.from_bytes, blob)


async def _finish_analysis(
    request: Request, req: EventsRequest, slots: DatabaseSlots, analysis: RunningAnalysis, analysis_id: str
) -> bytes:
    """The aggregation of an inline analysis; its index is kept in Redis for re-aggregation and
    detail rows (X-Analysis-ID names it), and found again by a repeated request. Redis away: the
    answer is still whole, only not kept."""
    index, aggregation = await slots.run(analysis.finish)
    if analysis.reused:
        return aggregation
    blob = await slots.run(index.to_bytes)
    settings = request.app.ctx.settings
    ttl = settings.job_ttl_seconds
    try:
        async with request.app.ctx.redis.pipeline(transaction=False) as pipe:
            pipe.set(storage.index_key(settings.redis_prefix, analysis_id), blob, ex=ttl)
            digest = msd_run.analysis_digest(req)
            pipe.set(storage.analysis_key(settings.redis_prefix, digest), analysis_id, ex=ttl)
            await pipe.execute()
    except REDIS_DOWN as exc:
        log.warning("msd_index_not_kept request_id=%s error=%s", request.ctx.request_id, exc)
    return aggregation


def _domain_failure(domain: str, exc: Exception, sent: int) -> DomainFailure:
    api_error = classify_exception(exc, "events")
    log.error("events_domain_failed domain=%s records_sent=%d error=%s: %s", domain, sent, type(exc).__name__, exc)
    return DomainFailure(domain, api_error.code, f"{api_error.message} (after {sent} records)")
