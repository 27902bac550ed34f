"""The `trace-events` job: runs in a pool child, streams each domain into Redis chunks.

For each domain, for each IN-batch, for each fetchmany batch: records are built and handed
to the ChunkWriter, which stores a chunk whenever it holds TRACE_STREAM_BATCH_SIZE records.
The child's memory stays flat however large the result grows.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from jobs import JobContext, JobError
from sanic_trace.db.errors import DatabaseError, QueryTimeout
from sanic_trace.db.source import open_source
from sanic_trace.results.writer import ChunkWriter
from sanic_trace.settings import Settings, load_settings
from sanic_trace.trace import events


def build_payload(settings: Settings, profile: str, ids: list[str], domains: list[str], params: dict) -> dict:
    """The job's request. Holds no secret: an Oracle URL is read from the child's own environment."""
    db_url = settings.db_url
    if db_url.startswith("sqlite:///"):
        # The child may run with another working directory than the HTTP worker.
        db_url = "sqlite:///" + str(Path(db_url[len("sqlite:///") :]).resolve())
    else:
        db_url = None
    return {
        "profile": profile,
        "domains": domains,
        "params": params,
        "container_ids": ids,
        "db": {
            "url": db_url,
            "fetch_size": settings.db_fetchmany_size,
            "in_batch_size": settings.db_in_batch_size,
            "timeout_seconds": settings.db_query_timeout_seconds,
            "sql_override_dir": settings.sql_override_dir or None,
        },
        "chunk_size": settings.stream_batch_size,
        "step_delay_seconds": settings.job_step_delay_seconds,
    }


def run_events(ctx: JobContext, payload: dict[str, Any]) -> dict[str, Any]:
    db = payload["db"]
    url = db["url"] or load_settings().db_url
    source = open_source(url, db["fetch_size"], db["timeout_seconds"])
    ids: list[str] = payload["container_ids"]
    domains: list[str] = payload["domains"]
    delay = float(payload.get("step_delay_seconds") or 0)

    writer = ChunkWriter(ctx, payload["chunk_size"])
    writer.begin(payload["profile"], domains, len(ids))
    batches_per_domain = events.domain_batch_total(len(ids), db["in_batch_size"])
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

            batches = events.iter_domain_batches(
                source,
                domain,
                ids,
                in_batch_size=db["in_batch_size"],
                fetch_size=db["fetch_size"],
                on_batch_done=on_batch_done,
                sql_override_dir=db["sql_override_dir"],
            )
            try:
                counts[domain] = writer.write_domain(domain, batches, after_chunk)
            except QueryTimeout as exc:
                raise JobError("JOB_FAILED", f"domain {domain}: the database query timed out: {exc}") from exc
            except DatabaseError as exc:
                raise JobError("JOB_FAILED", f"domain {domain}: the database query failed: {exc}") from exc
            finally:
                batches.close()
            finished_batches += batches_per_domain
        ctx.progress(phase="done", done=total_batches, total=total_batches, records=writer.total_records)
    finally:
        source.close()
    return {"total_records": writer.total_records, "domains": counts}
