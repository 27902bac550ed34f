"""The asyncio API (what a Sanic handler uses) against real Redis and a real supervisor."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis

from jobs import QueueFull, aio


def test_async_submit_status_events_and_cancel(redis_url, make_config, start_thread_supervisor) -> None:
    config = make_config(queue_max=3)

    async def scenario() -> None:
        client = aioredis.Redis.from_url(redis_url)
        try:
            job_id = await aio.submit(client, config, "writer", {"chunks": 2, "pause": 0.05})
            assert (await aio.get_status(client, config.prefix, job_id))["queue_position"] == 0
            async with aio.JobEvents(client, config.prefix, job_id) as events:
                start_thread_supervisor(config)
                seen = []
                while not seen or seen[-1]["event"] != "ended":
                    event = await events.wait(10)
                    assert event is not None, seen
                    seen.append(event)
            assert [e["n"] for e in seen if e["event"] == "chunk"] == [0, 1]
            status = await aio.get_status(client, config.prefix, job_id)
            assert status["status"] == "finished" and status["result"] == {"chunks": 2}
            ended = await aio.cancel(client, config.prefix, job_id)
            assert (ended.previous_status, ended.cancelled) == ("finished", False)

            state = await aio.pool_state(client, config)
            assert state["hosts"][0]["host"] == config.host_id and state["hosts"][0]["alive"]

            long = await aio.submit(client, config, "sleeper", {"seconds": 60})
            async with aio.JobEvents(client, config.prefix, long) as events:
                while (await aio.get_status(client, config.prefix, long))["status"] != "started":
                    await events.wait(0.2)
                result = await aio.cancel(client, config.prefix, long)
                assert (result.previous_status, result.cancelled) == ("started", True)
            assert (await aio.get_status(client, config.prefix, long))["status"] == "cancelled"
        finally:
            await client.aclose()

    asyncio.run(scenario())


def test_async_queue_bound(redis_url, make_config) -> None:
    config = make_config(queue_max=2)

    async def scenario() -> None:
        client = aioredis.Redis.from_url(redis_url)
        try:
            await asyncio.gather(*(aio.submit(client, config, "echo", {}) for _ in range(2)))
            with pytest.raises(QueueFull):
                await aio.submit(client, config, "echo", {})
        finally:
            await client.aclose()

    asyncio.run(scenario())
