"""Job notifications: small JSON messages on the pub/sub channel ``{p}:job:{ID}:notify``.

A message is only a wake-up call: pub/sub drops messages nobody is subscribed for, so a
reader must SUBSCRIBE first, THEN read the state it cares about (status hash, the job's
index), and after every message or timeout read that state again. Done that way no event
can be missed, and a reader never waits longer than its timeout for a change.

Events the pool publishes: {"event": "progress", ...} (at most ~4 a second) and
{"event": "ended", "status": "finished" | "failed" | "cancelled"}. Job functions add their
own with ctx.notify("chunk", domain="history", n=3).

Readers get a JobEvents from the client (`JobClient.events(job_id)`, `AsyncJobClient.events`),
which knows the channel's name.
"""

from __future__ import annotations

import json
import time
from typing import Any

import redis
import redis.asyncio as aioredis

from jobs.errors import REDIS_DOWN, RedisUnavailable

EVENT_PROGRESS = "progress"
EVENT_ENDED = "ended"


def encode_event(event: str, **fields: Any) -> str:
    return json.dumps({"event": event, **fields}, separators=(",", ":"))


def decode_event(data: bytes | str) -> dict[str, Any] | None:
    try:
        value = json.loads(data)
    except (TypeError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _event_of(message: dict[str, Any] | None) -> dict[str, Any] | None:
    """The event in a pub/sub message, or None for anything that is not a published message."""
    if message and message.get("type") == "message":
        return decode_event(message["data"]) or {"event": "unknown"}
    return None


class JobEvents:
    """Blocking reader of one job's notifications.

    with jobs_client.events(job_id) as events:       # subscribed from here on
        status = jobs_client.status(job_id)           # read AFTER subscribing
        while status["status"] in ACTIVE:
            events.wait(1.0)                          # a message or the timeout
            status = jobs_client.status(job_id)
    """

    def __init__(self, client: redis.Redis, channel: str) -> None:
        self._pubsub = client.pubsub(ignore_subscribe_messages=True)
        self._pubsub.subscribe(channel)

    def wait(self, timeout: float) -> dict[str, Any] | None:
        """The next event, or None when `timeout` seconds pass without one."""
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            event = _event_of(self._pubsub.get_message(timeout=remaining))
            if event is not None:
                return event
        return None

    def close(self) -> None:
        self._pubsub.close()

    def __enter__(self) -> JobEvents:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncJobEvents:
    """The asyncio reader; subscribes on `async with`, raises RedisUnavailable when Redis is away."""

    def __init__(self, client: aioredis.Redis, channel: str) -> None:
        self._client = client
        self._channel = channel
        self._pubsub: Any = None

    async def __aenter__(self) -> AsyncJobEvents:
        self._pubsub = self._client.pubsub(ignore_subscribe_messages=True)
        try:
            await self._pubsub.subscribe(self._channel)
        except REDIS_DOWN as exc:
            await self._pubsub.aclose()
            raise RedisUnavailable(f"Redis is unavailable: {exc}") from exc
        return self

    async def wait(self, timeout: float) -> dict[str, Any] | None:
        """The next event, or None when `timeout` seconds pass without one."""
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                event = _event_of(await self._pubsub.get_message(timeout=remaining))
            except REDIS_DOWN as exc:
                raise RedisUnavailable(f"Redis is unavailable: {exc}") from exc
            if event is not None:
                return event
        return None

    async def __aexit__(self, *exc: object) -> None:
        try:
            await self._pubsub.aclose()
        except redis.RedisError:
            pass
