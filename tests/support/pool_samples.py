"""Job functions the pool tests run in real child processes.

Reached by the children through PoolConfig.import_paths (tests/), named as
"support.pool_samples:<function>" in PoolConfig.job_kinds (ALL_KINDS).
"""

from __future__ import annotations

import os
import signal
import time

from jobs import JobContext, JobError

# INCR the running counter and keep the highest value seen, atomically.
_ENTER = """
local n = redis.call('INCR', KEYS[1])
local m = tonumber(redis.call('GET', KEYS[2]) or '0')
if n > m then redis.call('SET', KEYS[2], n) end
return n
"""


def echo(ctx: JobContext, payload: dict) -> dict:
    ctx.progress(phase="echo", done=1, total=1, records=len(payload))
    return {"echo": payload, "job_id": ctx.job_id, "pid": os.getpid()}


def sleeper(ctx: JobContext, payload: dict) -> dict:
    """Sleeps `seconds`, checking for cancel every 20 ms and reporting progress."""
    seconds = float(payload.get("seconds", 1.0))
    start = time.monotonic()
    ticks = 0
    while time.monotonic() - start < seconds:
        ctx.check()
        ticks += 1
        ctx.progress(phase="sleeping", done=ticks)
        time.sleep(0.02)
    return {"ticks": ticks}


def counted(ctx: JobContext, payload: dict) -> dict:
    """Records how many jobs run at once (max in payload['max_key']) and who ran it."""
    ctx.redis.register_script(_ENTER)(keys=[payload["count_key"], payload["max_key"]])
    try:
        ctx.redis.hincrby(payload["runs_key"], ctx.job_id, 1)
        ctx.redis.hset(payload["runner_key"], ctx.job_id, ctx.config.host_id)
        time.sleep(float(payload.get("seconds", 0.2)))
    finally:
        ctx.redis.decr(payload["count_key"])
    return {"host": ctx.config.host_id}


def hog(ctx: JobContext, payload: dict) -> dict:
    """Grows by 20 MB every 50 ms without ever calling check(): only the supervisor can stop it."""
    blocks = []
    for _ in range(int(payload.get("steps", 100))):
        blocks.append(b"\x01" * (20 << 20))
        time.sleep(0.05)
    return {"mb": 20 * len(blocks)}


def polite_hog(ctx: JobContext, payload: dict) -> dict:
    """Grows like hog but calls check() between steps, so the soft limit stops it cleanly."""
    blocks = []
    for _ in range(int(payload.get("steps", 100))):
        ctx.check()
        blocks.append(b"\x01" * (20 << 20))
        time.sleep(0.05)
    return {"mb": 20 * len(blocks)}


def boom(ctx: JobContext, payload: dict) -> dict:
    raise ValueError(payload.get("message", "boom"))


def coded(ctx: JobContext, payload: dict) -> dict:
    raise JobError(payload.get("code", "SAMPLE_CODE"), payload.get("message", "chosen by the job"))


def writer(ctx: JobContext, payload: dict) -> dict:
    """Writes chunk data keys and an index the way a result writer would, notifying each chunk."""
    chunks = int(payload.get("chunks", 3))
    for n in range(chunks):
        pipe = ctx.redis.pipeline(transaction=True)
        ctx.set_data(f"chunk:demo:{n}", f"[{n}]", pipe=pipe)
        ctx.hset_data("index", {"demo:chunks": n + 1}, pipe=pipe)
        ctx.notify("chunk", pipe=pipe, domain="demo", n=n)
        pipe.execute()
        ctx.progress(phase="demo", done=n + 1, total=chunks, records=n + 1)
        time.sleep(float(payload.get("pause", 0.0)))
    hold = float(payload.get("hold", 0.0))
    end = time.monotonic() + hold
    while time.monotonic() < end:
        ctx.check()
        time.sleep(0.02)
    return {"chunks": chunks}


def redis_heavy(ctx: JobContext, payload: dict) -> dict:
    """Talks to Redis every 50 ms for `seconds`: it notices a lost Redis at once."""
    end = time.monotonic() + float(payload.get("seconds", 5.0))
    n = 0
    while time.monotonic() < end:
        n += 1
        ctx.redis.set(ctx.data_key("beat"), n, px=10_000)
        time.sleep(0.05)
    return {"beats": n}


def stubborn(ctx: JobContext, payload: dict) -> dict:
    """Ignores SIGTERM and never checks: only SIGKILL ends it."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    ctx.set_data("ready", "1")
    time.sleep(float(payload.get("seconds", 30.0)))
    return {}


def big_result(ctx: JobContext, payload: dict) -> dict:
    return {"blob": "x" * int(payload.get("size", 10))}


def exits(ctx: JobContext, payload: dict) -> dict:
    os._exit(int(payload.get("code", 3)))


ALL_KINDS = {
    name: f"support.pool_samples:{name}"
    for name in (
        "echo",
        "sleeper",
        "counted",
        "hog",
        "polite_hog",
        "boom",
        "coded",
        "writer",
        "redis_heavy",
        "stubborn",
        "big_result",
        "exits",
    )
}
