"""The baseline: the seed's accumulate-then-store design, reproduced with this project's queries.

What ran out of memory in production (see shared DOMAIN.md, "The incident"): per domain, every
IN-batch was read with `fetchall`, each row became a dict, everything was accumulated, grouped
by CONTAINERID into a dict of lists and flattened back into one list, and the route held those
copies of every domain until the whole result was stored. Only then was the result written to
Redis, in chunks. The same SQL files and the same record building as the job path are used, so
the difference measured is the design, not the code around it.

It is a conservative copy: the seed also went through a pandas DataFrame, and here the grouped
and flattened lists share the record dicts instead of holding copies of them. The real design
used more memory than this, not less.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import redis
import ujson

from sanic_trace.db.batching import in_batches
from sanic_trace.db.source import DataSource, open_source
from sanic_trace.trace.events import DOMAIN_SPECS
from sanic_trace.trace.queries import stream_in_batch
from sanic_trace.trace.records import build_records


def fetch_all(source: DataSource, sql: str, batch: Sequence[str]) -> tuple[list[str], list[Any]]:
    """Every row of one IN-batch in one list, as the seed's cursor.fetchall() returned them.

    The service reads only with fetchmany (that is the point of the project) and offers no
    fetchall: the rows come through its public stream (`stream_in_batch` over
    `DataSource.stream`, with the same ATTACH, type converters and timeouts as the job path)
    and are gathered here into the one list fetchall would have built. Only the last
    fetchmany batch exists beside that list, so the peak is fetchall's.
    """
    columns: list[str] = []
    rows: list[Any] = []
    for batch_columns, part in stream_in_batch(source, sql, batch):
        columns = batch_columns
        rows.extend(part)
    return columns, rows


def run_baseline(task: dict[str, Any]) -> dict[str, Any]:
    """Read everything, group, flatten, then store.

    `task` is a job payload plus settings, redis_url, key_prefix, ttl_s.
    """
    started = time.perf_counter()
    source = open_source(task["settings"])
    held: list[Any] = []  # every copy the route kept alive until the end
    flattened: dict[str, list[dict[str, Any]]] = {}
    try:
        for domain in task["domains"]:
            spec = DOMAIN_SPECS[domain]
            sql = source.sql.load(spec.sql_name)
            accumulated: list[dict[str, Any]] = []
            for batch in in_batches(task["container_ids"], source.in_batch_size):
                columns, rows = fetch_all(source, sql, batch)
                accumulated.extend(build_records(columns, rows, spec.derive))
            grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
            for record in accumulated:
                grouped[record["CONTAINERID"]].append(record)
            flattened[domain] = [record for records in grouped.values() for record in records]
            held.append((accumulated, grouped))
    finally:
        source.close()
    fetched = time.perf_counter()

    client = redis.Redis.from_url(task["redis_url"])
    chunk_size = task["settings"].stream_batch_size
    chunks = 0
    try:
        for domain, records in flattened.items():
            for n, start in enumerate(range(0, len(records), chunk_size)):
                encoded = ujson.dumps(records[start : start + chunk_size], ensure_ascii=False).encode()
                client.set(f"{task['key_prefix']}:chunk:{domain}:{n}", encoded, ex=int(task["ttl_s"]))
                chunks += 1
    finally:
        client.close()
    counts = {domain: len(records) for domain, records in flattened.items()}
    return {
        "domains": counts,
        "total_records": sum(counts.values()),
        "chunks": chunks,
        "work_s": time.perf_counter() - started,
        "fetch_s": fetched - started,
        "store_s": time.perf_counter() - fetched,
    }
