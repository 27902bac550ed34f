"""Trace jobs over HTTP: submitting large events requests, and reading their status and results.

POST   /api/trace/events            over TRACE_ASYNC_CID_THRESHOLD: submit_events_job (api/trace.py routes)
GET    /api/trace/job/<id>          status + result summary
GET    /api/trace/job/<id>/stream   live, resumable NDJSON (?domain=D&from_batch=N)
GET    /api/trace/job/<id>/result   the inline body, or a page (?domain=D&offset=O&limit=L)
DELETE /api/trace/job/<id>          cancel

Stream and result bodies go through the BodyWriter: gzip when asked, and a connection cut, never
a clean end, when Redis fails or a chunk is missing after the status line.
"""

from __future__ import annotations

import logging
from typing import Any

import ujson
from sanic import Blueprint, Request
from sanic.response import HTTPResponse, json

from jobs import ACTIVE, JobKeys, MemoryPressure, QueueFull, RedisUnavailable, Status, is_valid_job_id
from sanic_trace.api.body_writer import BodyWriter
from sanic_trace.api.request_meta import client_ip
from sanic_trace.errors import ApiError
from sanic_trace.pool import TRACE_EVENTS_KIND
from sanic_trace.results import ndjson
from sanic_trace.results.reader import (
    ResultExpired,
    StreamPosition,
    live_lines,
    page,
    read_index,
    whole_body,
)
from sanic_trace.trace.events import DOMAINS, EventsRequest

log = logging.getLogger("sanic_trace.jobs_api")

bp = Blueprint("trace_jobs", url_prefix="/api/trace/job")
JSON = "application/json"


# --- submission (POST /api/trace/events, routed to a job by api/routing.py) -------------------
async def submit_events_job(request: Request, req: EventsRequest) -> HTTPResponse:
    """202 with the job's URLs. Raises jobs.RedisUnavailable when the job path is unavailable
    (the caller routes again without it)."""
    try:
        job_id = await request.app.ctx.jobs.submit(TRACE_EVENTS_KIND, req.to_payload())
    except QueueFull as exc:
        raise ApiError("JOB_QUEUE_FULL", str(exc)) from None
    except MemoryPressure as exc:
        raise ApiError("MEMORY_PRESSURE", str(exc)) from None
    base = f"/api/trace/job/{job_id}"
    log.info(
        "events_job_submitted request_id=%s job_id=%s cids=%d domains=%s",
        request.ctx.request_id,
        job_id,
        len(req.container_ids),
        ",".join(req.domains),
    )
    body = {
        "stage": "events",
        "async": True,
        "job_id": job_id,
        "status_url": base,
        "stream_url": f"{base}/stream",
        "result_url": f"{base}/result",
    }
    return json(body, status=202, headers={"Location": base, "X-Trace-Path": "job"})


# --- reading ---------------------------------------------------------------------------------
async def _guard(request: Request, job_id: str) -> None:
    request.ctx.stage = "job"
    await request.app.ctx.rate_limiter.check("job", client_ip(request), request.app.ctx.settings.rate_limit_jobs)
    if not is_valid_job_id(job_id):
        raise ApiError("INVALID_JOB_ID", "job id must be 32 lowercase hexadecimal characters")


async def _status_or_404(request: Request, job_id: str) -> dict[str, Any]:
    try:
        status = await request.app.ctx.jobs.status(job_id)
    except RedisUnavailable as exc:
        raise ApiError("REDIS_UNAVAILABLE", str(exc)) from None
    if status is None:
        raise ApiError("JOB_NOT_FOUND", f"no job {job_id}: unknown, or expired after TRACE_JOB_TTL_SECONDS")
    return status


def _int_arg(request: Request, name: str, default: int | None) -> int | None:
    raw = request.args.get(name)
    if raw is None:
        return default
    # Plain ASCII digits only: int() would also take "1_000", " 7 ", "+3" and non-ASCII digits.
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:
        raise ApiError("INVALID_PARAMS", f"{name} must be a non-negative integer; got {raw!r}")
    return int(raw)


async def _status_document(request: Request, job_id: str) -> dict[str, Any]:
    """The status record with `result`: what is stored so far (the one shape of GET and DELETE)."""
    status = await _status_or_404(request, job_id)
    keys = JobKeys(request.app.ctx.settings.redis_prefix, job_id)
    index = await read_index(request.app.ctx.redis, keys)
    status["result"] = index.summary() if index is not None else None
    return status


@bp.get("/<job_id:str>")
async def job_status(request: Request, job_id: str) -> HTTPResponse:
    await _guard(request, job_id)
    return json(await _status_document(request, job_id))


@bp.get("/<job_id:str>/stream")
async def job_stream(request: Request, job_id: str) -> None:
    await _guard(request, job_id)
    status = await _status_or_404(request, job_id)
    domain = request.args.get("domain")
    # `from_batch` is the public name (the NDJSON `batch` field); it counts stored chunks.
    from_chunk = _int_arg(request, "from_batch", 0) or 0
    if from_chunk and domain is None:
        raise ApiError("INVALID_PARAMS", "from_batch needs domain: resume with ?domain=D&from_batch=N")
    settings = request.app.ctx.settings
    if domain is not None:
        # Refused with a status code while we still can; a job whose index is not written yet
        # (queued) is checked against its domains once they are known, with an error line.
        index = await read_index(request.app.ctx.redis, JobKeys(settings.redis_prefix, job_id))
        known = index.domains if index is not None else (list(DOMAINS) if status["status"] in ACTIVE else None)
        if known is not None and domain not in known:
            raise ApiError("INVALID_PARAMS", f"domain must be one of this job's domains {known}; got {domain!r}")
    lines = live_lines(
        request.app.ctx.redis,
        settings.redis_prefix,
        job_id,
        StreamPosition(domain, from_chunk),
        settings.stream_keepalive_seconds,
    )
    headers = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    try:
        async with BodyWriter(request, ndjson.JSONL, headers=headers) as body:
            try:
                async for line in lines:
                    await body.send(line)
            except RedisUnavailable as exc:
                # Before the first line: a 503. After it the writer cuts the connection; a client
                # resumes with ?domain=D&from_batch=N once Redis is back.
                raise ApiError("REDIS_UNAVAILABLE", str(exc)) from None
    finally:
        await lines.aclose()


@bp.get("/<job_id:str>/result")
async def job_result(request: Request, job_id: str) -> HTTPResponse | None:
    await _guard(request, job_id)
    status = await _status_or_404(request, job_id)
    if status["status"] != Status.FINISHED:
        raise ApiError(
            "JOB_NOT_COMPLETE",
            f"job {job_id} is {status['status']}; its result is readable once it has finished",
            extra={"status": status["status"], "job_error": status.get("error")},
        )
    settings = request.app.ctx.settings
    client = request.app.ctx.redis
    keys = JobKeys(settings.redis_prefix, job_id)
    index = await read_index(client, keys)
    if index is None:
        raise ApiError("JOB_RESULT_EXPIRED", f"the result of job {job_id} has expired")

    domain = request.args.get("domain")
    offset = _int_arg(request, "offset", None)
    limit = _int_arg(request, "limit", None)
    if domain is None and offset is None and limit is None:
        # A chunk that expired, or Redis failing, after the first byte cuts the connection
        # (BodyWriter): a client never receives a short body that ends cleanly.
        async with BodyWriter(request, JSON) as body:
            async for piece in whole_body(client, keys, index):
                await body.send(piece)
        return None

    if domain is None or domain not in index.domains:
        raise ApiError("INVALID_PARAMS", f"domain must be one of this job's domains {index.domains}; got {domain!r}")
    limit = settings.result_page_max_limit if limit is None else limit
    if limit < 1:
        raise ApiError("INVALID_PARAMS", "limit must be at least 1")
    limit = min(limit, settings.result_page_max_limit)
    try:
        window = await page(client, keys, index, domain, offset or 0, limit)
    except ResultExpired as exc:
        raise ApiError("JOB_RESULT_EXPIRED", str(exc)) from None
    async with BodyWriter(request, JSON) as body:
        await body.send_all(ujson.dumps(window, ensure_ascii=False).encode())
    return None


@bp.delete("/<job_id:str>")
async def job_cancel(request: Request, job_id: str) -> HTTPResponse:
    await _guard(request, job_id)
    await _status_or_404(request, job_id)
    try:
        outcome = await request.app.ctx.jobs.cancel(job_id)
    except RedisUnavailable as exc:
        raise ApiError("REDIS_UNAVAILABLE", str(exc)) from None
    status = await _status_document(request, job_id)
    status["cancelled"] = outcome.cancelled
    status["message"] = (
        f"cancelled (was {outcome.previous_status})"
        if outcome.cancelled
        else f"not cancelled: the job had already ended ({outcome.previous_status})"
    )
    return json(status)
