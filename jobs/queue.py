"""The caller's side (sync): submit, cancel, status, pool state. See jobs.aio for asyncio twins.

These run in any process (an HTTP worker, a CLI); they talk to Redis only. Errors callers
must map to responses are typed: QueueFull, MemoryPressure, RedisUnavailable, UnknownJobKind,
InvalidJobId.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import redis

from jobs import guard, store
from jobs.config import PoolConfig
from jobs.errors import InvalidJobId, MemoryPressure, QueueFull, RedisUnavailable, UnknownJobKind
from jobs.keys import JobKeys, PoolKeys, is_valid_job_id, new_job_id
from jobs.status import build_status, iso
from jobs.store import s

# Redis errors that mean "Redis is not there" rather than "we sent something wrong".
REDIS_DOWN = (redis.ConnectionError, redis.TimeoutError)


@dataclass(frozen=True)
class CancelResult:
    """What cancel() did: `cancelled` is True only if this call moved the job to cancelled."""

    job_id: str
    previous_status: str | None  # None: no such job (unknown or expired)
    cancelled: bool


def checked_job_keys(prefix: str, job_id: str) -> JobKeys:
    if not is_valid_job_id(job_id):
        raise InvalidJobId(f"not a job id: {job_id!r}")
    return JobKeys(prefix, job_id)


def check_admission(config: PoolConfig) -> float:
    """Raise MemoryPressure if this host has less available memory than min_available_mb."""
    available = guard.available_memory_mb()
    if available < config.min_available_mb:
        raise MemoryPressure(
            f"available memory {available:.0f} MB is below the admission floor of {config.min_available_mb:.0f} MB",
            available,
            config.min_available_mb,
        )
    return available


def prepare_submit(config: PoolConfig, kind: str, payload: dict[str, Any]) -> tuple[JobKeys, dict[str, str], str]:
    """Checks and encoding shared by the sync and async submit."""
    if kind not in config.job_kinds:
        raise UnknownJobKind(f"no job function is registered for kind {kind!r}")
    check_admission(config)
    body = json.dumps(payload, separators=(",", ":"))
    keys = JobKeys(config.prefix, new_job_id())
    return keys, store.queued_fields(kind, store.now(), config.job_ttl_seconds), body


def queue_full_message(length: int, config: PoolConfig) -> str:
    return f"the job queue holds {length} jobs (queue_max {config.queue_max})"


def submit(client: redis.Redis, config: PoolConfig, kind: str, payload: dict[str, Any]) -> str:
    """Store a job as `queued` and append it to the queue; returns its id.

    The job's hash and request are written first (one slot, one MULTI) and the bounded push is
    a Lua script on the queue, so concurrent submits never overshoot queue_max; a refused job's
    keys are deleted again.
    """
    keys, fields, body = prepare_submit(config, kind, payload)
    ttl = store.ms(config.queued_ttl_seconds)
    try:
        pipe = client.pipeline(transaction=True)
        pipe.hset(keys.job, mapping=fields)
        pipe.pexpire(keys.job, ttl)
        pipe.set(keys.request, body, px=ttl)
        pipe.execute()
        accepted, length = client.register_script(store.ENQUEUE)(
            keys=[PoolKeys(config.prefix).queue], args=[keys.job_id, config.queue_max]
        )
        if not int(accepted):
            client.delete(keys.job, keys.request)
            raise QueueFull(queue_full_message(int(length), config))
    except REDIS_DOWN as exc:
        raise RedisUnavailable(f"Redis is unavailable: {exc}") from exc
    return keys.job_id


def get_status(client: redis.Redis, prefix: str, job_id: str) -> dict[str, Any] | None:
    """The job's status document, or None if there is no such job (never was, or expired)."""
    keys = checked_job_keys(prefix, job_id)
    try:
        raw = client.hgetall(keys.job)
        if not raw:
            return None
        position = None
        if s(raw.get(b"status", raw.get("status"))) == "queued":
            position = client.lpos(PoolKeys(prefix).queue, job_id)
    except REDIS_DOWN as exc:
        raise RedisUnavailable(f"Redis is unavailable: {exc}") from exc
    return build_status(job_id, raw, None if position is None else int(position))


def cancel(client: redis.Redis, prefix: str, job_id: str) -> CancelResult:
    """Cancel a queued or started job; an ended (or unknown) job is left as it is.

    A queued job leaves the queue at once. A started job's supervisor sees the status within
    one sample round and kills its child. Either way the job's data keys are deleted and only
    its hash remains (status `cancelled`, expiring after the job TTL).
    """
    keys = checked_job_keys(prefix, job_id)
    try:
        previous = s(
            client.register_script(store.CANCEL)(
                keys=[keys.job], args=[repr(store.now()), keys.notify, store.ended_event("cancelled")]
            )
        )
        if previous == "queued":
            client.lrem(PoolKeys(prefix).queue, 0, job_id)
        if previous in store.ACTIVE:
            store.delete_job_data(client, keys)
    except REDIS_DOWN as exc:
        raise RedisUnavailable(f"Redis is unavailable: {exc}") from exc
    return CancelResult(job_id, previous or None, previous in store.ACTIVE)


def prefix_of(config_or_prefix: PoolConfig | str) -> str:
    return config_or_prefix.prefix if isinstance(config_or_prefix, PoolConfig) else config_or_prefix


def build_pool_state(
    queued: int, hosts: list[str], states: list[Any], alive: list[Any], at: float | None = None
) -> dict[str, Any]:
    entries = []
    for host, raw, beat in zip(hosts, states, alive, strict=True):
        state = json.loads(s(raw)) if raw else {}
        entries.append(
            {
                "host": host,
                "alive": bool(beat),
                "available_mb": state.get("available_mb"),
                "holding_for_memory": state.get("holding_for_memory"),
                "worker_count": state.get("worker_count"),
                "supervisor_pid": state.get("pid"),
                "updated_at": iso(state.get("updated_at")),
                "running": state.get("running", []),
            }
        )
    return {"queued": queued, "hosts": entries}


def pool_state(client: redis.Redis, config_or_prefix: PoolConfig | str, host: str | None = None) -> dict[str, Any]:
    """What the pool is doing, as the supervisors last wrote it to Redis.

    Returns {"queued": n, "hosts": [{host, alive, available_mb, holding_for_memory, worker_count,
    supervisor_pid, updated_at, running: [{job_id, kind, pid, rss_mb, peak_rss_mb, run_seconds}]}]}
    for `host` (or every known host when None).
    """
    pool = PoolKeys(prefix_of(config_or_prefix))
    try:
        hosts = [host] if host else sorted(s(h) for h in client.smembers(pool.hosts))
        pipe = client.pipeline(transaction=False)
        pipe.llen(pool.queue)
        for name in hosts:
            pipe.get(pool.pool_state(name))
            pipe.exists(pool.heartbeat(name))
        replies = pipe.execute()
    except REDIS_DOWN as exc:
        raise RedisUnavailable(f"Redis is unavailable: {exc}") from exc
    return build_pool_state(int(replies[0]), hosts, replies[1::2], replies[2::2])
