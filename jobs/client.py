"""The caller's side: submit, status, cancel, pool state, and a job's events — sync and asyncio.

    jobs = JobClient(redis.Redis(...), config)                  # or a prefix, if it never submits
    job_id = jobs.submit("trace-events", payload)
    jobs.status(job_id); jobs.cancel(job_id); jobs.pool_state()

    ajobs = AsyncJobClient(redis.asyncio.Redis(...), config)    # the same, awaited (HTTP handlers)

Both flavours run the same JobStore plans; only the runner differs. They work in any process
(an HTTP worker, a CLI) and talk to Redis only. Errors callers map to responses are typed:
QueueFull, MemoryPressure, RedisUnavailable, UnknownJobKind, InvalidJobId.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import redis
import redis.asyncio as aioredis

from jobs.config import PoolConfig
from jobs.errors import REDIS_DOWN, InvalidJobId, MemoryPressure, RedisUnavailable, UnknownJobKind
from jobs.keys import is_valid_job_id, new_job_id
from jobs.memory import available_memory_mb
from jobs.notify import AsyncJobEvents, JobEvents
from jobs.plan import AsyncRunner, Plan, SyncRunner
from jobs.status import ACTIVE
from jobs.store import JobStore


@dataclass(frozen=True)
class CancelResult:
    """What cancel() did: `cancelled` is True only if this call moved the job to cancelled."""

    job_id: str
    previous_status: str | None  # None: no such job (unknown or expired)
    cancelled: bool


class _Caller:
    """What both flavours share: the store, the config, and the checks made before any Redis call."""

    def __init__(self, config: PoolConfig | str) -> None:
        self.config = config if isinstance(config, PoolConfig) else None
        self.store = JobStore(config.prefix if isinstance(config, PoolConfig) else config)

    def _submit_plan(self, kind: str, payload: dict[str, Any]) -> Plan[str]:
        config = self.config
        if config is None:
            raise TypeError("submit needs a client made with a PoolConfig, not just a prefix")
        if kind not in config.job_kinds:
            raise UnknownJobKind(f"no job function is registered for kind {kind!r}")
        available = available_memory_mb()  # microseconds: inline, even on an event loop
        if available < config.min_available_mb:
            raise MemoryPressure(
                f"available memory {available:.0f} MB is below the admission floor of "
                f"{config.min_available_mb:.0f} MB",
                available,
                config.min_available_mb,
            )
        body = json.dumps(payload, separators=(",", ":"))
        return self.store.submit(
            new_job_id(),
            kind,
            body,
            job_ttl=config.job_ttl_seconds,
            queued_ttl=config.queued_ttl_seconds,
            queue_max=config.queue_max,
        )

    @staticmethod
    def _checked(job_id: str) -> str:
        if not is_valid_job_id(job_id):
            raise InvalidJobId(f"not a job id: {job_id!r}")
        return job_id

    @staticmethod
    def _cancel_result(job_id: str, previous: str) -> CancelResult:
        return CancelResult(job_id, previous or None, previous in ACTIVE)


@contextmanager
def _unavailable_as_typed() -> Iterator[None]:
    try:
        yield
    except REDIS_DOWN as exc:
        raise RedisUnavailable(f"Redis is unavailable: {exc}") from exc


class JobClient(_Caller):
    """The caller's side over a sync `redis.Redis`."""

    def __init__(self, client: redis.Redis, config: PoolConfig | str) -> None:
        super().__init__(config)
        self.redis = client
        self._run = SyncRunner(client)

    def submit(self, kind: str, payload: dict[str, Any]) -> str:
        """Store a job as queued and append it to the queue; returns its id.

        Refused before anything is written: UnknownJobKind, MemoryPressure (available memory
        below min_available_mb); by Redis: QueueFull.
        """
        plan = self._submit_plan(kind, payload)
        with _unavailable_as_typed():
            return self._run(plan)

    def status(self, job_id: str) -> dict[str, Any] | None:
        """The job's status document (docs/jobs.md), or None if there is no such job (or it expired)."""
        plan = self.store.status(self._checked(job_id))
        with _unavailable_as_typed():
            return self._run(plan)

    def cancel(self, job_id: str) -> CancelResult:
        """Cancel a queued or started job; an ended (or unknown) job is left as it is."""
        plan = self.store.cancel(self._checked(job_id))
        with _unavailable_as_typed():
            return self._cancel_result(job_id, self._run(plan))

    def pool_state(self, host: str | None = None) -> dict[str, Any]:
        """What the supervisors last reported: {"queued": n, "hosts": [...]} (docs/jobs.md)."""
        with _unavailable_as_typed():
            return self._run(self.store.pool_state(host))

    def events(self, job_id: str) -> JobEvents:
        """A subscribed reader of the job's notifications (subscribe first, then read the status)."""
        return JobEvents(self.redis, self.store.channel(self._checked(job_id)))


class AsyncJobClient(_Caller):
    """The caller's side over `redis.asyncio.Redis`: JobClient's methods, awaited."""

    def __init__(self, client: aioredis.Redis, config: PoolConfig | str) -> None:
        super().__init__(config)
        self.redis = client
        self._run = AsyncRunner(client)

    async def submit(self, kind: str, payload: dict[str, Any]) -> str:
        plan = self._submit_plan(kind, payload)
        with _unavailable_as_typed():
            return await self._run(plan)

    async def status(self, job_id: str) -> dict[str, Any] | None:
        plan = self.store.status(self._checked(job_id))
        with _unavailable_as_typed():
            return await self._run(plan)

    async def cancel(self, job_id: str) -> CancelResult:
        plan = self.store.cancel(self._checked(job_id))
        with _unavailable_as_typed():
            return self._cancel_result(job_id, await self._run(plan))

    async def pool_state(self, host: str | None = None) -> dict[str, Any]:
        with _unavailable_as_typed():
            return await self._run(self.store.pool_state(host))

    def events(self, job_id: str) -> AsyncJobEvents:
        """Use as `async with client.events(job_id) as events:` (subscribes on entry)."""
        return AsyncJobEvents(self.redis, self.store.channel(self._checked(job_id)))

