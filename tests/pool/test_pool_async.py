"""The asyncio API (what a Sanic handler uses) against real Redis and a real supervisor."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis

from jobs import AsyncJobClient, QueueFull, Status


def test_async_submit_status_events_and_cancel(redis_url, make_config, start_thread_supervisor) -> None:
    config = make_config(queue_max=3)

    async def scenario() -> None:
        client = aioredis.Redis.from_url(redis_url)
        jobs = AsyncJobClient(client, config)
        try:
            job_id = await jobs.submit("writer", {"chunks": 2, "pause": 0.05})
            assert (await jobs.status(job_id))["queue_position"] == 0
            async with jobs.events(job_id) as events:
                start_thread_supervisor(config)
                seen = []
                while not seen or seen[-1]["event"] != "ended":
                    event = await events.wait(10)
                    assert event is not None, seen
                    seen.append(event)
            assert [e["n"] for e in seen if e["event"] == "chunk"] == [0, 1]
            status = await jobs.status(job_id)
            assert status["status"] == Status.FINISHED and status["result"] == {"chunks": 2}
            ended = await jobs.cancel(job_id)
            assert (ended.previous_status, ended.cancelled) == (Status.FINISHED, False)

            state = await jobs.pool_state()
            assert state["hosts"][0]["host"] == config.host_id and state["hosts"][0]["alive"]

            long = await jobs.submit("sleeper", {"seconds": 60})
            async with jobs.events(long) as events:
                while (await jobs.status(long))["status"] != Status.STARTED:
                    await events.wait(0.2)
                result = await jobs.cancel(long)
                assert (result.previous_status, result.cancelled) == (Status.STARTED, True)
            assert (await jobs.status(long))["status"] == Status.CANCELLED
        finally:
            await client.aclose()

    asyncio.run(scenario())


def test_async_queue_bound(redis_url, make_config) -> None:
    config = make_config(queue_max=2)

    async def scenario() -> None:
        client = aioredis.Redis.from_url(redis_url)
        jobs = AsyncJobClient(client, config)
        try:
            await asyncio.gather(*(jobs.submit("echo", {}) for _ in range(2)))
            with pytest.raises(QueueFull):
                await jobs.submit("echo", {})
        finally:
            await client.aclose()

    asyncio.run(scenario())
