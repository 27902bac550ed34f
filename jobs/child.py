"""Child entry point: ``python -m jobs.child`` — one fresh interpreter per job.

Protocol with the supervisor (which started us with subprocess, in a session of our own):
- stdin: a 4-byte length and a pickled {"config", "job_id", "kind"}; the supervisor then keeps
  the pipe open. EOF on it later means the supervisor is gone, and we exit at once, so a job
  never runs on unsupervised (its status is failed JOB_ORPHANED by another supervisor anyway).
- stdout: one JSON line with the outcome, then we exit. The job's own prints are sent to
  stderr so they can't corrupt it. The outcome goes over the pipe rather than Redis so a
  job that lost Redis can still say what happened; the supervisor writes it when it can.

Outcomes: {"status": "finished", "result_json": "..."} | {"status": "failed", "code", "message"}
| {"status": "cancelled"}.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import sys
import threading
import traceback
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from jobs import registry
from jobs.config import PoolConfig
from jobs.context import JobContext
from jobs.errors import JOB_FAILED, JOB_MEMORY_LIMIT, REDIS_DOWN, JobCancelled, JobError
from jobs.logfmt import ensure_logging, log_event
from jobs.plan import SyncRunner
from jobs.protocol import EXIT_SUPERVISOR_GONE, FRAME
from jobs.status import Status
from jobs.store import JobStore

MAX_MESSAGE = 2000


def child_redis(config: PoolConfig) -> redis.Redis:
    # No retries: after Redis restarts (possibly empty), silently reconnecting would let the job
    # go on writing chunks next to ones that are gone. A lost connection fails the job instead.
    return redis.Redis.from_url(
        config.redis_url, socket_connect_timeout=5, socket_timeout=30, retry=Retry(NoBackoff(), 0)
    )


def _failed(code: str, message: str) -> dict[str, Any]:
    return {"status": Status.FAILED, "code": code, "message": message[:MAX_MESSAGE]}


def run_job(config: PoolConfig, job_id: str, kind: str) -> dict[str, Any]:
    """Run one job function and describe how it ended (never raises)."""
    for path in reversed(config.import_paths):
        if path not in sys.path:
            sys.path.insert(0, path)
    client = child_redis(config)
    ctx = JobContext(config, job_id, client)
    try:
        fn = registry.function_for(config, kind)
        raw = SyncRunner(client)(JobStore(config.prefix).request(job_id))
        if raw is None:
            return _failed(JOB_FAILED, "the job's request payload is missing (expired or deleted)")
        result = fn(ctx, json.loads(raw))
        ctx.flush()
        text = json.dumps(result, separators=(",", ":"))
        if len(text) > config.result_max_bytes:
            return _failed(
                JOB_FAILED,
                f"the job's result is {len(text)} bytes, over result_max_bytes {config.result_max_bytes} "
                "(large data belongs in data keys)",
            )
        return {"status": Status.FINISHED, "result_json": text}
    except JobCancelled:
        return {"status": Status.CANCELLED}
    except JobError as exc:
        _best_effort_flush(ctx)
        return _failed(exc.code, exc.message)
    except REDIS_DOWN as exc:
        return _failed(JOB_FAILED, f"lost Redis during the job: {type(exc).__name__}: {exc}")
    except MemoryError:
        return _failed(JOB_MEMORY_LIMIT, "the job ran out of memory (MemoryError in the child)")
    except BaseException as exc:  # a job function may raise anything, even SystemExit: all fail the job
        traceback.print_exc(file=sys.stderr)
        _best_effort_flush(ctx)
        return _failed(JOB_FAILED, f"{type(exc).__name__}: {exc}")
    finally:
        client.close()


def _best_effort_flush(ctx: JobContext) -> None:
    try:
        ctx.flush()
    except redis.RedisError:
        pass


def _read_exact(fd: int, size: int) -> bytes:
    data = b""
    while len(data) < size:
        part = os.read(fd, size - len(data))
        if not part:
            raise EOFError("supervisor closed the pipe before sending the job")
        data += part
    return data


def _exit_when_supervisor_gone(fd: int) -> None:
    while os.read(fd, 4096):
        pass
    os._exit(EXIT_SUPERVISOR_GONE)


def main() -> None:
    # Private copies of the two pipes (os.dup makes them non-inheritable), then point fds 0 and 1
    # elsewhere: nothing the job starts inherits the pipes, and prints land on stderr.
    order_fd, outcome_fd = os.dup(0), os.dup(1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.dup2(2, 1)
    (size,) = FRAME.unpack(_read_exact(order_fd, FRAME.size))
    order = pickle.loads(_read_exact(order_fd, size))
    threading.Thread(target=_exit_when_supervisor_gone, args=(order_fd,), name="supervisor-watch", daemon=True).start()
    ensure_logging()
    config: PoolConfig = order["config"]
    outcome = run_job(config, order["job_id"], order["kind"])
    if outcome["status"] != Status.FINISHED:
        log_event(
            "child_outcome",
            logging.INFO,
            job_id=order["job_id"],
            pid=os.getpid(),
            status=outcome["status"],
            code=outcome.get("code"),
        )
    data = (json.dumps(outcome, separators=(",", ":")) + "\n").encode()
    view = memoryview(data)
    while view:
        written = os.write(outcome_fd, view)
        view = view[written:]
    os.close(outcome_fd)
    logging.shutdown()


if __name__ == "__main__":
    main()
