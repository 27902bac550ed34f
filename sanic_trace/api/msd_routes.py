"""The MSD page's own routes: its form's lookups, and a finished analysis read again without the database.

GET /api/trace/msd/stations                          station groups in route order {name, label, order}
GET /api/trace/msd/loss-reasons                      the loss reasons of the recent past
GET /api/trace/msd/<id>/aggregation?loss_reasons=…   the analysis for another filter (re-aggregation)
GET /api/trace/msd/<id>/detail?page=&page_size=&loss_reasons=…   detail rows, paged
GET /api/trace/msd/<id>/detail.csv?loss_reasons=…    every detail row as a streamed CSV (UTF-8, BOM)

<id> is an analysis id: a job's id for an MSD job, the X-Analysis-ID of an inline MSD response.
The analysis is read from its MsdIndex in Redis; nothing here queries the warehouse.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from datetime import datetime, timedelta
from typing import Any

import ujson
from sanic import Blueprint, Request

from jobs import is_valid_job_id
from jobs.errors import REDIS_DOWN
from sanic_trace.api.body_writer import BodyWriter
from sanic_trace.api.request_meta import client_ip
from sanic_trace.errors import ApiError
from sanic_trace.msd import storage
from sanic_trace.msd.analysis import aggregate
from sanic_trace.msd.detail import MAX_PAGE_SIZE, csv_pieces, detail_page
from sanic_trace.msd.index import MsdIndex
from sanic_trace.msd.run import encode_aggregation
from sanic_trace.trace.params import invalid, names_list
from sanic_trace.trace.queries import column_index
from sanic_trace.trace.stations import read_station_groups

bp = Blueprint("trace_msd", url_prefix="/api/trace/msd")
JSON = "application/json"
LOSS_REASONS_SQL = "lookup_loss_reasons"
# The lookups are tiny and change with the route, not with each request: kept per worker this long.
LOOKUP_MIN_TTL_SECONDS = 60
# Analyses kept parsed per worker: the dashboard asks several filters and pages of the same one.
PARSED_ANALYSES = 2


class _Memo:
    """A few values kept for a while in this worker (lookups; parsed analyses)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.values: OrderedDict[str, tuple[float, Any]] = OrderedDict()

    def get(self, key: str) -> Any:
        entry = self.values.get(key)
        if entry is None or entry[0] < time.monotonic():
            self.values.pop(key, None)
            return None
        self.values.move_to_end(key)
        return entry[1]

    def put(self, key: str, value: Any, ttl: float) -> None:
        self.values[key] = (time.monotonic() + ttl, value)
        self.values.move_to_end(key)
        while len(self.values) > self.size:
            self.values.popitem(last=False)


def _json(value: Any) -> bytes:
    return ujson.dumps(value, ensure_ascii=False).encode()


_lookups = _Memo(4)
_analyses = _Memo(PARSED_ANALYSES)


async def _guard(request: Request) -> None:
    request.ctx.stage = "msd"
    await request.app.ctx.rate_limiter.check("job", client_ip(request), request.app.ctx.settings.rate_limit_jobs)


async def _lookup(request: Request, name: str, compute: Any) -> None:
    settings = request.app.ctx.settings
    body = _lookups.get(name)
    if body is None:
        slots = request.app.ctx.db_slots
        async with slots.slot():
            body = _json(await slots.run(compute, request.app.ctx.source))
        _lookups.put(name, body, max(settings.cache_ttl_seconds, LOOKUP_MIN_TTL_SECONDS))
    async with BodyWriter(request, JSON) as writer:
        await writer.send_all(body)


@bp.get("/stations")
async def stations(request: Request) -> None:
    await _guard(request)

    def compute(source: Any) -> dict[str, Any]:
        groups = read_station_groups(source)
        return {"stations": [{"name": g.name, "label": g.name, "order": g.order} for g in groups]}

    await _lookup(request, "stations", compute)


@bp.get("/loss-reasons")
async def loss_reasons(request: Request) -> None:
    await _guard(request)
    days = request.app.ctx.settings.msd_loss_reason_days

    def compute(source: Any) -> dict[str, Any]:
        since = datetime.now() - timedelta(days=days)
        reasons: list[str] = []
        for columns, rows in source.stream(source.sql.load(LOSS_REASONS_SQL), {"since": since}):
            (i_reason,) = column_index(columns, "LOSSREASONNAME")
            reasons.extend(row[i_reason] for row in rows)
        return {"loss_reasons": reasons, "days": days}

    await _lookup(request, "loss-reasons", compute)


# --- a finished analysis ----------------------------------------------------------------------------


async def _index(request: Request, analysis_id: str) -> MsdIndex:
    if not is_valid_job_id(analysis_id):
        raise ApiError("INVALID_JOB_ID", "an analysis id is 32 lowercase hexadecimal characters")
    parsed = _analyses.get(analysis_id)
    if parsed is not None:
        return parsed
    settings = request.app.ctx.settings
    try:
        blob = await request.app.ctx.redis.get(storage.index_key(settings.redis_prefix, analysis_id))
    except REDIS_DOWN as exc:
        raise ApiError("REDIS_UNAVAILABLE", f"Redis is unavailable: {exc}") from None
    if blob is None:
        raise ApiError(
            "ANALYSIS_NOT_FOUND",
            f"no analysis {analysis_id}: unknown, not finished yet, or expired after TRACE_JOB_TTL_SECONDS",
        )
    index = await asyncio.to_thread(MsdIndex.from_bytes, blob)
    _analyses.put(analysis_id, index, settings.job_ttl_seconds)
    return index


def _filter(request: Request) -> list[str]:
    values = request.args.getlist("loss_reasons")
    if values is None:
        return []
    return names_list(",".join(values), "loss_reasons")


def _positive(request: Request, name: str, default: int, most: int | None = None) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 9 or int(raw) < 1:
        invalid(f"{name} must be a positive integer; got {raw!r}")
    value = int(raw)
    if most is not None and value > most:
        invalid(f"{name} must be at most {most}; got {value}")
    return value


@bp.get("/<analysis_id:str>/aggregation")
async def reaggregate(request: Request, analysis_id: str) -> None:
    await _guard(request)
    reasons = _filter(request)
    index = await _index(request, analysis_id)
    body = await asyncio.to_thread(lambda: encode_aggregation(aggregate(index, reasons)))
    async with BodyWriter(request, JSON, headers={"X-Analysis-ID": analysis_id}) as writer:
        await writer.send_all(body)


@bp.get("/<analysis_id:str>/detail")
async def detail(request: Request, analysis_id: str) -> None:
    await _guard(request)
    reasons = _filter(request)
    page = _positive(request, "page", 1)
    page_size = _positive(request, "page_size", 100, MAX_PAGE_SIZE)
    index = await _index(request, analysis_id)
    body = await asyncio.to_thread(lambda: _json(detail_page(index, reasons, page, page_size)))
    async with BodyWriter(request, JSON) as writer:
        await writer.send_all(body)


@bp.get("/<analysis_id:str>/detail.csv")
async def detail_csv(request: Request, analysis_id: str) -> None:
    await _guard(request)
    reasons = _filter(request)
    index = await _index(request, analysis_id)
    pieces = csv_pieces(index, reasons)
    headers = {"Content-Disposition": f'attachment; filename="msd-{analysis_id}.csv"'}
    async with BodyWriter(request, "text/csv; charset=utf-8", headers=headers) as writer:
        while (piece := await asyncio.to_thread(next, pieces, None)) is not None:
            await writer.send(piece)
