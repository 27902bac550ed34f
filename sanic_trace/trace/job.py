"""The `trace-events` job: runs in a pool child, streams each domain into Redis chunks.

What the job is asked travels in Redis as its payload: the `events.EventsRequest` the HTTP layer
validated, typed on both ends (`to_payload` in the HTTP worker, `from_payload` in the child). How to run it — the
warehouse URL (an Oracle password never goes to Redis), database tuning, chunk size, the
fault-injection and step-delay hooks — is the service's `Settings`, which reach the child
through the pool's pipe as `ctx.config.job_config` (see sanic_trace.pool). So a job runs with
the settings of the host that runs it.

For each domain, for each IN-batch, for each fetchmany batch: records are built and handed
to the ChunkWriter, which stores a chunk whenever it holds TRACE_STREAM_BATCH_SIZE records.
The child's memory stays flat however large the result grows.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from functools import partial
from typing import TYPE_CHECKING, Any

import ujson

from jobs import JobContext, JobError
from sanic_trace.db.batching import batch_count
from sanic_trace.db.errors import DatabaseError, QueryTimeout
from sanic_trace.db.source import open_source
from sanic_trace.msd import handles, storage
from sanic_trace.results.writer import ChunkWriter
from sanic_trace.settings import Settings
from sanic_trace.trace import events
from sanic_trace.trace.params import MSD

if TYPE_CHECKING:
    from sanic_trace.msd.index import MsdIndex

# The analysis (numpy and its index) is imported by MSD jobs only: a plain job's child stays
# the size of what it streams (numpy alone is ~12 MB of RSS).


def _named_lineage(ctx: JobContext, settings: Settings, request: events.EventsRequest) -> dict[str, Any] | None:
    """The lineage a lineage_query_id names, read here when it is small enough (msd/handles.py)."""
    if request.lineage is not None or request.lineage_query_id is None:
        return None
    digest, _ = handles.parse_handle(request.lineage_query_id)
    key = handles.lineage_cache_key(settings.redis_prefix, digest)
    if int(ctx.redis.strlen(key)) > handles.LINEAGE_READ_MAX_BYTES:
        return None  # walked again from the seeds instead: the same genealogy, in far less memory
    body = ctx.redis.get(key)
    return ujson.loads(body) if body else None


def _stored_analysis(ctx: JobContext, settings: Settings, request: events.EventsRequest) -> MsdIndex | None:
    """The index of the same analysis kept from an earlier request (msd/run.py analysis_digest)."""
    from sanic_trace.msd import run as msd_run
    from sanic_trace.msd.index import MsdIndex

    found = ctx.redis.get(storage.analysis_key(settings.redis_prefix, msd_run.analysis_digest(request)))
    if found is None:
        return None
    blob = ctx.redis.get(storage.index_key(settings.redis_prefix, found.decode()))
    return MsdIndex.from_bytes(blob) if blob is not None else None


def run_events(ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    settings: Settings = ctx.config.job_config
    request = events.EventsRequest.from_payload(payload)
    source = open_source(settings)
    domains = request.domains
    delay = settings.job_step_delay_seconds
    analysis = None
    ids = request.container_ids
    if request.profile == MSD:
        from sanic_trace.msd import run as msd_run

        ctx.progress(phase="analysis", done=0, total=None, records=0)
        try:
            stored = _stored_analysis(ctx, settings, request)
            analysis = msd_run.begin(source, request, _named_lineage(ctx, settings, request), stored)
        except DatabaseError as exc:
            source.close()
            raise JobError("JOB_FAILED", f"the MSD analysis could not start: {exc}") from exc
        ids = analysis.container_ids

    writer = ChunkWriter(ctx, settings.stream_batch_size)
    writer.begin(request.profile, domains, len(ids))
    batches_per_domain = batch_count(len(ids), source.in_batch_size)
    total_batches = batches_per_domain * len(domains)
    finished_batches = 0
    counts: dict[str, int] = {}

    def pause() -> None:
        # Test/demo hook: a live reader can watch chunks land one by one, and a test can keep a job
        # running while it stores nothing (an IN-batch without records) for as long as it needs.
        if delay:
            time.sleep(delay)

    def after_chunk() -> None:
        ctx.check()
        pause()

    try:
        for domain in domains:
            ctx.progress(phase=domain, done=finished_batches, total=total_batches, records=writer.total_records)

            def on_batch_done(done: int, _total: int, _base: int = finished_batches, _domain: str = domain) -> None:
                ctx.progress(phase=_domain, done=_base + done, total=total_batches, records=writer.total_records)
                ctx.check()
                pause()

            batches = events.iter_domain_batches(source, domain, ids, on_batch_done=on_batch_done)
            if analysis is not None:
                batches = _observed(batches, partial(analysis.observe, domain))
            try:
                counts[domain] = writer.write_domain(domain, batches, after_chunk)
            except QueryTimeout as exc:
                raise JobError("JOB_FAILED", f"domain {domain}: the database query timed out: {exc}") from exc
            except DatabaseError as exc:
                raise JobError("JOB_FAILED", f"domain {domain}: the database query failed: {exc}") from exc
            finally:
                batches.close()
            finished_batches += batches_per_domain
        if analysis is not None:
            ctx.progress(phase="aggregation", done=total_batches, total=total_batches, records=writer.total_records)
            index, aggregation = analysis.finish()
            # Kept with the job (its TTL follows the job's): re-aggregation, detail rows, the CSV —
            # and found again, by its digest, by a repeated request.
            ctx.set_data(storage.INDEX_SUFFIX, index.to_bytes())
            writer.store_aggregation(storage.AGGREGATION_SUFFIX, storage.READY_FIELD, aggregation)
            if not analysis.reused:
                digest_key = storage.analysis_key(settings.redis_prefix, msd_run.analysis_digest(request))
                ctx.redis.set(digest_key, ctx.job_id, ex=settings.job_ttl_seconds)
        ctx.progress(phase="done", done=total_batches, total=total_batches, records=writer.total_records)
    finally:
        source.close()
    return {"total_records": writer.total_records, "domains": counts}


def _observed(batches: Iterator[list[dict[str, Any]]], observe: Any) -> Iterator[list[dict[str, Any]]]:
    """The batches, each shown to the analysis on its way to the chunks (closing reaches the source)."""
    try:
        for batch in batches:
            observe(batch)
            yield batch
    finally:
        batches.close()  # type: ignore[attr-defined]
