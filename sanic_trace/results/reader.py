"""The server's side of a job result: live NDJSON streams, whole bodies, and O(limit) pages.

Chunks are sent as stored (spliced into their NDJSON line or into the body), never parsed
and re-encoded — except by pages, which must cut a window out of at most a few chunks.
A live stream waits on the job's notifications (pub/sub) with a timeout, re-reading the
index after every wake-up: no busy loop, and no missed chunk if a message is dropped.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
import ujson

from jobs import ACTIVE, AsyncJobClient, JobKeys, Status
from sanic_trace.msd import storage
from sanic_trace.results import ndjson
from sanic_trace.results.envelope import EventsEnvelope, array_content
from sanic_trace.results.layout import INDEX_SUFFIX, ResultIndex, chunk_suffix, chunks_for_window
from sanic_trace.trace.params import MSD


class ResultExpired(Exception):
    """A chunk the index names is gone (its TTL ran out)."""


@dataclass
class StreamPosition:
    """Where a (resumed) stream starts: at chunk `from_chunk` of `domain`, or at the beginning.

    Clients name it `?from_batch=`: the `batch` of an NDJSON records line is its chunk number.
    """

    domain: str | None = None
    from_chunk: int = 0


async def read_index(client: aioredis.Redis, keys: JobKeys) -> ResultIndex | None:
    return ResultIndex.parse(await client.hgetall(keys.data(INDEX_SUFFIX)))


def chunk_count(index: ResultIndex, domain: str, n: int) -> int:
    """Records in stored chunk n (n < chunks), from the index alone.

    Every chunk but a domain's last holds chunk_size records. The last one may be short, and
    the index says so as soon as it is stored: `chunks` and `records` move in the same MULTI,
    while `done` follows in a later write — so the count comes from `records`, never from `done`.
    """
    return min(index.chunk_size, index.per_domain[domain].records - n * index.chunk_size)


async def get_chunk(client: aioredis.Redis, keys: JobKeys, domain: str, n: int) -> bytes:
    chunk = await client.get(keys.data(chunk_suffix(domain, n)))
    if chunk is None:
        raise ResultExpired(f"chunk {n} of {domain} has expired")
    return chunk


class _KeepAlive:
    """When a stream last sent a line, and how long it may wait before a keep-alive is due.

    Time-based, not "a wait that timed out": a running job's progress notifications wake the
    reader several times a second, and a domain that yields no chunk for minutes (few records
    over many IN-batches) must still send something every interval.
    """

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.sent_at = time.monotonic()

    def sent(self) -> None:
        self.sent_at = time.monotonic()

    def timeout(self) -> float:
        return max(0.01, self.sent_at + self.interval - time.monotonic())

    def due(self) -> bool:
        return time.monotonic() - self.sent_at >= self.interval


async def live_lines(
    client: aioredis.Redis,
    prefix: str,
    job_id: str,
    position: StreamPosition,
    keepalive_seconds: float,
) -> AsyncIterator[bytes]:
    """NDJSON lines of a job, from queued to its end; follows the job while it runs.

    While nothing new lands, a progress line goes out every `keepalive_seconds` (and one at once
    when the job has written nothing yet, so that the response head is not held back).
    """
    keepalive = _KeepAlive(keepalive_seconds)
    lines = _live_lines(client, prefix, job_id, position, keepalive)
    try:
        async for line in lines:
            yield line
            keepalive.sent()
    finally:
        await lines.aclose()


async def _live_lines(
    client: aioredis.Redis,
    prefix: str,
    job_id: str,
    position: StreamPosition,
    keepalive: _KeepAlive,
) -> AsyncIterator[bytes]:
    keys = JobKeys(prefix, job_id)
    jobs = AsyncJobClient(client, prefix)
    async with jobs.events(job_id) as events:
        # Subscribed first, then read state: nothing that lands from here on can be missed.
        status = await jobs.status(job_id)
        index = await read_index(client, keys)
        if index is None and status is not None and status["status"] in ACTIVE:
            # Nothing to send yet (queued, or the child is starting): a keep-alive now sends the
            # response head at once, not a keep-alive interval later.
            yield ndjson.progress(status["status"], status.get("progress"))
        while index is None:
            if status is None:
                yield ndjson.error("JOB_NOT_FOUND", "the job expired")
                return
            if status["status"] not in ACTIVE:
                yield _ended_error(status)
                return
            await events.wait(keepalive.timeout())
            if keepalive.due():
                yield ndjson.progress(status["status"], status.get("progress"))
            status = await jobs.status(job_id)
            index = await read_index(client, keys)

        domains = index.domains
        if position.domain is not None and position.domain not in domains:
            yield ndjson.error("INVALID_PARAMS", f"domain {position.domain!r} is not one of this job's {domains}")
            return
        yield ndjson.meta(job_id, index.profile, domains, index.cid_count)
        start = domains.index(position.domain) if position.domain else 0
        for d_index, domain in enumerate(domains[start:], start=start):
            resumed = d_index == start and position.domain is not None
            n = position.from_chunk if resumed else 0
            if n == 0:
                yield ndjson.domain_start(domain)
            while True:
                progress = index.per_domain[domain]
                while n < progress.chunks:
                    try:
                        chunk = await get_chunk(client, keys, domain, n)
                    except ResultExpired as exc:
                        # A cancel deletes the job's chunks: say why they are gone, not just that they are.
                        yield await _missing_chunk_error(client, prefix, job_id, str(exc))
                        return
                    yield ndjson.records(domain, n, chunk_count(index, domain, n), chunk)
                    n += 1
                if progress.done:
                    yield ndjson.domain_end(domain, progress.records)
                    break
                status = await jobs.status(job_id)
                if status is None or status["status"] not in ACTIVE:
                    # Ended without finishing this domain; read the index once more in case the
                    # last chunks landed between our read and the end.
                    index = await read_index(client, keys) or index
                    if index.per_domain[domain].chunks > n or index.per_domain[domain].done:
                        continue
                    yield _ended_error(status) if status else ndjson.error("JOB_NOT_FOUND", "the job expired")
                    return
                await events.wait(keepalive.timeout())
                if keepalive.due():
                    yield ndjson.progress(status["status"], status.get("progress"))
                index = await read_index(client, keys) or index

        # Every domain is complete; the job may still be writing its end state.
        status = await jobs.status(job_id)
        deadline = time.monotonic() + 60
        while status is not None and status["status"] in ACTIVE and time.monotonic() < deadline:
            await events.wait(min(keepalive.timeout(), 1.0))
            if keepalive.due():
                yield ndjson.progress(status["status"], status.get("progress"))
            status = await jobs.status(job_id)
        if status is None or status["status"] != Status.FINISHED:
            yield _ended_error(status) if status else ndjson.error("JOB_NOT_FOUND", "the job expired")
            return
        if index.profile == MSD:
            # After the last domain, before complete: the analysis, as the job stored it.
            try:
                encoded = await get_aggregation(client, prefix, job_id)
            except ResultExpired as exc:
                yield ndjson.error("JOB_RESULT_EXPIRED", str(exc))
                return
            yield ndjson.aggregation(job_id, encoded)
        yield ndjson.complete(index.total_records, status.get("elapsed_seconds"))


async def _missing_chunk_error(client: aioredis.Redis, prefix: str, job_id: str, message: str) -> bytes:
    status = await AsyncJobClient(client, prefix).status(job_id)
    if status is None:
        return ndjson.error("JOB_NOT_FOUND", "the job expired")
    if status["status"] in (Status.CANCELLED, Status.FAILED):
        return _ended_error(status)
    return ndjson.error("JOB_RESULT_EXPIRED", message)


def _ended_error(status: dict[str, Any]) -> bytes:
    if status["status"] == Status.CANCELLED:
        return ndjson.error("JOB_CANCELLED", "the job was cancelled")
    error = status.get("error") or {}
    if status["status"] == Status.FINISHED:
        # A finished job always wrote its index: if it is gone, it expired (or was deleted).
        return ndjson.error("JOB_RESULT_EXPIRED", "the result of this job has expired")
    return ndjson.error(error.get("code", "JOB_FAILED"), error.get("message", "the job failed"))


async def get_aggregation(client: aioredis.Redis, prefix: str, job_id: str) -> bytes:
    """The encoded aggregation an MSD job stored with its result."""
    encoded = await client.get(storage.aggregation_key(prefix, job_id))
    if encoded is None:
        raise ResultExpired("the aggregation of this job has expired")
    return encoded


async def whole_body(client: aioredis.Redis, keys: JobKeys, index: ResultIndex) -> AsyncIterator[bytes]:
    """The inline path's body for the same request, spliced from the stored chunks.

    Written through the same EventsEnvelope as the inline path, so the bytes are the same. Raises
    ResultExpired when a chunk is gone (the caller has sent the status line by then: it cuts).
    """
    envelope = EventsEnvelope()
    yield envelope.head()
    for domain in index.domains:
        progress = index.per_domain[domain]
        yield envelope.open_domain(domain)
        for n in range(progress.chunks):
            yield envelope.items(array_content(await get_chunk(client, keys, domain, n)))
        yield envelope.close_domain(progress.records)
    aggregation = await get_aggregation(client, keys.prefix, keys.job_id) if index.profile == MSD else None
    yield envelope.end(aggregation=aggregation)


async def page(
    client: aioredis.Redis, keys: JobKeys, index: ResultIndex, domain: str, offset: int, limit: int
) -> dict[str, Any]:
    """Records [offset, offset + limit) of a domain, reading only the chunks that cover them."""
    total = index.per_domain[domain].records
    wanted = chunks_for_window(offset, limit, index.chunk_size, total)
    data: list[Any] = []
    if wanted:
        async with client.pipeline(transaction=False) as pipe:
            for n in wanted:
                pipe.get(keys.data(chunk_suffix(domain, n)))
            chunks = await pipe.execute()
        if any(c is None for c in chunks):
            raise ResultExpired(f"chunks of {domain} have expired")
        start = offset - wanted.start * index.chunk_size
        for chunk in chunks:
            data.extend(ujson.loads(chunk))
        data = data[start : start + limit]
    return {"domain": domain, "offset": offset, "limit": limit, "total": total, "data": data}
