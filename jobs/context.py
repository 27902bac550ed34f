"""JobContext: what a job function gets inside its child process.

    def run(ctx: JobContext, payload: dict) -> dict | None:
        for n, batch in enumerate(batches(payload)):
            ctx.check()                                   # cancelled? over the soft RSS limit?
            ctx.set_data(f"chunk:history:{n}", encode(batch))
            ctx.progress(phase="history", done=n + 1, records=total)
        return {"chunks": n + 1}

Data keys: write them through set_data / hset_data (or register your own writes with track),
so the pool knows them — it re-applies the job TTL to all of them when the job ends and
deletes them when it is cancelled. Each expires after ctx.ttl (job TTL + job timeout), so even a
job whose supervisor vanished cannot leave them behind for long.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import redis

from jobs.config import PoolConfig
from jobs.errors import JobCancelled, JobMemoryLimit
from jobs.memory import own_rss_mb
from jobs.plan import Call, SyncRunner, apply, multi, single
from jobs.status import Status
from jobs.store import JobStore

# Progress reaches Redis at most this often; the latest value wins and flush() sends the last.
PROGRESS_INTERVAL = 0.25
# check() asks Redis about a cancel at most this often, and psutil about RSS at most this often.
CANCEL_POLL_INTERVAL = 0.2
RSS_POLL_INTERVAL = 0.05

_PROGRESS_FIELDS = ("phase", "done", "total", "records")


class JobContext:
    """Per-job handle: id, a Redis client of the child's own, keys, progress, cancel/memory checks."""

    def __init__(self, config: PoolConfig, job_id: str, client: redis.Redis) -> None:
        self.config = config
        self.job_id = job_id
        self.redis = client
        self._store = JobStore(config.prefix)
        self._run = SyncRunner(client)
        self.keys = self._store.job_keys(job_id)
        # TTL (seconds) for every data key the job writes; the pool shortens it to the job TTL at the end.
        self.ttl = config.data_ttl_seconds
        self._pending: dict[str, Any] = {}
        self._last_progress = 0.0
        self._last_cancel_poll = 0.0
        self._last_rss_poll = 0.0
        self._cancelled = False

    # -- progress ---------------------------------------------------------------------------

    def progress(
        self, phase: str | None = None, done: int | None = None, total: int | None = None, records: int | None = None
    ) -> None:
        """Record progress; written at most ~4 times a second (call it as often as you like)."""
        for name, value in zip(_PROGRESS_FIELDS, (phase, done, total, records), strict=True):
            if value is not None:
                self._pending[name] = value
        if self._pending and time.monotonic() - self._last_progress >= PROGRESS_INTERVAL:
            self.flush()

    def flush(self) -> None:
        """Write pending progress now (the pool calls it when the job function returns)."""
        if not self._pending:
            return
        fields = dict(self._pending)
        self._pending.clear()
        self._last_progress = time.monotonic()
        # The script answers with the job's status: a cancel is noticed without a read of its own.
        if self._run(self._store.progress(self.job_id, fields)) == Status.CANCELLED:
            self._cancelled = True

    # -- guards -----------------------------------------------------------------------------

    def check(self) -> None:
        """Raise JobCancelled if the job was cancelled, JobMemoryLimit if this process is over the soft limit.

        Cheap enough for every batch: Redis and psutil are asked at most every 0.2 s / 0.05 s.
        """
        clock = time.monotonic()
        if clock - self._last_rss_poll >= RSS_POLL_INTERVAL:
            self._last_rss_poll = clock
            rss = own_rss_mb()
            if rss > self.config.soft_rss_mb:
                raise JobMemoryLimit(
                    f"child RSS {rss:.0f} MB passed the soft limit of {self.config.soft_rss_mb:.0f} MB "
                    f"(hard limit {self.config.max_rss_mb:.0f} MB)"
                )
        if not self._cancelled and clock - self._last_cancel_poll >= CANCEL_POLL_INTERVAL:
            self._last_cancel_poll = clock
            self._cancelled = self._run(self._store.job_status(self.job_id)) == Status.CANCELLED
        if self._cancelled:
            raise JobCancelled(self.job_id)

    # -- data keys --------------------------------------------------------------------------

    def data_key(self, suffix: str) -> str:
        return self.keys.data(suffix)

    def track(self, *keys: str, pipe: Any = None) -> None:
        """Register data keys written by other means, so the pool expires/deletes them with the job."""
        if keys:
            self._write(self._store.track_calls(self.job_id, keys, self.ttl), pipe)

    def set_data(self, suffix: str, value: bytes | str, pipe: Any = None) -> str:
        """SET a data key with PX ctx.ttl and track it; pass `pipe` to batch with other writes."""
        key, calls = self._store.set_data_calls(self.job_id, suffix, value, self.ttl)
        self._write(calls, pipe)
        return key

    def hset_data(self, suffix: str, mapping: dict[str, Any], pipe: Any = None) -> str:
        """HSET fields of a data hash (e.g. an index), refresh its TTL and track it."""
        key, calls = self._store.hset_data_calls(self.job_id, suffix, mapping, self.ttl)
        self._write(calls, pipe)
        return key

    def notify(self, event: str, pipe: Any = None, **fields: Any) -> None:
        """Publish an event on the job's channel (e.g. "chunk" after a chunk landed)."""
        self._write([self._store.notify_call(self.job_id, event, **fields)], pipe)

    def _write(self, calls: Sequence[Call], pipe: Any) -> None:
        # Into the job's own pipeline when it passes one (its MULTI then holds our writes too),
        # else on our own: one command as it is, several in one MULTI.
        if pipe is not None:
            apply(pipe, calls)
        else:
            self._run(single(calls[0] if len(calls) == 1 else multi(*calls)))
