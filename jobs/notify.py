"""Job notifications: small JSON messages on the pub/sub channel ``{p}:job:{ID}:notify``.

A message is only a wake-up call: pub/sub drops messages nobody is subscribed for, so a
reader must SUBSCRIBE first, THEN read the state it cares about (status hash, the job's
index), and after every message or timeout read that state again. Done that way no event
can be missed, and a reader never waits longer than its timeout for a change.

Events the pool publishes: {"event": "progress", ...} (at most ~4 a second) and
{"event": "ended", "status": "finished" | "failed" | "cancelled"}. Job functions add their
own with ctx.notify("chunk", domain="history", n=3).
"""

from __future__ import annotations

import json
import time
from typing import Any

import redis

from jobs.keys import JobKeys

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


def publish(client_or_pipe: Any, keys: JobKeys, event: str, **fields: Any) -> Any:
    """PUBLISH one event on the job's channel (a pipeline may be passed to batch it with writes)."""
    return client_or_pipe.publish(keys.notify, encode_event(event, **fields))


class JobEvents:
    """Blocking reader of one job's notifications (sync; see jobs.aio for asyncio).

    with JobEvents(client, prefix, job_id) as events:
        status = get_status(client, prefix, job_id)    # read AFTER subscribing
        while status["status"] in ("queued", "started"):
            events.wait(1.0)                           # a message or the timeout
            status = get_status(client, prefix, job_id)
    """

    def __init__(self, client: redis.Redis, prefix: str, job_id: str) -> None:
        self.keys = JobKeys(prefix, job_id)
        self._pubsub = client.pubsub(ignore_subscribe_messages=True)
        self._pubsub.subscribe(self.keys.notify)

    def wait(self, timeout: float) -> dict[str, Any] | None:
        """The next event, or None when `timeout` seconds pass without one."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            message = self._pubsub.get_message(timeout=remaining)
            if message and message.get("type") == "message":
                return decode_event(message["data"]) or {"event": "unknown"}

    def close(self) -> None:
        self._pubsub.close()

    def __enter__(self) -> JobEvents:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
