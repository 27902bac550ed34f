"""The supervisor's link to Redis, and its outage policy — the one place it is written.

Every supervisor call goes through `RedisLink.run(plan)`. When Redis stops answering the link
logs `redis_lost` once for the whole outage, stops calling (each call raises `Offline` at once,
so the loop keeps watching children at full speed instead of waiting out socket timeouts), and
probes again with backoff (0.25 s doubling to 3 s). Outcomes that could not be written are kept,
in order, and written when Redis is back (`outcome_written_late`) before anything new is taken.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from jobs.config import PoolConfig
from jobs.errors import REDIS_DOWN
from jobs.logfmt import log_event
from jobs.plan import Plan, SyncRunner

T = TypeVar("T")

BACKOFF_START = 0.25
BACKOFF_CAP = 3.0


class Offline(Exception):
    """Redis is away: the call was not made, or did not get through."""


@dataclass
class _Deferred:
    make_plan: Callable[[], Plan[Any]]  # built when written: its timestamps are the writing's
    fields: dict[str, Any]  # for the outcome_* log lines


def supervisor_client(config: PoolConfig) -> redis.Redis:
    # Short timeouts: Redis calls share the loop with RSS sampling and kills, so a Redis that hangs
    # (a partition, not a refusal) may stall enforcement for about a second, not longer; after that
    # the outage backoff keeps Redis calls out of the loop. One immediate retry, on connection errors
    # only, hides a stale pooled connection; real outages are handled here, with backoff.
    return redis.Redis.from_url(
        config.redis_url,
        socket_connect_timeout=1.0,
        socket_timeout=max(1.0, 4 * config.rss_sample_interval),
        retry=Retry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,)),
    )


class RedisLink:
    def __init__(
        self, client: redis.Redis, probe: Callable[[], Plan[Any]], host: str, running: Callable[[], int]
    ) -> None:
        self._client = client
        self._run = SyncRunner(client)
        self._probe = probe
        self._host = host
        self._running = running  # how many jobs run, for the redis_lost line
        self.ok = True
        self._outage_since = 0.0
        self._next_try = 0.0
        self._backoff = BACKOFF_START
        self._deferred: deque[_Deferred] = deque()

    @property
    def ready(self) -> bool:
        """Redis answers and nothing is owed to it: new work may be taken."""
        return self.ok and not self._deferred

    @property
    def unwritten(self) -> int:
        return len(self._deferred)

    def run(self, plan: Plan[T]) -> T:
        """Run a plan, or raise Offline (at once while an outage lasts)."""
        if not self.ok:
            plan.close()
            raise Offline
        try:
            return self._run(plan)
        except REDIS_DOWN as exc:
            self._lost(exc)
            raise Offline from exc

    def write(self, make_plan: Callable[[], Plan[Any]], **fields: Any) -> None:
        """Write an outcome now or, if Redis is away (or earlier ones are still owed), when it is back."""
        if not self._deferred:
            try:
                self.run(make_plan())
                return
            except Offline:
                pass
        self._deferred.append(_Deferred(make_plan, fields))
        log_event("outcome_deferred", logging.WARNING, host=self._host, **fields)

    def upkeep(self) -> bool:
        """Probe Redis when a retry is due and write what is owed. True when Redis just came back."""
        restored = False
        if not self.ok:
            if time.monotonic() < self._next_try:
                return False
            try:
                self._run(self._probe())
            except REDIS_DOWN as exc:
                self._lost(exc)
                return False
            self.ok, restored = True, True
            outage = time.monotonic() - self._outage_since
            log_event("redis_restored", host=self._host, outage_s=outage, unwritten=len(self._deferred))
        while self._deferred:
            owed = self._deferred[0]
            try:
                self.run(owed.make_plan())
            except Offline:
                break
            self._deferred.popleft()
            log_event("outcome_written_late", host=self._host, **owed.fields)
        return restored

    def retry_now(self) -> None:
        """Skip the rest of the backoff (a last attempt at shutdown)."""
        self._next_try = 0.0

    def close(self) -> None:
        self._client.close()

    def _lost(self, exc: BaseException) -> None:
        if self.ok:  # log once per outage, not per retry
            self.ok = False
            self._outage_since = time.monotonic()
            self._backoff = BACKOFF_START
            error = f"{type(exc).__name__}: {exc}"
            log_event("redis_lost", logging.WARNING, host=self._host, error=error, running=self._running())
        self._next_try = time.monotonic() + self._backoff
        self._backoff = min(self._backoff * 2, BACKOFF_CAP)
