"""The job child's side of a result: records → chunks of at most chunk_size → Redis.

Each chunk is encoded once (ujson) and stored under its own key in the same MULTI that
moves the index, so a reader never sees an index pointing at a missing chunk; then the
job's live readers are notified. Nothing accumulates across chunks: the writer holds at
most one chunk plus one fetch batch of records.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Protocol

import ujson

from sanic_trace.results.layout import INDEX_SUFFIX, chunk_suffix


class JobDataSink(Protocol):
    """What the writer needs of a job context (jobs.JobContext provides it)."""

    redis: Any

    def set_data(self, suffix: str, value: bytes | str, pipe: Any = None) -> str: ...

    def hset_data(self, suffix: str, mapping: dict[str, Any], pipe: Any = None) -> str: ...

    def notify(self, event: str, pipe: Any = None, **fields: Any) -> None: ...


class ChunkWriter:
    def __init__(self, sink: JobDataSink, chunk_size: int) -> None:
        self.sink = sink
        self.chunk_size = chunk_size
        self.total_records = 0

    def begin(self, profile: str, domains: list[str], cid_count: int) -> None:
        meta = {"profile": profile, "domains": domains, "cid_count": cid_count, "chunk_size": self.chunk_size}
        self.sink.hset_data(INDEX_SUFFIX, {"meta": ujson.dumps(meta, ensure_ascii=False), "total_records": 0})

    def write_domain(
        self,
        domain: str,
        batches: Iterable[list[dict[str, Any]]],
        after_chunk: Callable[[], None] | None = None,
    ) -> int:
        """Store a domain's record batches as chunks; return its record count.

        `after_chunk()` runs after every stored chunk (the job's cancel/memory check).
        """
        pending: list[dict[str, Any]] = []
        chunks = 0
        records = 0
        for batch in batches:
            # Fill the pending chunk from the batch without re-slicing the rest of it each time.
            start = 0
            while len(pending) + len(batch) - start >= self.chunk_size:
                take = self.chunk_size - len(pending)
                pending.extend(batch[start : start + take])
                start += take
                records += len(pending)
                self._store(domain, chunks, pending, records)
                pending = []
                chunks += 1
                if after_chunk is not None:
                    after_chunk()
            pending.extend(batch[start:] if start else batch)
        if pending:
            records += len(pending)
            self._store(domain, chunks, pending, records)
            chunks += 1
            if after_chunk is not None:
                after_chunk()
        pipe = self.sink.redis.pipeline(transaction=True)
        done = {f"{domain}:done": 1, f"{domain}:chunks": chunks, f"{domain}:records": records}
        self.sink.hset_data(INDEX_SUFFIX, done, pipe=pipe)
        self.sink.notify("domain_end", pipe=pipe, domain=domain, records=records)
        pipe.execute()
        return records

    def store_aggregation(self, suffix: str, ready_field: str, encoded: bytes) -> None:
        """Store the MSD aggregation (encoded once) and mark the index, in one MULTI; notify readers."""
        pipe = self.sink.redis.pipeline(transaction=True)
        self.sink.set_data(suffix, encoded, pipe=pipe)
        self.sink.hset_data(INDEX_SUFFIX, {ready_field: 1}, pipe=pipe)
        self.sink.notify("aggregation", pipe=pipe)
        pipe.execute()

    def _store(self, domain: str, n: int, chunk: list[dict[str, Any]], domain_records: int) -> None:
        encoded = ujson.dumps(chunk, ensure_ascii=False).encode()
        self.total_records += len(chunk)
        pipe = self.sink.redis.pipeline(transaction=True)
        self.sink.set_data(chunk_suffix(domain, n), encoded, pipe=pipe)
        self.sink.hset_data(
            INDEX_SUFFIX,
            {f"{domain}:chunks": n + 1, f"{domain}:records": domain_records, "total_records": self.total_records},
            pipe=pipe,
        )
        self.sink.notify("chunk", pipe=pipe, domain=domain, n=n)
        pipe.execute()
