"""Redis operations written once, run by a sync or an asyncio client.

A *plan* is a generator: it yields the Redis steps it needs — one command (`cmd`), one Lua script
(`Lua`), or a pipeline of commands (`pipeline`, `multi`) — receives each step's reply, and returns
its result. It does no I/O itself, so the same plan serves `redis.Redis` (`SyncRunner`) and
`redis.asyncio.Redis` (`AsyncRunner`), and a plan can use another with `yield from`:

    def status(job_id):
        raw = yield cmd("hgetall", key)           # the reply comes back here
        return document(raw)

    SyncRunner(client)(status(job_id))           # or: await AsyncRunner(aclient)(status(job_id))

Runners let Redis errors through unchanged: what an outage means is the caller's business
(the API raises RedisUnavailable, the supervisor's RedisLink backs off, the child fails its job).
"""

from __future__ import annotations

import hashlib
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import redis
import redis.asyncio as aioredis
from redis.exceptions import NoScriptError

T = TypeVar("T")


@dataclass(frozen=True)
class Call:
    """One command, named by its redis-py method (the sync and async clients share the names)."""

    method: str
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)


def cmd(method: str, *args: Any, **kwargs: Any) -> Call:
    return Call(method, args, kwargs)


@dataclass(frozen=True)
class Script:
    """Lua source with its SHA1, so a runner can EVALSHA it without registering it per client."""

    source: str
    sha: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sha", hashlib.sha1(self.source.encode()).hexdigest())


@dataclass(frozen=True)
class Lua:
    """One script call. Runs on its own, never inside a pipeline (nothing here needs that)."""

    script: Script
    keys: Sequence[str]
    args: Sequence[Any]


@dataclass(frozen=True)
class Pipeline:
    calls: tuple[Call, ...]
    transaction: bool


def pipeline(*calls: Call) -> Pipeline:
    """Several commands in one round trip (no MULTI)."""
    return Pipeline(calls, transaction=False)


def multi(*calls: Call) -> Pipeline:
    """Several commands in one MULTI/EXEC."""
    return Pipeline(calls, transaction=True)


Step = Call | Lua | Pipeline
Plan = Generator[Step, Any, T]


def single(step: Step) -> Plan[Any]:
    """A plan of one step, whose reply is its result."""
    return (yield step)


def text(value: Any) -> str:
    """A reply as str: bytes or str depending on the client's decode_responses; None → ''."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return "" if value is None else str(value)


def apply(target: Any, calls: Sequence[Call]) -> None:
    """Queue commands on a pipeline the caller owns (a job batching its own writes with ours)."""
    for call in calls:
        getattr(target, call.method)(*call.args, **call.kwargs)


class SyncRunner:
    """Runs plans on a `redis.Redis`."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client

    def __call__(self, plan: Plan[T]) -> T:
        reply: Any = None
        try:
            while True:
                reply = self._execute(plan.send(reply))
        except StopIteration as done:
            return done.value
        finally:
            plan.close()

    def _execute(self, step: Step) -> Any:
        client = self.client
        if isinstance(step, Call):
            return getattr(client, step.method)(*step.args, **step.kwargs)
        if isinstance(step, Lua):
            argv = (*step.keys, *step.args)
            try:
                return client.evalsha(step.script.sha, len(step.keys), *argv)
            except NoScriptError:  # a fresh (or flushed) server: load it once, then as before
                client.script_load(step.script.source)
                return client.evalsha(step.script.sha, len(step.keys), *argv)
        with client.pipeline(transaction=step.transaction) as pipe:
            apply(pipe, step.calls)
            return pipe.execute()


class AsyncRunner:
    """Runs plans on a `redis.asyncio.Redis`."""

    def __init__(self, client: aioredis.Redis) -> None:
        self.client = client

    async def __call__(self, plan: Plan[T]) -> T:
        reply: Any = None
        try:
            while True:
                reply = await self._execute(plan.send(reply))
        except StopIteration as done:
            return done.value
        finally:
            plan.close()

    async def _execute(self, step: Step) -> Any:
        client = self.client
        if isinstance(step, Call):
            return await getattr(client, step.method)(*step.args, **step.kwargs)
        if isinstance(step, Lua):
            argv = (*step.keys, *step.args)
            try:
                return await client.evalsha(step.script.sha, len(step.keys), *argv)
            except NoScriptError:
                await client.script_load(step.script.source)
                return await client.evalsha(step.script.sha, len(step.keys), *argv)
        async with client.pipeline(transaction=step.transaction) as pipe:
            apply(pipe, step.calls)  # buffered: an asyncio pipeline's command methods only queue
            return await pipe.execute()
