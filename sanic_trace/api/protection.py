"""Protection of the service: per-client rate limits shared through Redis, and bounded DB threads.

Rate limits are fixed windows counted in Redis, so every HTTP worker (and every host on
the same Redis) agrees on a client's count. When Redis cannot be reached the limiter lets
requests through (and logs once per outage): refusing all traffic because the limiter's
store is down would turn a Redis outage into a full outage of the inline path.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import redis
import redis.asyncio as aioredis

from sanic_trace.errors import ApiError

log = logging.getLogger("sanic_trace.protection")
T = TypeVar("T")


class RateLimiter:
    def __init__(self, client: aioredis.Redis, prefix: str, window_seconds: int) -> None:
        self.client = client
        self.prefix = prefix
        self.window = window_seconds
        self._outage_logged = False

    async def check(self, endpoint: str, client_ip: str, limit: int) -> None:
        """Count this request; raise RATE_LIMITED when the client is over `limit` in the window."""
        if limit <= 0:
            return
        now = time.time()
        window_start = int(now // self.window) * self.window
        key = f"{self.prefix}:ratelimit:{endpoint}:{client_ip}:{window_start}"
        try:
            async with self.client.pipeline(transaction=True) as pipe:
                pipe.incr(key)
                pipe.expire(key, self.window + 1)
                count, _ = await pipe.execute()
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            if not self._outage_logged:
                log.warning("rate_limiter_open reason=redis_unavailable error=%s", exc)
                self._outage_logged = True
            return
        self._outage_logged = False
        if count > limit:
            retry_after = max(1, int(window_start + self.window - now + 0.999))
            raise ApiError(
                "RATE_LIMITED",
                f"more than {limit} {endpoint} requests in {self.window} s from {client_ip}; "
                f"retry after {retry_after} s",
                retry_after=retry_after,
            )


class DatabaseSlots:
    """At most N blocking DB tasks of this worker at once, on a thread pool of N threads.

    Every stage that reads the warehouse takes a slot: seed-resolve and lineage while they
    compute, an inline events request for its whole stream (TRACE_INLINE_MAX_CONCURRENCY names
    the inline path, where the setting began). A request that finds every slot taken is refused
    at once with TOO_BUSY rather than queued: a queue of waiting requests would hold their memory
    and sockets for nothing.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.in_use = 0
        self.executor = ThreadPoolExecutor(max_workers=size, thread_name_prefix="trace-db")

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[DatabaseSlots]:
        if self.in_use >= self.size:
            raise ApiError("TOO_BUSY", f"all {self.size} database slots of this worker are busy; retry shortly")
        self.in_use += 1
        try:
            yield self
        finally:
            self.in_use -= 1

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """fn(*args) on one of the slots' threads (the caller holds a slot)."""
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
