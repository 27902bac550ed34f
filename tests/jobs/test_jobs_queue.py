"""The caller's side against a real Redis, with no supervisor running: submit, bounds, cancel, status."""

from __future__ import annotations

import threading

import pytest
import redis
from jobs_testkit import free_port

from jobs import (
    InvalidJobId,
    JobKeys,
    MemoryPressure,
    PoolKeys,
    QueueFull,
    RedisUnavailable,
    UnknownJobKind,
    cancel,
    get_status,
    new_job_id,
    pool_state,
    submit,
)


def test_submit_stores_a_queued_job_with_ttl(redis_client, make_config) -> None:
    config = make_config()
    ids = [submit(redis_client, config, "echo", {"n": n}) for n in range(3)]
    for position, job_id in enumerate(ids):
        status = get_status(redis_client, config.prefix, job_id)
        assert status["status"] == "queued" and status["kind"] == "echo"
        assert status["queue_position"] == position
        assert status["created_at"].endswith("Z") and status["started_at"] is None
        keys = JobKeys(config.prefix, job_id)
        assert redis_client.get(keys.request) == f'{{"n":{position}}}'.encode()
        assert 0 < redis_client.pttl(keys.job) <= config.queued_ttl_seconds * 1000
        assert 0 < redis_client.pttl(keys.request)
    assert [i.decode() for i in redis_client.lrange(PoolKeys(config.prefix).queue, 0, -1)] == ids
    assert get_status(redis_client, config.prefix, new_job_id()) is None


def test_queue_full_is_typed_and_leaves_nothing_behind(redis_client, make_config) -> None:
    config = make_config(queue_max=3)
    for _ in range(3):
        submit(redis_client, config, "echo", {})
    with pytest.raises(QueueFull, match="3 jobs"):
        submit(redis_client, config, "echo", {})
    assert len(list(redis_client.scan_iter(match=f"{config.prefix}:job:*", count=1000))) == 3 * 2


def test_concurrent_submits_never_overshoot_queue_max(redis_url, make_config) -> None:
    config = make_config(queue_max=10)
    accepted: list[str] = []
    refused: list[Exception] = []
    lock = threading.Lock()

    def worker() -> None:
        client = redis.Redis.from_url(redis_url)
        for _ in range(6):
            try:
                job_id = submit(client, config, "echo", {})
                with lock:
                    accepted.append(job_id)
            except QueueFull as exc:
                with lock:
                    refused.append(exc)
        client.close()

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    client = redis.Redis.from_url(redis_url)
    assert len(accepted) == 10 and len(refused) == 38
    assert client.llen(PoolKeys(config.prefix).queue) == 10


def test_memory_admission_refuses_with_the_figures(redis_client, make_config) -> None:
    config = make_config(min_available_mb=10**9)
    with pytest.raises(MemoryPressure) as info:
        submit(redis_client, config, "echo", {})
    assert "available memory" in str(info.value) and "1000000000 MB" in str(info.value)
    assert 0 < info.value.available_mb < info.value.min_available_mb
    assert redis_client.llen(PoolKeys(config.prefix).queue) == 0


def test_redis_unreachable_is_typed(make_config) -> None:
    config = make_config(redis_url=f"redis://127.0.0.1:{free_port()}/0")
    dead = redis.Redis.from_url(config.redis_url, socket_connect_timeout=0.5)
    job_id = new_job_id()
    with pytest.raises(RedisUnavailable):
        submit(dead, config, "echo", {})
    with pytest.raises(RedisUnavailable):
        get_status(dead, config.prefix, job_id)
    with pytest.raises(RedisUnavailable):
        cancel(dead, config.prefix, job_id)
    with pytest.raises(RedisUnavailable):
        pool_state(dead, config)


def test_unknown_kinds_and_bad_ids_are_refused(redis_client, make_config) -> None:
    config = make_config()
    with pytest.raises(UnknownJobKind):
        submit(redis_client, config, "no-such-kind", {})
    for bad in ("../../etc", "A" * 32, "*"):
        with pytest.raises(InvalidJobId):
            get_status(redis_client, config.prefix, bad)
        with pytest.raises(InvalidJobId):
            cancel(redis_client, config.prefix, bad)


def test_cancel_a_queued_job(redis_client, make_config) -> None:
    config = make_config(job_ttl_seconds=30)
    first, second = submit(redis_client, config, "echo", {}), submit(redis_client, config, "echo", {})
    result = cancel(redis_client, config.prefix, first)
    assert (result.previous_status, result.cancelled) == ("queued", True)
    status = get_status(redis_client, config.prefix, first)
    assert status["status"] == "cancelled" and status["finished_at"]
    keys = JobKeys(config.prefix, first)
    assert redis_client.exists(keys.request) == 0  # data gone, the hash says what happened
    assert 0 < redis_client.pttl(keys.job) <= 30_000
    assert get_status(redis_client, config.prefix, second)["queue_position"] == 0
    again = cancel(redis_client, config.prefix, first)
    assert (again.previous_status, again.cancelled) == ("cancelled", False)
    unknown = cancel(redis_client, config.prefix, new_job_id())
    assert (unknown.previous_status, unknown.cancelled) == (None, False)


def test_pool_state_without_supervisors(redis_client, make_config) -> None:
    config = make_config()
    submit(redis_client, config, "echo", {})
    state = pool_state(redis_client, config)
    assert state == {"queued": 1, "hosts": []}
    one = pool_state(redis_client, config.prefix, host="nowhere")
    assert one["hosts"][0]["alive"] is False and one["hosts"][0]["running"] == []
