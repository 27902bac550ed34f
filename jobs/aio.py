"""asyncio twins of jobs.queue and jobs.notify, for HTTP workers using ``redis.asyncio``.

Same signatures, same errors, same documents; only the Redis round trips are awaited. The
memory admission probe (psutil, microseconds) runs inline.
"""

from __future__ import annotations

import time
from typing import Any

import redis
import redis.asyncio as aioredis

from jobs import store
from jobs.config import PoolConfig
from jobs.errors import QueueFull, RedisUnavailable
from jobs.keys import JobKeys, PoolKeys
from jobs.notify import decode_event
from jobs.queue import (
    REDIS_DOWN,
    CancelResult,
    build_pool_state,
    checked_job_keys,
    prefix_of,
    prepare_submit,
    queue_full_message,
)
from jobs.status import build_status
from jobs.store import s


async def submit(client: aioredis.Redis, config: PoolConfig, kind: str, payload: dict[str, Any]) -> str:
    """See jobs.queue.submit."""
    keys, fields, body = prepare_submit(config, kind, payload)
    ttl = store.ms(config.queued_ttl_seconds)
    try:
        async with client.pipeline(transaction=True) as pipe:
            pipe.hset(keys.job, mapping=fields)
            pipe.pexpire(keys.job, ttl)
            pipe.set(keys.request, body, px=ttl)
            await pipe.execute()
        accepted, length = await client.register_script(store.ENQUEUE)(
            keys=[PoolKeys(config.prefix).queue], args=[keys.job_id, config.queue_max]
        )
        if not int(accepted):
            await client.delete(keys.job, keys.request)
            raise QueueFull(queue_full_message(int(length), config))
    except REDIS_DOWN as exc:
        raise RedisUnavailable(f"Redis is unavailable: {exc}") from exc
    return keys.job_id


async def get_status(client: aioredis.Redis, prefix: str, job_id: str) -> dict[str, Any] | None:
    """See jobs.queue.get_status."""
    keys = checked_job_keys(prefix, job_id)
    try:
        raw = await client.hgetall(keys.job)
        if not raw:
            return None
        position = None
        if s(raw.get(b"status", raw.get("status"))) == "queued":
            position = await client.lpos(PoolKeys(prefix).queue, job_id)
    except REDIS_DOWN as exc:
        raise RedisUnavailable(f"Redis is unavailable: {exc}") from exc
    return build_status(job_id, raw, None if position is None else int(position))


async def cancel(client: aioredis.Redis, prefix: str, job_id: str) -> CancelResult:
    """See jobs.queue.cancel."""
    keys = checked_job_keys(prefix, job_id)
    try:
        previous = s(
            await client.register_script(store.CANCEL)(
                keys=[keys.job], args=[repr(store.now()), keys.notify, store.ended_event("cancelled")]
            )
        )
        if previous == "queued":
            await client.lrem(PoolKeys(prefix).queue, 0, job_id)
        if previous in store.ACTIVE:
            members = [s(m) for m in await client.smembers(keys.keyset)]
            await client.delete(*members, keys.keyset, keys.request)
    except REDIS_DOWN as exc:
        raise RedisUnavailable(f"Redis is unavailable: {exc}") from exc
    return CancelResult(job_id, previous or None, previous in store.ACTIVE)


async def pool_state(
    client: aioredis.Redis, config_or_prefix: PoolConfig | str, host: str | None = None
) -> dict[str, Any]:
    """See jobs.queue.pool_state."""
    pool = PoolKeys(prefix_of(config_or_prefix))
    try:
        hosts = [host] if host else sorted(s(h) for h in await client.smembers(pool.hosts))
        async with client.pipeline(transaction=False) as pipe:
            pipe.llen(pool.queue)
            for name in hosts:
                pipe.get(pool.pool_state(name))
                pipe.exists(pool.heartbeat(name))
            replies = await pipe.execute()
    except REDIS_DOWN as exc:
        raise RedisUnavailable(f"Redis is unavailable: {exc}") from exc
    return build_pool_state(int(replies[0]), hosts, replies[1::2], replies[2::2])


class JobEvents:
    """Async reader of one job's notifications; subscribe first, then read state (see jobs.notify).

    async with JobEvents(client, prefix, job_id) as events:
        status = await get_status(client, prefix, job_id)
        while status["status"] in ("queued", "started"):
            await events.wait(1.0)
            status = await get_status(client, prefix, job_id)
    """

    def __init__(self, client: aioredis.Redis, prefix: str, job_id: str) -> None:
        self.keys = JobKeys(prefix, job_id)
        self._client = client
        self._pubsub: Any = None

    async def __aenter__(self) -> JobEvents:
        self._pubsub = self._client.pubsub(ignore_subscribe_messages=True)
        try:
            await self._pubsub.subscribe(self.keys.notify)
        except REDIS_DOWN as exc:
            await self._pubsub.aclose()
            raise RedisUnavailable(f"Redis is unavailable: {exc}") from exc
        return self

    async def wait(self, timeout: float) -> dict[str, Any] | None:
        """The next event, or None when `timeout` seconds pass without one."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            try:
                message = await self._pubsub.get_message(timeout=remaining)
            except REDIS_DOWN as exc:
                raise RedisUnavailable(f"Redis is unavailable: {exc}") from exc
            if message and message.get("type") == "message":
                return decode_event(message["data"]) or {"event": "unknown"}

    async def __aexit__(self, *exc: object) -> None:
        try:
            await self._pubsub.aclose()
        except redis.RedisError:
            pass
