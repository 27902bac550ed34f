"""POST /api/trace/seed-resolve, /lineage and /events: the three stages the dashboard drives."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import ujson
from sanic import Blueprint, Request
from sanic.response import HTTPResponse

from jobs import RedisUnavailable
from jobs.errors import REDIS_DOWN
from sanic_trace.api import request_body
from sanic_trace.api.body_writer import BodyWriter
from sanic_trace.api.cache import CacheVanished, CacheWriter, cache_key, cached_size, read_cached, store
from sanic_trace.api.inline_events import stream_inline
from sanic_trace.api.job_routes import submit_events_job
from sanic_trace.api.request_meta import client_ip
from sanic_trace.api.routing import Route, cid_limit_exceeded, route_events
from sanic_trace.errors import ApiError
from sanic_trace.msd import handles
from sanic_trace.msd import run as msd_run
from sanic_trace.msd.aggregator import DOMAINS as ANALYSIS_DOMAINS
from sanic_trace.trace import events, lineage, seeds
from sanic_trace.trace.events import EventsRequest
from sanic_trace.trace.params import MSD, check_params, check_profile, string_list

log = logging.getLogger("sanic_trace.trace_api")

bp = Blueprint("trace", url_prefix="/api/trace")

JSON = "application/json"


async def _guard(request: Request, stage: str, limit: int) -> None:
    request.ctx.stage = stage
    await request.app.ctx.rate_limiter.check(stage, client_ip(request), limit)


async def _replay_cached(request: Request, key: str, headers: dict[str, str] | None = None) -> bool | None:
    """Stream a cached body if there is one: True when it was sent, False when there is none,
    None when Redis cannot be reached (the caller answers without the cache)."""
    client = request.app.ctx.redis
    size = await cached_size(client, key)
    if not size:
        return size if size is None else False
    slices = read_cached(client, key, size)
    # The first slice is read before the status line: a key that expired since STRLEN, or Redis
    # failing now, is still a plain miss or bypass rather than a cut response.
    try:
        first = await anext(slices)
    except CacheVanished:
        await slices.aclose()
        return False
    except REDIS_DOWN as exc:
        await slices.aclose()
        log.warning("cache_unavailable op=replay key=%s error=%s", key, exc)
        return None
    try:
        # The pieces are the stored (uncompressed) bytes; the writer compresses them for this client if
        # it asks. A slice that comes back short later (the key expired) cuts the connection.
        async with BodyWriter(request, JSON, headers={"X-Cache": "hit", **(headers or {})}) as body:
            await body.send(first)
            del first
            async for piece in slices:
                await body.send(piece)
    finally:
        await slices.aclose()
    return True


async def _cached_json(
    request: Request, stage: str, material: Any, compute: Callable[[], dict[str, Any]], *, handle: bool = False
) -> None:
    """Answer from the stage cache, or compute (in a DB thread), cache and answer.

    With `handle`, the answer carries `query_id`: the handle by which a later request names this
    cached answer instead of carrying it (null when it is not cached).
    """
    settings = request.app.ctx.settings
    key, public_key = cache_key(settings.redis_prefix, stage, material)
    use_cache = settings.cache_ttl_seconds > 0
    if use_cache:
        replayed = await _replay_cached(request, key)
        if replayed:
            return
        use_cache = replayed is not None
    slots = request.app.ctx.db_slots
    async with slots.slot():
        result = await slots.run(compute)
    payload = {"stage": stage, **result, "cache_key": public_key}
    if handle:
        payload["query_id"] = handles.make_handle(public_key) if use_cache else None
    encoded = ujson.dumps(payload, ensure_ascii=False).encode()
    # Stored uncompressed, before it is sent (compressed or not): X-Cache says whether it was.
    stored = use_cache and await store(request.app.ctx.redis, key, encoded, settings.cache_ttl_seconds)
    async with BodyWriter(request, JSON, headers={"X-Cache": "miss" if stored else "bypass"}) as body:
        await body.send_all(encoded)


@bp.post("/seed-resolve")
async def seed_resolve(request: Request) -> None:
    settings = request.app.ctx.settings
    await _guard(request, "seed-resolve", settings.rate_limit_seed_resolve)
    body = request_body.json_object(request)
    profile = check_profile(body.get("profile"))
    params = seeds.validate_seed_request(profile, dict(check_params(body.get("params"))), settings.msd_max_range_days)
    material = {"profile": profile, "params": seeds.cache_material(profile, params)}

    def compute() -> dict[str, Any]:
        return seeds.resolve_seeds(
            request.app.ctx.source, profile, params, msd_max_range_days=settings.msd_max_range_days
        )

    await _cached_json(request, "seed-resolve", material, compute)


@bp.post("/lineage")
async def lineage_stage(request: Request) -> None:
    settings = request.app.ctx.settings
    await _guard(request, "lineage", settings.rate_limit_lineage)
    body = request_body.json_object(request)
    profile = check_profile(body.get("profile"))
    ids = string_list(body.get("container_ids"), "container_ids", required=True)
    params = dict(check_params(body.get("params")))
    direction = lineage.lineage_direction(profile, params)
    material = {"profile": profile, "direction": direction, "ids": ids}
    build = lineage.backward_lineage if direction == "backward" else lineage.forward_lineage

    def compute() -> dict[str, Any]:
        return build(request.app.ctx.source, ids)

    await _cached_json(request, "lineage", material, compute, handle=True)


def parse_events_request(body: dict[str, Any], max_range_days: int) -> EventsRequest:
    profile = check_profile(body.get("profile"))
    ids = string_list(body.get("container_ids"), "container_ids", required=True)
    params = dict(check_params(body.get("params")))
    domains = events.validate_domains(body["domains"]) if "domains" in body else events.default_domains(profile, params)
    seed_ids = string_list(body.get("seed_container_ids"), "seed_container_ids", required=False)
    lineage_object = body.get("lineage")
    if lineage_object is not None and not isinstance(lineage_object, dict):
        raise ApiError("INVALID_PARAMS", "lineage must be a JSON object (the lineage stage's response)")
    handle = body.get(handles.FIELD)
    if handle is not None:
        handles.parse_handle(handle)
    if profile != MSD:
        return EventsRequest(profile=profile, container_ids=ids, domains=domains, params=params)
    msd_params = msd_run.normalise_params(params, max_range_days)
    needed = ANALYSIS_DOMAINS[msd_params["direction"]]
    missing = [d for d in needed if d not in domains]
    if missing:
        raise ApiError(
            "INVALID_PARAMS",
            f"domains of a {MSD} request must include {', '.join(needed)} (its analysis reads them, "
            f"{msd_params['direction']}); missing: {', '.join(missing)}",
        )
    return EventsRequest(
        profile=profile,
        container_ids=ids,
        domains=domains,
        params=msd_params,
        seed_container_ids=seed_ids,
        lineage=lineage_object,
        lineage_query_id=handle,
    )


async def _named_lineage(request: Request, req: EventsRequest) -> tuple[bool, dict[str, Any] | None]:
    """Check a lineage_query_id (400 when expired or unknown): (it names a stored lineage, that
    lineage if small enough to read here — LINEAGE_READ_MAX_BYTES — else None: the genealogy is
    then walked again from the seeds). Redis away: the handle cannot be checked and the genealogy
    is walked again (logged), which gives the same answer.
    """
    if req.lineage_query_id is None:
        return False, None
    settings = request.app.ctx.settings
    digest, issued = handles.parse_handle(req.lineage_query_id)
    key = handles.lineage_cache_key(settings.redis_prefix, digest)
    size = await cached_size(request.app.ctx.redis, key)
    if size is None:
        log.warning("lineage_handle_unchecked request_id=%s handle=%s", request.ctx.request_id, req.lineage_query_id)
        return False, None
    if size == 0:
        handles.refuse_missing(req.lineage_query_id, issued, settings.cache_ttl_seconds)
    if size > handles.LINEAGE_READ_MAX_BYTES:
        return True, None
    pieces = [piece async for piece in read_cached(request.app.ctx.redis, key, size)]
    return True, ujson.loads(b"".join(pieces))


@bp.post("/events")
async def events_stage(request: Request) -> HTTPResponse | None:
    settings = request.app.ctx.settings
    await _guard(request, "events", settings.rate_limit_events)
    req = parse_events_request(request_body.json_object(request), settings.msd_max_range_days)
    cid_count = len(req.container_ids)
    _, named_lineage = await _named_lineage(request, req)

    job_path_available = True
    route = route_events(cid_count, req.profile, settings, job_path_available)
    if route is Route.JOB:
        try:
            return await submit_events_job(request, req)
        except RedisUnavailable as exc:
            job_path_available = False
            route = route_events(cid_count, req.profile, settings, job_path_available)
            log.warning(
                "job_path_unavailable request_id=%s route=%s error=%s", request.ctx.request_id, route.value, exc
            )
    if route is Route.REFUSE:
        raise cid_limit_exceeded(cid_count, settings, job_path_available)

    cache = None
    cacheable = (
        settings.cache_ttl_seconds > 0 and req.profile != MSD and cid_count <= settings.cache_skip_cid_threshold
    )
    if cacheable:
        key, _ = cache_key(settings.redis_prefix, "events", req.cache_material())
        replayed = await _replay_cached(request, key, {"X-Trace-Path": route.value})
        if replayed:
            return None
        if replayed is not None:
            cache = CacheWriter(request.app.ctx.redis, key, settings.cache_ttl_seconds)
    await stream_inline(request, req, cache, route.value, named_lineage)
    return None
