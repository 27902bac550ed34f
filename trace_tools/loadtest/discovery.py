"""Finding real seed values on the running service before the load starts.

The harness has no database access (it may load a remote deployment), so it asks the API
what a user would type:

1. GET /health — the service must answer "ok".
2. The MSD date window: --msd-range, or probed. Probing asks seed-resolve (mid_section_defect,
   default station) for the longest range the server allows (366 days, or what its
   INVALID_PARAMS message says), ending today, then the windows before it, until one has lots.
3. Where in that window the data is: one seed-resolve per 30-day slice; msd sessions pick
   their ranges inside the span of slices that have lots.
4. Lot ids (CONTAINERNAME) from the window's seeds; wafer lots from a backward lineage of a
   sample of them (`seed_roots`); work orders from the PJ_WORKORDER column of a small inline
   history request.
5. For `large`: how many containers a backward lineage of every seed in the window gives —
   the most ids a large session can send (--large-ids caps it).

Discovery is sequential, one request at a time, and not part of the measured run. On a
production warehouse the probes are real MSD queries (seconds to minutes each); --msd-range
skips steps 2-3.
"""

from __future__ import annotations

import random
import re
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import httpx
import ujson

from trace_tools.loadtest import bodies

DEFAULT_MAX_RANGE_DAYS = 366
SLICE_DAYS = 30
MAX_WINDOWS_BACK = 10  # ten windows: about ten years of history
LOT_NAME_SAMPLE = 1000
WAFER_LOT_SAMPLE_SEEDS = 200
WORK_ORDER_SAMPLE_SEEDS = 20
_MAX_DAYS_MESSAGE = re.compile(r"at most (\d+)")


class DiscoveryFailed(Exception):
    """The service cannot be loaded: not healthy, or no data to build sessions from."""


@dataclass
class SeedPool:
    """What the scenarios draw their inputs from."""

    window: tuple[str, str]  # ISO dates, inclusive: the MSD window that has lots
    span: tuple[str, str]  # the part of the window whose 30-day slices have lots
    window_seed_count: int
    lot_names: list[str]
    wafer_lots: list[str]
    work_orders: list[str]
    large_pool: int | None = None  # containers in the backward lineage of every window seed
    health: dict[str, Any] = field(default_factory=dict)
    requests: int = 0
    seconds: float = 0.0

    def summary(self) -> dict[str, Any]:
        return {
            "msd_window": list(self.window),
            "msd_span_with_data": list(self.span),
            "msd_window_lots": self.window_seed_count,
            "lot_ids": len(self.lot_names),
            "wafer_lots": len(self.wafer_lots),
            "work_orders": len(self.work_orders),
            "large_pool_ids": self.large_pool,
            "requests": self.requests,
            "seconds": round(self.seconds, 2),
            "server_version": self.health.get("version"),
        }


class _Api:
    """Plain sequential calls; any failure ends discovery with a message naming the request."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self.requests = 0

    async def send(self, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
        self.requests += 1
        try:
            response = await self.client.request(method, path, json=body, headers={"X-Request-ID": "lt-discovery"})
        except httpx.HTTPError as exc:
            raise DiscoveryFailed(f"{method} {path}: {type(exc).__name__}: {exc}") from None
        try:
            return response.status_code, ujson.loads(response.content)
        except ValueError:
            raise DiscoveryFailed(f"{method} {path}: HTTP {response.status_code}, not JSON") from None

    async def post_ok(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        status, answer = await self.send("POST", path, body)
        if status != 200:
            raise DiscoveryFailed(f"POST {path}: HTTP {status}: {_error_text(answer)}")
        return answer


def _error_text(answer: Any) -> str:
    if isinstance(answer, dict) and isinstance(answer.get("error"), dict):
        return f"{answer['error'].get('code')}: {answer['error'].get('message')}"
    return str(answer)[:200]


def parse_range(text: str) -> tuple[str, str]:
    """'YYYY-MM-DD:YYYY-MM-DD' → (start, end); ValueError when it is not that."""
    start, sep, end = text.partition(":")
    if not sep:
        raise ValueError("expected START:END, e.g. 2026-01-01:2026-06-30")
    first, last = date.fromisoformat(start.strip()), date.fromisoformat(end.strip())
    if last < first:
        raise ValueError("the range ends before it starts")
    return first.isoformat(), last.isoformat()


async def discover(
    client: httpx.AsyncClient,
    *,
    msd_range: tuple[str, str] | None,
    need_large_pool: bool,
    rng: random.Random,
    today: date | None = None,
) -> SeedPool:
    started = time.monotonic()
    api = _Api(client)
    health = await _health(api)
    if msd_range is not None:
        window = msd_range
        seeds = await _msd_seeds(api, *window)
        if not seeds:
            raise DiscoveryFailed(f"--msd-range {window[0]}:{window[1]} has no lots at the default MSD station")
        span = window
    else:
        window, seeds = await _probe_window(api, today or datetime.now().date())
        span = await _span_with_data(api, window)
    names = sorted({s["container_name"] for s in seeds if s.get("container_name")})
    lot_names = rng.sample(names, min(LOT_NAME_SAMPLE, len(names)))
    seed_ids = [s["container_id"] for s in seeds]
    wafer_lots = await _wafer_lots(api, rng.sample(seed_ids, min(WAFER_LOT_SAMPLE_SEEDS, len(seed_ids))))
    work_orders = await _work_orders(api, rng.sample(seed_ids, min(WORK_ORDER_SAMPLE_SEEDS, len(seed_ids))))
    pool = SeedPool(
        window=window,
        span=span,
        window_seed_count=len(seeds),
        lot_names=lot_names,
        wafer_lots=wafer_lots,
        work_orders=work_orders,
        health=health,
    )
    if need_large_pool:
        answer = await api.post_ok("/api/trace/lineage", bodies.lineage("mid_section_defect", seed_ids))
        pool.large_pool = len(bodies.lineage_ids(answer))
    pool.requests = api.requests
    pool.seconds = time.monotonic() - started
    return pool


async def _health(api: _Api) -> dict[str, Any]:
    status, body = await api.send("GET", "/health")
    if status != 200 or not isinstance(body, dict) or body.get("status") != "ok":
        raise DiscoveryFailed(f"GET /health: HTTP {status}: the service is not healthy: {str(body)[:300]}")
    return body


async def _msd_seeds(api: _Api, start: str, end: str) -> list[dict[str, Any]]:
    answer = await api.post_ok("/api/trace/seed-resolve", bodies.msd_range(start, end))
    return [s for s in answer.get("seeds", []) if isinstance(s, dict) and s.get("container_id")]


async def _probe_window(api: _Api, today: date) -> tuple[tuple[str, str], list[dict[str, Any]]]:
    """The latest window of the longest allowed range that has MSD lots."""
    days = DEFAULT_MAX_RANGE_DAYS
    end = today
    windows = 0
    while windows < MAX_WINDOWS_BACK:
        start = end - timedelta(days=days - 1)
        status, answer = await api.send("POST", "/api/trace/seed-resolve", bodies.msd_range(start.isoformat(),
                                                                                             end.isoformat()))
        if status == 400 and isinstance(answer, dict):
            # The server allows shorter ranges (TRACE_MSD_MAX_RANGE_DAYS): its message says how long.
            found = _MAX_DAYS_MESSAGE.search(str((answer.get("error") or {}).get("message", "")))
            if found and int(found.group(1)) < days:
                days = int(found.group(1))
                continue
        if status != 200:
            raise DiscoveryFailed(f"POST /api/trace/seed-resolve (MSD probe): HTTP {status}: {_error_text(answer)}")
        seeds = [s for s in answer.get("seeds", []) if isinstance(s, dict) and s.get("container_id")]
        if seeds:
            return (start.isoformat(), end.isoformat()), seeds
        end = start - timedelta(days=1)
        windows += 1
    raise DiscoveryFailed(
        f"no MSD lots at the default station in the {MAX_WINDOWS_BACK} windows of {days} days before {today}; "
        "give --msd-range START:END"
    )


async def _span_with_data(api: _Api, window: tuple[str, str]) -> tuple[str, str]:
    """From the first to the last 30-day slice of the window that has lots."""
    first, last = date.fromisoformat(window[0]), date.fromisoformat(window[1])
    active: list[tuple[date, date]] = []
    start = first
    while start <= last:
        end = min(last, start + timedelta(days=SLICE_DAYS - 1))
        if await _msd_seeds(api, start.isoformat(), end.isoformat()):
            active.append((start, end))
        start = end + timedelta(days=1)
    if not active:  # pragma: no cover - the whole window had lots, so some slice has
        return window
    return active[0][0].isoformat(), active[-1][1].isoformat()


async def _wafer_lots(api: _Api, ids: list[str]) -> list[str]:
    if not ids:
        return []
    answer = await api.post_ok("/api/trace/lineage", bodies.lineage("mid_section_defect", ids))
    roots = answer.get("seed_roots") or {}
    return sorted({r for r in roots.values() if isinstance(r, str) and r})


async def _work_orders(api: _Api, ids: list[str]) -> list[str]:
    """PJ_WORKORDER values of a few lots' history (none when the column is absent or the answer is a job)."""
    if not ids:
        return []
    status, answer = await api.send("POST", "/api/trace/events", bodies.events("query_tool", ids, ids, ["history"]))
    if status == 202 and isinstance(answer, dict) and isinstance(answer.get("status_url"), str):
        # A server whose threshold is below 20 ids made a job of it: it is not needed, cancel it.
        await api.send("DELETE", answer["status_url"])
    if status != 200 or not isinstance(answer, dict):
        return []
    records = ((answer.get("results") or {}).get("history") or {}).get("data") or []
    return sorted({r["PJ_WORKORDER"] for r in records if isinstance(r, dict) and r.get("PJ_WORKORDER")})
