"""The floor: the same queries over the same IN-batches, fetched with fetchmany and only counted.

It is what reading the data costs on this database and driver, with no record building,
no JSON and no Redis: the job path can approach it, never beat it.
"""

from __future__ import annotations

import time
from typing import Any

from sanic_trace.db.batching import in_batches
from sanic_trace.db.source import open_source
from sanic_trace.trace.events import DOMAIN_SPECS
from sanic_trace.trace.queries import stream_in_batch


def run_floor(task: dict[str, Any]) -> dict[str, Any]:
    """Count the rows of each domain; `task` is a trace job payload plus the `settings` to read with."""
    started = time.perf_counter()
    source = open_source(task["settings"])
    counts: dict[str, int] = {}
    seconds: dict[str, float] = {}
    try:
        for domain in task["domains"]:
            domain_started = time.perf_counter()
            sql = source.sql.load(DOMAIN_SPECS[domain].sql_name)
            rows_seen = 0
            for batch in in_batches(task["container_ids"], source.in_batch_size):
                stream = stream_in_batch(source, sql, batch)
                for _columns, rows in stream:
                    rows_seen += len(rows)
            counts[domain] = rows_seen
            seconds[domain] = time.perf_counter() - domain_started
    finally:
        source.close()
    return {
        "domains": counts,
        "domain_s": seconds,
        "total_records": sum(counts.values()),
        "work_s": time.perf_counter() - started,
    }
