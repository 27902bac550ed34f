"""A cProfile of the job function, to say where the job path's time goes.

The pool's child cannot be started under a profiler without changing `jobs/`, so the profile
runs the very same function (`sanic_trace.trace.job:run_events`) with a real JobContext and
Redis in a spawn child of the bench. Its job hash is never `started`, so progress writes are
skipped (the pool's PROGRESS script writes only for a started job); everything else — queries,
record building, ujson, chunk writes and notifications — runs as in the pool.
"""

from __future__ import annotations

import cProfile
import pstats
import time
from typing import Any

import redis

from jobs import JobContext, PoolConfig, new_job_id

# (category, test on "file:function") in order; the first that matches takes the entry.
CATEGORIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("database fetch (driver + type converters)", ("sqlite3.", "sqlite_source.py", "fromisoformat", "oracledb")),
    ("JSON encoding (ujson)", ("ujson",)),
    ("Redis round trips", ("/redis/", "_socket.socket", "select.", "selectors.py")),
    ("record building", ("trace/records.py", "db/values.py", "isoformat")),
)
OTHER = "other (the job's own Python: batching, chunking, progress)"


def _category(key: str) -> str:
    for name, needles in CATEGORIES:
        if any(needle in key for needle in needles):
            return name
    return OTHER


def profile_events_job(task: dict[str, Any]) -> dict[str, Any]:
    """Spawn target: run_events(ctx, payload) under cProfile; the top functions and time per category."""
    from sanic_trace.trace.job import run_events

    config: PoolConfig = task["config"]
    client = redis.Redis.from_url(config.redis_url)
    ctx = JobContext(config, new_job_id(), client)
    profiler = cProfile.Profile()
    started = time.perf_counter()
    profiler.enable()
    try:
        result = run_events(ctx, task["payload"])
    finally:
        profiler.disable()
        client.close()
    wall = time.perf_counter() - started
    stats = pstats.Stats(profiler)
    rows = []
    per_category: dict[str, float] = {}
    for (filename, line, function), (_cc, calls, own, cumulative, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        key = f"{filename}:{function}"
        per_category[_category(key)] = per_category.get(_category(key), 0.0) + own
        name = f"{_short(filename)}:{line}:{function}"
        rows.append({"function": name, "calls": calls, "own_s": own, "cum_s": cumulative})
    rows.sort(key=lambda row: row["own_s"], reverse=True)
    total_own = sum(per_category.values()) or 1.0
    return {
        "job_id": ctx.job_id,
        "records": result["total_records"],
        "wall_s_under_profiler": wall,
        "categories": {
            name: {"own_s": round(seconds, 3), "share": round(seconds / total_own, 3)}
            for name, seconds in sorted(per_category.items(), key=lambda item: item[1], reverse=True)
        },
        "top": [
            {**row, "own_s": round(row["own_s"], 3), "cum_s": round(row["cum_s"], 3)} for row in rows[: task["top"]]
        ],
    }


def _short(filename: str) -> str:
    for marker in ("site-packages/", "sanic_trace/", "jobs/", "lib/python"):
        if marker in filename:
            return filename[filename.index(marker) :]
    return filename
