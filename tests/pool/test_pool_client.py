"""The caller's side against a real Redis, with no supervisor running: submit, bounds, cancel, status."""

from __future__ import annotations

import threading

import pytest
import redis

from jobs import (
    InvalidJobId,
    JobClient,
    JobKeys,
    MemoryPressure,
    PoolKeys,
    QueueFull,
    RedisUnavailable,
    Status,
    UnknownJobKind,
    new_job_id,
)
from support.servers import free_port


def test_submit_stores_a_queued_job_with_ttl(redis_client, make_config) -> None:
    config = make_config()
    jobs = JobClient(redis_client, config)
    ids = [jobs.submit("echo", {"n": n}) for n in range(3)]
    for position, job_id in enumerate(ids):
        status = jobs.status(job_id)
        assert status["status"] == Status.QUEUED and status["kind"] == "echo"
        assert status["queue_position"] == position
        assert status["created_at"].endswith("Z") and status["started_at"] is None
        keys = JobKeys(config.prefix, job_id)
        assert redis_client.get(keys.request) == f'{{"n":{position}}}'.encode()
        assert 0 < redis_client.pttl(keys.job) <= config.queued_ttl_seconds * 1000
        assert 0 < redis_client.pttl(keys.request)
    assert [i.decode() for i in redis_client.lrange(PoolKeys(config.prefix).queue, 0, -1)] == ids
    assert jobs.status(new_job_id()) is None


def test_queue_full_is_typed_and_leaves_nothing_behind(redis_client, make_config) -> None:
    config = make_config(queue_max=3)
    jobs = JobClient(redis_client, config)
    for _ in range(3):
        jobs.submit("echo", {})
    with pytest.raises(QueueFull, match="3 jobs"):
        jobs.submit("echo", {})
    assert len(list(redis_client.scan_iter(match=f"{config.prefix}:job:*", count=1000))) == 3 * 2


def test_concurrent_submits_never_overshoot_queue_max(redis_url, make_config) -> None:
    config = make_config(queue_max=10)
    accepted: list[str] = []
    refused: list[Exception] = []
    lock = threading.Lock()

    def worker() -> None:
        client = redis.Redis.from_url(redis_url)
        jobs = JobClient(client, config)
        for _ in range(6):
            try:
                job_id = jobs.submit("echo", {})
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
        JobClient(redis_client, config).submit("echo", {})
    assert "available memory" in str(info.value) and "1000000000 MB" in str(info.value)
    assert 0 < info.value.available_mb < info.value.min_available_mb
    assert redis_client.llen(PoolKeys(config.prefix).queue) == 0


def test_redis_unreachable_is_typed(make_config) -> None:
    config = make_config(redis_url=f"redis://127.0.0.1:{free_port()}/0")
    dead = JobClient(redis.Redis.from_url(config.redis_url, socket_connect_timeout=0.5), config)
    job_id = new_job_id()
    with pytest.raises(RedisUnavailable):
        dead.submit("echo", {})
    with pytest.raises(RedisUnavailable):
        dead.status(job_id)
    with pytest.raises(RedisUnavailable):
        dead.cancel(job_id)
    with pytest.raises(RedisUnavailable):
        dead.pool_state()


def test_unknown_kinds_and_bad_ids_are_refused(redis_client, make_config) -> None:
    config = make_config()
    jobs = JobClient(redis_client, config)
    with pytest.raises(UnknownJobKind):
        jobs.submit("no-such-kind", {})
    with pytest.raises(TypeError, match="PoolConfig"):  # reading needs a prefix, submitting the config
        JobClient(redis_client, config.prefix).submit("echo", {})
    for bad in ("../../etc", "A" * 32, "*"):
        with pytest.raises(InvalidJobId):
            jobs.status(bad)
        with pytest.raises(InvalidJobId):
            jobs.cancel(bad)
        with pytest.raises(InvalidJobId):
            jobs.events(bad)


def test_cancel_a_queued_job(redis_client, make_config) -> None:
    config = make_config(job_ttl_seconds=30)
    jobs = JobClient(redis_client, config)
    first, second = jobs.submit("echo", {}), jobs.submit("echo", {})
    result = jobs.cancel(first)
    assert (result.previous_status, result.cancelled) == (Status.QUEUED, True)
    status = jobs.status(first)
    assert status["status"] == Status.CANCELLED and status["finished_at"]
    keys = JobKeys(config.prefix, first)
    assert redis_client.exists(keys.request) == 0  # data gone, the hash says what happened
    assert 0 < redis_client.pttl(keys.job) <= 30_000
    assert jobs.status(second)["queue_position"] == 0
    again = jobs.cancel(first)
    assert (again.previous_status, again.cancelled) == (Status.CANCELLED, False)
    unknown = jobs.cancel(new_job_id())
    assert (unknown.previous_status, unknown.cancelled) == (None, False)


def test_pool_state_without_supervisors(redis_client, make_config) -> None:
    config = make_config()
    JobClient(redis_client, config).submit("echo", {})
    state = JobClient(redis_client, config).pool_state()
    assert state == {"queued": 1, "hosts": []}
    one = JobClient(redis_client, config.prefix).pool_state(host="nowhere")  # a prefix is enough to read
    assert one["hosts"][0]["alive"] is False and one["hosts"][0]["running"] == []
