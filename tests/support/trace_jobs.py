"""Trace jobs on a server subprocess (support.servers.ServerProcess): submit, poll, follow notifications."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import redis

from support.servers import ServerProcess
from support.waits import wait_for


def events_body(ids: list[str], domains: list[str] | None, profile: str = "query_tool") -> dict[str, Any]:
    body: dict[str, Any] = {"profile": profile, "container_ids": ids}
    if domains is not None:
        body["domains"] = domains
    return body


def submit(server: ServerProcess, ids: list[str], domains: list[str] | None) -> str:
    response = server.client.post("/api/trace/events", json=events_body(ids, domains))
    assert response.status_code == 202, response.text[:500]
    assert response.headers["x-trace-path"] == "job"
    return response.json()["job_id"]


def get_status(server: ServerProcess, job_id: str) -> dict[str, Any]:
    response = server.client.get(f"/api/trace/job/{job_id}")
    assert response.status_code == 200, response.text[:500]
    return response.json()


def wait_job(server: ServerProcess, job_id: str, statuses: str | tuple[str, ...], timeout: float) -> dict[str, Any]:
    wanted = (statuses,) if isinstance(statuses, str) else statuses
    last: dict[str, Any] = {}

    def probe() -> dict[str, Any] | None:
        nonlocal last
        last = get_status(server, job_id)
        return last if last["status"] in wanted else None

    try:
        return wait_for(probe, timeout, f"job {job_id} to be {'/'.join(wanted)}", interval=0.05)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\nstatus: {last}\n--- server log ---\n{server.log_tail()}") from None


class NotifyListener:
    """Records when each chunk notification of a job arrives (a pub/sub subscriber in a thread)."""

    def __init__(self, redis_url: str, prefix: str, job_id: str) -> None:
        self.client = redis.Redis.from_url(redis_url)
        self.pubsub = self.client.pubsub(ignore_subscribe_messages=True)
        self.pubsub.subscribe(f"{prefix}:job:{{{job_id}}}:notify")
        self.chunks: dict[tuple[str, int], float] = {}
        self.events: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            message = self.pubsub.get_message(timeout=0.05)
            if message is None:
                continue
            at = time.monotonic()
            event = json.loads(message["data"])
            self.events.append(event)
            if event.get("event") == "chunk":
                self.chunks[(event["domain"], int(event["n"]))] = at

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.pubsub.close()
        self.client.close()
