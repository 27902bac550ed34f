"""Stage 1, seed-resolve: what the user typed (or a station and dates) → the seed containers.

A seed is `{"container_id", "container_name", "lot_id"}`. `lot_id` is the lot id people type,
i.e. the container's CONTAINERNAME (so it equals `container_name`; it is NULL only for a
finished lot found through a serial number whose container row is missing).

Seeds are built from fetchmany batches of IN-batched queries; the only thing held is the
seed list itself, which is the response.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from contextlib import closing
from datetime import date, datetime, time, timedelta
from typing import Any

from sanic_trace.db.batching import bind_in_list, in_batches
from sanic_trace.db.source import DataSource
from sanic_trace.trace.params import (
    DIRECTIONS,
    check_params,
    check_profile,
    choice,
    invalid,
    names_list,
    string_list,
    text,
)
from sanic_trace.trace.queries import WORKCENTERS_BIND, WORKCENTERS_PAD, column_index, stream_in_batch
from sanic_trace.trace.stations import Detection, read_station_groups, resolve_detection

FORWARD_RESOLVE_TYPES = ("lot_id", "work_order", "wafer_lot")
REVERSE_RESOLVE_TYPES = ("serial_number", "gd_work_order", "gd_lot_id")
MSD_MODES = ("date_range", "container")
DEFAULT_MSD_STATION = "測試"

# resolve_type → the SQL file that maps an input value (MATCH_VALUE) to containers.
RESOLVE_SQL = {
    "lot_id": "seeds_lot_id",
    "work_order": "seeds_work_order",
    "wafer_lot": "seeds_wafer_lot",
    "serial_number": "seeds_serial_number",
    "gd_work_order": "seeds_gd_work_order",
    "gd_lot_id": "seeds_gd_lot_id",
}
# Input types that take wildcards (`*`, which the dashboard sends as `%`), and their pattern query.
PATTERN_SQL = {
    "lot_id": "seeds_lot_id_like",
    "work_order": "seeds_work_order_like",
    "wafer_lot": "seeds_wafer_lot_like",
}
# A serial number that names no merge is tried as a container name, then as a wafer lot.
SERIAL_FALLBACKS = ("lot_id", "wafer_lot")
# The dashboard's caps: values per request, work orders per request (each is thousands of lots),
# and containers one wildcard value may match.
MAX_VALUES = 50
MAX_WORK_ORDERS = 10
MAX_PATTERN_MATCHES = 1000
WILDCARDS = ("*", "%")
MSD_STATION_SQL = "seeds_msd_station"

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def validate_seed_request(profile: str, params: Mapping[str, Any] | None, msd_max_range_days: int) -> dict[str, Any]:
    """Check a seed-resolve request without the database; return its normalised params.

    The result holds only the keys the profile uses, with defaults filled in, so equal
    requests normalise equal (the HTTP layer keys its cache on it). Idempotent.
    """
    profile = check_profile(profile)
    params = check_params(params)
    if profile == "query_tool":
        return _id_request(params, FORWARD_RESOLVE_TYPES)
    if profile == "query_tool_reverse":
        return _id_request(params, REVERSE_RESOLVE_TYPES)
    return _msd_request(params, msd_max_range_days)


def cache_material(profile: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """The part of normalised params that decides the seeds (MSD loss_reasons and direction do not)."""
    return {k: v for k, v in params.items() if k not in ("loss_reasons", "direction")}


def resolve_seeds(
    source: DataSource,
    profile: str,
    params: Mapping[str, Any] | None,
    *,
    msd_max_range_days: int,
) -> dict[str, Any]:
    """`{"seeds": [...], "seed_count": N, "not_found": [input values that matched nothing]}`.

    Seeds come in input order (per value: by name, then id), each container once. For an
    MSD date range, seeds are ordered by container id and `not_found` is empty (there are
    no typed values); an unknown station is a 400 that lists the known station groups.
    """
    request = validate_seed_request(profile, params, msd_max_range_days)
    if request.get("mode") == "date_range":
        detection = resolve_detection(request["station"], read_station_groups(source))
        seeds = _station_seeds(source, request, detection)
        return {"seeds": seeds, "seed_count": len(seeds), "not_found": []}
    return _resolve_values(source, request["resolve_type"], request["values"])


def _seed(container_id: str, name: str | None) -> dict[str, Any]:
    return {"container_id": container_id, "container_name": name, "lot_id": name}


def _id_request(params: Mapping[str, Any], resolve_types: tuple[str, ...]) -> dict[str, Any]:
    kind = params.get("resolve_type")
    if kind is None:
        kind = params.get("input_type")  # the newer dashboard's name for it
    elif params.get("input_type") not in (None, kind):
        invalid(f"params.input_type {params['input_type']!r} contradicts params.resolve_type {kind!r}")
    resolve_type = choice(kind, "params.resolve_type", resolve_types)
    values = string_list(params.get("values"), "params.values", required=True)
    if len(values) > MAX_VALUES:
        invalid(f"params.values has {len(values)} values; at most {MAX_VALUES} are accepted")
    if resolve_type in ("work_order", "gd_work_order") and len(values) > MAX_WORK_ORDERS:
        invalid(f"params.values has {len(values)} work orders; at most {MAX_WORK_ORDERS} are accepted")
    if resolve_type in PATTERN_SQL:
        for value in values:
            if is_pattern(value) and not value.strip("*%"):
                invalid(f"params.values {value!r} is only wildcards; a pattern needs other characters too")
    return {"resolve_type": resolve_type, "values": values}


def is_pattern(value: str) -> bool:
    return any(w in value for w in WILDCARDS)


def like_pattern(value: str) -> str:
    """A typed wildcard value as a LIKE pattern with '\\' as escape: `*`/`%` match anything, all else itself."""
    escaped = value.replace("\\", "\\\\").replace("_", "\\_")
    return escaped.replace("*", "%")


def _msd_request(params: Mapping[str, Any], max_days: int) -> dict[str, Any]:
    mode = choice(params.get("mode"), "params.mode", MSD_MODES, default="date_range")
    common = msd_common_params(params)
    if mode == "container":
        return {"mode": mode, **_id_request(params, FORWARD_RESOLVE_TYPES), **common}
    start, end, field = _date_range(params)
    if end < start:
        invalid(f"{field} must not end before it starts ({end.isoformat()} is before {start.isoformat()})")
    days = (end - start).days + 1
    if days > max_days:
        invalid(f"{field} covers {days} days; at most {max_days} are allowed")
    return {
        "mode": mode,
        "start_date": start.isoformat(),
        "end_date": end.isoformat(),
        **common,
    }


def msd_common_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """The MSD params of either mode: station, loss-reason filter, direction."""
    return {
        "station": text(params.get("station"), "params.station", DEFAULT_MSD_STATION),
        "loss_reasons": names_list(params.get("loss_reasons"), "params.loss_reasons"),
        "direction": choice(params.get("direction"), "params.direction", DIRECTIONS, default="backward"),
    }


def _date_range(params: Mapping[str, Any]) -> tuple[date, date, str]:
    """(start, end, the field a range error is about) from date_range or start_date/end_date."""
    if params.get("date_range") is not None:
        if params.get("start_date") is not None or params.get("end_date") is not None:
            invalid("params.date_range cannot be combined with params.start_date / params.end_date")
        pair = params["date_range"]
        if not isinstance(pair, list) or len(pair) != 2:
            invalid("params.date_range must be a list [start_date, end_date] of YYYY-MM-DD dates")
        return _date(pair[0], "params.date_range[0]"), _date(pair[1], "params.date_range[1]"), "params.date_range"
    start = _date(params.get("start_date"), "params.start_date")
    end = _date(params.get("end_date"), "params.end_date")
    return start, end, "params.end_date"


def _date(value: Any, field: str) -> date:
    if value is None:
        invalid(f"{field} is required (YYYY-MM-DD)")
    # fromisoformat alone also takes '20250101' and week dates: only the documented shape passes.
    if not isinstance(value, str) or not _DATE.fullmatch(value.strip()):
        invalid(f"{field} must be a date as YYYY-MM-DD; got {value!r}")
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        invalid(f"{field} is not a valid date: {value!r}")


def _resolve_values(source: DataSource, resolve_type: str, values: list[str]) -> dict[str, Any]:
    patterns = [v for v in values if resolve_type in PATTERN_SQL and is_pattern(v)]
    exact = [v for v in values if v not in patterns]
    matches = _exact_matches(source, resolve_type, exact)
    if resolve_type == "serial_number":
        for fallback in SERIAL_FALLBACKS:
            missing = [v for v in exact if v not in matches]
            if missing:
                matches.update(_exact_matches(source, fallback, missing))
    for value in patterns:
        matches[value] = _pattern_matches(source, resolve_type, value)
    seeds: list[dict[str, Any]] = []
    seen: set[str] = set()
    not_found: list[str] = []
    for value in values:
        found = matches.get(value)
        if not found:
            not_found.append(value)
            continue
        for container_id, name in found:
            if container_id not in seen:
                seen.add(container_id)
                seeds.append(_seed(container_id, name))
    return {"seeds": seeds, "seed_count": len(seeds), "not_found": not_found}


def _exact_matches(source: DataSource, resolve_type: str, values: list[str]) -> dict[str, list[tuple[str, str | None]]]:
    sql = source.sql.load(RESOLVE_SQL[resolve_type])
    matches: dict[str, list[tuple[str, str | None]]] = {}
    for batch in in_batches(values, source.in_batch_size):
        for columns, rows in stream_in_batch(source, sql, batch):
            i_value, i_id, i_name = column_index(columns, "MATCH_VALUE", "CONTAINERID", "CONTAINERNAME")
            for row in rows:
                matches.setdefault(row[i_value], []).append((row[i_id], row[i_name]))
    return matches


def _pattern_matches(source: DataSource, resolve_type: str, value: str) -> list[tuple[str, str | None]]:
    found: list[tuple[str, str | None]] = []
    stream = source.stream(source.sql.load(PATTERN_SQL[resolve_type]), {"pattern": like_pattern(value)})
    with closing(stream):
        for columns, rows in stream:
            i_id, i_name = column_index(columns, "CONTAINERID", "CONTAINERNAME")
            found.extend((row[i_id], row[i_name]) for row in rows)
            if len(found) > MAX_PATTERN_MATCHES:
                # Stopped here, not read to the end: the cursor is closed with the stream.
                invalid(
                    f"params.values {value!r} matches more than {MAX_PATTERN_MATCHES} containers; "
                    "narrow the pattern"
                )
    return found


def _station_seeds(source: DataSource, request: Mapping[str, Any], detection: Detection) -> list[dict[str, Any]]:
    start = datetime.combine(date.fromisoformat(request["start_date"]), time())
    # The end date is inclusive: the window runs to the next midnight, exclusive.
    end = datetime.combine(date.fromisoformat(request["end_date"]), time()) + timedelta(days=1)
    sql, binds = bind_in_list(
        source.sql.load(MSD_STATION_SQL), WORKCENTERS_BIND, detection.workcenters, pad_to=WORKCENTERS_PAD
    )
    binds.update({"start_time": start, "end_time": end})
    seeds: list[dict[str, Any]] = []
    for columns, rows in source.stream(sql, binds):
        i_id, i_name = column_index(columns, "CONTAINERID", "CONTAINERNAME")
        seeds.extend(_seed(row[i_id], row[i_name]) for row in rows)
    return seeds
