"""The per-host supervisor: takes queued jobs, runs each in a fresh child, guards and reaps them.

One loop, one thread. Each round it (1) keeps Redis in order: reconnects with backoff after an
outage, writes outcomes it could not write during it, heartbeats, scans for orphans; (2) takes a
job if it has a free slot and the host has memory to spare (BLMOVE queue → running:{host}, so a
job is taken by exactly one supervisor); (3) waits on the children's outcome pipes (bounded by
rss_sample_interval); (4) samples every child's RSS, enforces memory limit, timeout and cancel,
and reaps the children that ended.

Children are started with subprocess (``python -m jobs.child``), not multiprocessing: Sanic runs
managed processes as daemonic multiprocessing processes, and those may not have multiprocessing
children. A fresh interpreter also inherits no Redis or DB connection by construction, and
each child leads its own session, so a kill reaches the job's own helpers too.

Run it in a process (``run_supervisor(config)``, e.g. via ``app.manager.manage``) or in a thread
(``Supervisor(config).start_thread()``); only run_supervisor touches signal handlers.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from multiprocessing.connection import wait as wait_readable
from pathlib import Path
from typing import Any

import psutil
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from jobs import guard, registry, store
from jobs.config import PoolConfig
from jobs.errors import (
    JOB_FAILED,
    JOB_INTERRUPTED,
    JOB_MEMORY_LIMIT,
    JOB_TIMEOUT,
    JOB_WORKER_DIED,
)
from jobs.keys import JobKeys, PoolKeys, is_valid_job_id
from jobs.logfmt import ensure_logging, log_event
from jobs.protocol import FRAME
from jobs.store import s

REDIS_DOWN = (redis.ConnectionError, redis.TimeoutError)
BACKOFF_START = 0.25
BACKOFF_CAP = 3.0
CANCEL_KILL_GRACE = 0.5
# The directory holding the `jobs` package: put on the child's PYTHONPATH so `-m jobs.child`
# resolves to this very code, installed or not.
JOBS_ROOT = str(Path(__file__).resolve().parent.parent)
# Ask the kernel for a 1 MiB outcome pipe (Linux); the default 64 KiB would make a large result
# wait for the next round's read.
F_SETPIPE_SZ = 1031


@dataclass
class _Child:
    job_id: str
    kind: str
    keys: JobKeys
    proc: subprocess.Popen
    fd: int | None
    started: float  # monotonic
    base: dict[str, Any]  # enough of the hash to rebuild it if Redis lost it
    output: bytearray = field(default_factory=bytearray)
    rss_mb: float = 0.0
    peak_rss_mb: float = 0.0
    kill_reason: str | None = None  # memory | timeout | cancel | superseded | shutdown
    kill_sent: float | None = None
    kill_rss_mb: float = 0.0  # RSS when the kill was decided (a dying process reads as 0)
    kill_grace: float = 1.0
    killed_hard: bool = False

    @property
    def pid(self) -> int:
        return self.proc.pid


@dataclass
class _Outcome:
    job_id: str
    kind: str
    keys: JobKeys
    status: str  # finished | failed | cancelled | superseded
    fields: dict[str, Any]
    base: dict[str, Any]
    pid: int | None = None


class Supervisor:
    """Runs at most worker_count jobs of its host at once, each in its own child process."""

    def __init__(self, config: PoolConfig) -> None:
        self.config = config
        self.host = config.host_id
        self.pool = PoolKeys(config.prefix)
        self._running_key = self.pool.running(self.host)
        # Identifies this incarnation in the heartbeat key: two live supervisors never share a host id.
        self._token = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(8)}"
        self._stop = threading.Event()
        self._children: dict[str, _Child] = {}
        self._pending: list[_Outcome] = []
        # Short timeouts: Redis calls share the loop with RSS sampling and kills, so a Redis that hangs
        # (a partition, not a refusal) may stall enforcement for about a second, not longer; after that
        # the outage backoff keeps Redis calls out of the loop. One immediate retry, on connection errors
        # only, hides a stale pooled connection; real outages are handled here, with backoff.
        self._redis = redis.Redis.from_url(
            config.redis_url,
            socket_connect_timeout=1.0,
            socket_timeout=max(1.0, 4 * config.rss_sample_interval),
            retry=Retry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,)),
        )
        self._scripts = {
            name: self._redis.register_script(getattr(store, name))
            for name in ("MARK_STARTED", "SET_PID", "FINISH", "CANCEL", "ORPHAN", "HEARTBEAT", "RELEASE", "FORGET_HOST")
        }
        self._redis_ok = True
        self._outage_since: float | None = None
        self._next_redis_try = 0.0
        self._backoff = BACKOFF_START
        self._claimed = False
        self._host_busy_logged = False
        self._first_claim_done = False
        self._next_heartbeat = 0.0
        self._beats = 0
        self._holding = False
        self._available_mb: float | None = None
        self._last_state_write = 0.0
        self._thread: threading.Thread | None = None

    # -- public -----------------------------------------------------------------------------

    def run(self) -> None:
        """The blocking loop; returns after stop() once running children ended or were killed."""
        cfg = self.config
        log_event(
            "supervisor_started",
            host=self.host,
            pid=os.getpid(),
            workers=cfg.worker_count,
            max_rss_mb=cfg.max_rss_mb,
            timeout_s=cfg.job_timeout_seconds,
            kinds=",".join(sorted(cfg.job_kinds)),
        )
        missing = registry.missing_modules(cfg)
        if missing:
            log_event("job_modules_missing", logging.WARNING, host=self.host, kinds=";".join(missing))
        try:
            while not self._stop.is_set():
                self._round()
            self._shutdown()
        finally:
            self._redis.close()
            log_event("supervisor_stopped", host=self.host, pid=os.getpid(), unwritten=len(self._pending))

    def stop(self) -> None:
        """Ask run() to stop taking jobs and wind down (thread- and signal-safe)."""
        self._stop.set()

    def start_thread(self) -> threading.Thread:
        """Run in a daemon thread of this process (single-process mode)."""
        self._thread = threading.Thread(target=self.run, name=f"jobs-supervisor-{self.host}", daemon=True)
        self._thread.start()
        return self._thread

    def join(self, timeout: float | None = None) -> bool:
        """Wait for a start_thread() loop to end; True if it did."""
        if self._thread is None:
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def running_jobs(self) -> dict[str, int]:
        """job id → child pid, for this supervisor (a snapshot)."""
        return {job_id: child.pid for job_id, child in list(self._children.items())}

    # -- the loop ---------------------------------------------------------------------------

    def _round(self) -> None:
        self._redis_upkeep()
        took = waited = False
        if self._redis_ok and self._claimed and not self._pending and len(self._children) < self.config.worker_count:
            if self._admit():
                # With no children to watch, block on Redis; otherwise poll it and wait on the children.
                took, waited = self._take(block=not self._children)
        if not took and not waited:
            self._wait(self.config.rss_sample_interval)
        self._monitor()

    def _admit(self) -> bool:
        """Hold queued jobs while the host is short of memory (logged once per episode)."""
        self._available_mb = guard.available_memory_mb()
        holding = self._available_mb < self.config.min_available_mb
        if holding != self._holding:
            self._holding = holding
            log_event(
                "memory_hold" if holding else "memory_hold_released",
                logging.WARNING if holding else logging.INFO,
                host=self.host,
                available_mb=round(self._available_mb),
                min_available_mb=self.config.min_available_mb,
            )
        return not holding

    def _wait(self, timeout: float) -> None:
        fds = [child.fd for child in self._children.values() if child.fd is not None]
        if fds:
            wait_readable(fds, timeout)
        elif self._children:  # pipes closed, exit status not in yet: look again soon
            self._stop.wait(min(timeout, 0.02))
        else:
            self._stop.wait(timeout)

    # -- Redis upkeep -----------------------------------------------------------------------

    def _redis_lost(self, exc: BaseException) -> None:
        if self._redis_ok:  # log once per outage, not per retry
            self._redis_ok = False
            self._outage_since = time.monotonic()
            self._backoff = BACKOFF_START
            log_event(
                "redis_lost",
                logging.WARNING,
                host=self.host,
                error=f"{type(exc).__name__}: {exc}",
                running=len(self._children),
            )
        self._next_redis_try = time.monotonic() + self._backoff
        self._backoff = min(self._backoff * 2, BACKOFF_CAP)

    def _redis_upkeep(self) -> None:
        now = time.monotonic()
        if not self._redis_ok:
            if now < self._next_redis_try:
                return
            try:
                self._redis.ping()
            except REDIS_DOWN as exc:
                self._redis_lost(exc)
                return
            self._redis_ok = True
            log_event(
                "redis_restored",
                host=self.host,
                outage_s=now - (self._outage_since or now),
                unwritten=len(self._pending),
            )
            self._next_heartbeat = 0.0
        if self._pending and not self._flush_pending():
            return
        if now >= self._next_heartbeat:
            self._heartbeat(now)

    def _flush_pending(self) -> bool:
        while self._pending:
            outcome = self._pending[0]
            try:
                self._write_outcome(outcome)
            except REDIS_DOWN as exc:
                self._redis_lost(exc)
                return False
            self._pending.pop(0)
            log_event(
                "outcome_written_late", job_id=outcome.job_id, kind=outcome.kind, host=self.host, status=outcome.status
            )
        return True

    def _heartbeat(self, now: float) -> None:
        cfg = self.config
        self._next_heartbeat = now + cfg.heartbeat_seconds
        try:
            claimed = bool(
                self._scripts["HEARTBEAT"](
                    keys=[self.pool.heartbeat(self.host), self.pool.hosts],
                    args=[
                        self._token,
                        store.ms(cfg.heartbeat_ttl_seconds),
                        self.host,
                        store.ms(cfg.started_ttl_seconds),
                    ],
                )
            )
        except REDIS_DOWN as exc:
            self._redis_lost(exc)
            return
        if not claimed:
            # Another live supervisor holds this host id: taking jobs or scanning our running list
            # would interfere with its jobs. Wait until its heartbeat lapses.
            if not self._host_busy_logged:
                self._host_busy_logged = True
                log_event(
                    "host_id_in_use",
                    logging.WARNING,
                    host=self.host,
                    note="another supervisor heartbeats for this host id; waiting for it to stop",
                )
            self._claimed = False
            return
        if not self._claimed:
            self._host_busy_logged = False
            log_event("host_claimed", host=self.host, pid=os.getpid())
        self._claimed = True
        self._beats += 1
        if not self._first_claim_done or self._beats % cfg.orphan_scan_heartbeats == 0:
            self._first_claim_done = True
            self._scan_orphans()

    # -- orphans ----------------------------------------------------------------------------

    def _scan_orphans(self) -> None:
        """Fail what dead supervisors left `started`; also what an earlier run of this host left."""
        try:
            hosts = sorted(s(h) for h in self._redis.smembers(self.pool.hosts))
            for host in hosts:
                if host == self.host:
                    ids = [s(i) for i in self._redis.lrange(self._running_key, 0, -1)]
                    # Our own list holds our children; anything else in it is a predecessor's.
                    strays = [i for i in ids if i not in self._children]
                    why = f"the supervisor of host {host} restarted while the job was running"
                    for job_id in strays:
                        self._orphan(host, job_id, why)
                    continue
                if self._redis.exists(self.pool.heartbeat(host)):
                    continue
                why = f"host {host} stopped heartbeating: its supervisor is gone"
                for job_id in [s(i) for i in self._redis.lrange(self.pool.running(host), 0, -1)]:
                    self._orphan(host, job_id, why)
                if self._scripts["FORGET_HOST"](
                    keys=[self.pool.hosts, self.pool.heartbeat(host), self.pool.running(host)], args=[host]
                ):
                    log_event("host_forgotten", host=host, by=self.host)
        except REDIS_DOWN as exc:
            self._redis_lost(exc)

    def _orphan(self, host: str, job_id: str, why: str) -> None:
        running = self.pool.running(host)
        if not is_valid_job_id(job_id):
            self._redis.lrem(running, 0, job_id)
            return
        keys = JobKeys(self.config.prefix, job_id)
        result = s(
            self._scripts["ORPHAN"](
                keys=[keys.job, running, self.pool.queue],
                args=[
                    job_id,
                    repr(store.now()),
                    store.ms(self.config.job_ttl_seconds),
                    keys.notify,
                    store.ended_event("failed", error_code="JOB_ORPHANED"),
                    why,
                ],
            )
        )
        if result == "orphaned":
            store.expire_job_keys(self._redis, keys, self.config.job_ttl_seconds)
            log_event("job_orphaned", logging.WARNING, job_id=job_id, host=host, by=self.host, reason=why)
        elif result == "requeued":
            log_event("job_requeued", job_id=job_id, host=host, by=self.host)

    # -- taking and starting jobs -----------------------------------------------------------

    def _take(self, block: bool) -> tuple[bool, bool]:
        """(took a job, spent the round blocked on Redis)."""
        try:
            if block:
                raw = self._redis.blmove(
                    self.pool.queue, self._running_key, self.config.rss_sample_interval, "LEFT", "RIGHT"
                )
            else:
                raw = self._redis.lmove(self.pool.queue, self._running_key, "LEFT", "RIGHT")
        except REDIS_DOWN as exc:
            self._redis_lost(exc)
            return False, False
        if raw is None:
            return False, block
        self._start(s(raw))
        return True, block

    def _start(self, job_id: str) -> None:
        cfg = self.config
        try:
            if not is_valid_job_id(job_id):
                self._redis.lrem(self._running_key, 0, job_id)
                log_event("queue_garbage_dropped", logging.WARNING, host=self.host, value=job_id[:80])
                return
            keys = JobKeys(cfg.prefix, job_id)
            started_at = store.now()
            previous, kind, created_at = (
                s(v)
                for v in self._scripts["MARK_STARTED"](
                    keys=[keys.job, keys.request], args=[self.host, repr(started_at), store.ms(cfg.started_ttl_seconds)]
                )
            )
            if previous != "queued":  # cancelled while queued, or expired: nothing to run
                self._redis.lrem(self._running_key, 0, job_id)
                log_event("job_skipped", job_id=job_id, host=self.host, status=previous or "missing")
                return
        except REDIS_DOWN as exc:
            # The id stays in running:{host}; once Redis is back the own-list scan requeues or fails it.
            self._redis_lost(exc)
            return
        base = {
            "kind": kind,
            "created_at": created_at,
            "started_at": repr(started_at),
            "host": self.host,
            "ttl": repr(float(cfg.job_ttl_seconds)),
        }
        if kind not in cfg.job_kinds:
            self._record(
                _Outcome(
                    job_id,
                    kind,
                    keys,
                    "failed",
                    {"error_code": JOB_FAILED, "error_message": f"no job function for kind {kind!r}"},
                    base,
                )
            )
            return
        try:
            child = self._spawn(job_id, kind, keys, base)
        except OSError as exc:
            self._record(
                _Outcome(
                    job_id,
                    kind,
                    keys,
                    "failed",
                    {"error_code": JOB_FAILED, "error_message": f"could not start a child process: {exc}"},
                    base,
                )
            )
            return
        self._children[job_id] = child
        log_event(
            "job_started",
            job_id=job_id,
            kind=kind,
            host=self.host,
            pid=child.pid,
            queued_s=max(0.0, started_at - float(created_at or started_at)),
        )
        try:
            self._scripts["SET_PID"](keys=[keys.job], args=[child.pid])
        except REDIS_DOWN as exc:
            self._redis_lost(exc)

    def _spawn(self, job_id: str, kind: str, keys: JobKeys, base: dict[str, Any]) -> _Child:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (JOBS_ROOT, env.get("PYTHONPATH", "")) if p)
        proc = subprocess.Popen(
            [sys.executable, "-m", "jobs.child"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            close_fds=True,
            start_new_session=True,  # own process group: killpg reaches the job's helpers; no terminal ^C
            env=env,
        )
        assert proc.stdin is not None and proc.stdout is not None
        order = pickle.dumps({"config": self.config, "job_id": job_id, "kind": kind})
        try:
            proc.stdin.write(FRAME.pack(len(order)) + order)
            proc.stdin.flush()  # the pipe stays open: its EOF tells the child we are gone
        except BrokenPipeError:
            pass  # the child died at once; reaping reports it
        fd = proc.stdout.fileno()
        os.set_blocking(fd, False)
        try:
            import fcntl

            fcntl.fcntl(fd, F_SETPIPE_SZ, 1 << 20)
        except (ImportError, OSError):
            pass
        return _Child(job_id, kind, keys, proc, fd, time.monotonic(), base)

    # -- watching children ------------------------------------------------------------------

    def _monitor(self) -> None:
        cfg = self.config
        now = time.monotonic()
        for child in list(self._children.values()):
            self._read(child)
            if child.proc.poll() is not None:
                self._reap(child)
                continue
            rss = guard.process_tree_rss_mb(child.pid)
            if rss is not None:
                child.rss_mb = rss
                child.peak_rss_mb = max(child.peak_rss_mb, rss)
            if child.kill_reason is None:
                if child.rss_mb > cfg.max_rss_mb:
                    self._kill(child, "memory")
                elif now - child.started > cfg.job_timeout_seconds:
                    self._kill(child, "timeout")
            elif not child.killed_hard and child.kill_sent is not None and now - child.kill_sent >= child.kill_grace:
                self._kill_hard(child)
        if self._redis_ok and (self._children or now - self._last_state_write >= min(1.0, cfg.heartbeat_seconds)):
            self._sync_with_redis(now)

    def _sync_with_redis(self, now: float) -> None:
        """One round trip: read each child's job status (cancel?) and publish this host's pool state."""
        children = [c for c in self._children.values() if c.kill_reason is None]
        state = {
            "host": self.host,
            "pid": os.getpid(),
            "updated_at": store.now(),
            "available_mb": None if self._available_mb is None else round(self._available_mb, 1),
            "holding_for_memory": self._holding,
            "worker_count": self.config.worker_count,
            "running": [
                {
                    "job_id": c.job_id,
                    "kind": c.kind,
                    "pid": c.pid,
                    "rss_mb": round(c.rss_mb, 1),
                    "peak_rss_mb": round(c.peak_rss_mb, 1),
                    "run_seconds": round(now - c.started, 3),
                }
                for c in self._children.values()
            ],
        }
        try:
            pipe = self._redis.pipeline(transaction=False)
            for child in children:
                pipe.hget(child.keys.job, "status")
            pipe.set(self.pool.pool_state(self.host), json.dumps(state), px=store.ms(self.config.heartbeat_ttl_seconds))
            replies = pipe.execute()
        except REDIS_DOWN as exc:
            self._redis_lost(exc)
            return
        self._last_state_write = now
        for child, status in zip(children, replies[:-1], strict=True):
            status = s(status)
            if status == "cancelled":
                self._kill(child, "cancel")
            elif status in ("finished", "failed"):  # ended elsewhere (orphaned while we were cut off)
                self._kill(child, "superseded")

    def _read(self, child: _Child) -> None:
        if child.fd is None:
            return
        while True:
            try:
                chunk = os.read(child.fd, 1 << 16)
            except BlockingIOError:
                return
            except OSError:
                chunk = b""
            if not chunk:
                child.proc.stdout.close()  # type: ignore[union-attr]
                child.fd = None
                return
            child.output += chunk

    def _kill(self, child: _Child, reason: str) -> None:
        child.kill_reason = reason
        child.kill_sent = time.monotonic()
        child.kill_rss_mb = child.rss_mb
        child.kill_grace = (
            min(CANCEL_KILL_GRACE, self.config.kill_grace_seconds)
            if reason == "cancel"
            else (self.config.kill_grace_seconds)
        )
        log_event(
            "job_killing",
            logging.WARNING if reason in ("memory", "timeout") else logging.INFO,
            job_id=child.job_id,
            kind=child.kind,
            host=self.host,
            pid=child.pid,
            reason=reason,
            rss_mb=round(child.rss_mb, 1),
            peak_rss_mb=round(child.peak_rss_mb, 1),
        )
        self._signal_group(child, signal.SIGTERM)

    def _kill_hard(self, child: _Child) -> None:
        child.killed_hard = True
        try:  # descendants that left the process group still belong to the job
            strays = psutil.Process(child.pid).children(recursive=True)
        except psutil.Error:
            strays = []
        self._signal_group(child, signal.SIGKILL)
        for proc in strays:
            try:
                proc.kill()
            except psutil.Error:
                pass

    @staticmethod
    def _signal_group(child: _Child, sig: int) -> None:
        try:
            os.killpg(child.pid, sig)
        except ProcessLookupError:
            pass
        except PermissionError:
            try:
                child.proc.send_signal(sig)
            except ProcessLookupError:
                pass

    # -- outcomes ---------------------------------------------------------------------------

    def _reap(self, child: _Child) -> None:
        self._read(child)
        if child.fd is not None:  # a descendant still holds the pipe: what we have is all we take
            child.proc.stdout.close()  # type: ignore[union-attr]
            child.fd = None
        try:
            child.proc.stdin.close()  # type: ignore[union-attr]
        except OSError:
            pass
        del self._children[child.job_id]
        outcome = self._decide(child)
        outcome.pid = child.pid
        self._record(outcome)

    def _decide(self, child: _Child) -> _Outcome:
        cfg = self.config
        pid, code = child.pid, child.proc.returncode
        report: dict[str, Any] = {}
        try:
            line = bytes(child.output).strip().splitlines()[-1] if child.output.strip() else b""
            report = json.loads(line) if line else {}
        except ValueError:
            report = {}
        peak = round(child.peak_rss_mb, 1)
        fields: dict[str, Any] = {"peak_rss_mb": peak}

        def failed(error_code: str, message: str) -> _Outcome:
            return _Outcome(
                child.job_id,
                child.kind,
                child.keys,
                "failed",
                {**fields, "error_code": error_code, "error_message": message},
                child.base,
            )

        reason = child.kill_reason
        if reason == "cancel" or (reason is None and report.get("status") == "cancelled"):
            return _Outcome(child.job_id, child.kind, child.keys, "cancelled", fields, child.base)
        if reason == "superseded":
            return _Outcome(child.job_id, child.kind, child.keys, "superseded", fields, child.base)
        if reason == "memory":
            return failed(
                JOB_MEMORY_LIMIT,
                f"the job's processes used {child.kill_rss_mb:.0f} MB, over the limit of "
                f"{cfg.max_rss_mb:.0f} MB (peak RSS {peak:.0f} MB); child pid {pid} was "
                "terminated",
            )
        if reason == "timeout":
            return failed(
                JOB_TIMEOUT, f"the job ran longer than {cfg.job_timeout_seconds:g} s; child pid {pid} was terminated"
            )
        if reason == "shutdown":
            return failed(
                JOB_INTERRUPTED,
                f"the supervisor of host {self.host} shut down before the job ended; child pid {pid} was terminated",
            )
        status = report.get("status")
        if status == "finished":
            return _Outcome(
                child.job_id,
                child.kind,
                child.keys,
                "finished",
                {**fields, "result": report.get("result_json", "null")},
                child.base,
            )
        if status == "failed":
            message = str(report.get("message", ""))
            if report.get("code") == JOB_MEMORY_LIMIT:
                message = f"{message} (peak RSS {peak:.0f} MB)"
            return failed(str(report.get("code") or JOB_FAILED), message)
        if code is not None and code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            return failed(
                JOB_WORKER_DIED,
                f"child pid {pid} died from signal {name} without reporting an outcome (peak RSS {peak:.0f} MB)",
            )
        return failed(JOB_WORKER_DIED, f"child pid {pid} exited with code {code} without reporting an outcome")

    def _record(self, outcome: _Outcome) -> None:
        started = float(outcome.base.get("started_at") or store.now())
        log_event(
            "job_ended",
            logging.INFO if outcome.status == "finished" else logging.WARNING,
            job_id=outcome.job_id,
            kind=outcome.kind,
            host=self.host,
            pid=outcome.pid,
            status=outcome.status,
            code=outcome.fields.get("error_code"),
            duration_s=store.now() - started,
            peak_rss_mb=outcome.fields.get("peak_rss_mb"),
            message=outcome.fields.get("error_message"),
        )
        if self._redis_ok and not self._pending:
            try:
                self._write_outcome(outcome)
                return
            except REDIS_DOWN as exc:
                self._redis_lost(exc)
        # Redis is away: keep the outcome and write it as soon as Redis is back.
        self._pending.append(outcome)
        log_event("outcome_deferred", logging.WARNING, job_id=outcome.job_id, host=self.host, status=outcome.status)

    def _write_outcome(self, outcome: _Outcome) -> None:
        keys, ttl = outcome.keys, self.config.job_ttl_seconds
        if outcome.status == "cancelled":
            self._scripts["CANCEL"](
                keys=[keys.job], args=[repr(store.now()), keys.notify, store.ended_event("cancelled")]
            )
            store.delete_job_data(self._redis, keys)
        elif outcome.status == "superseded":
            store.expire_job_keys(self._redis, keys, ttl)
        else:
            # Data keys get the job TTL before the "ended" event goes out, so a reader woken by it sees final TTLs.
            store.expire_job_keys(self._redis, keys, ttl)
            job_keys, args = store.finish_args(keys, outcome.status, outcome.fields, outcome.base, ttl)
            previous = s(self._scripts["FINISH"](keys=job_keys, args=args))
            if previous == "cancelled":  # cancelled just as it ended: cancel wins, its data goes
                store.delete_job_data(self._redis, keys)
        self._redis.lrem(self._running_key, 0, outcome.job_id)

    # -- shutdown ---------------------------------------------------------------------------

    def _shutdown(self) -> None:
        cfg = self.config
        log_event(
            "supervisor_stopping", host=self.host, running=len(self._children), grace_s=cfg.shutdown_grace_seconds
        )
        deadline = time.monotonic() + cfg.shutdown_grace_seconds
        while self._children and time.monotonic() < deadline:
            self._redis_upkeep()  # keep heartbeating, or another host would orphan these jobs
            self._wait(min(cfg.rss_sample_interval, max(0.0, deadline - time.monotonic())))
            self._monitor()
        for child in list(self._children.values()):
            if child.kill_reason is None:
                self._kill(child, "shutdown")
        hard_deadline = time.monotonic() + cfg.kill_grace_seconds + 3.0
        while self._children and time.monotonic() < hard_deadline:
            self._wait(0.05)
            self._monitor()
        if self._pending:  # a last chance to write what the outage kept back
            self._redis_ok, self._next_redis_try = False, 0.0
            self._redis_upkeep()
        try:
            self._scripts["RELEASE"](keys=[self.pool.heartbeat(self.host)], args=[self._token])
            self._redis.delete(self.pool.pool_state(self.host))
            # A clean stop leaves nothing of this host behind unless a job of it still needs a scan.
            self._scripts["FORGET_HOST"](
                keys=[self.pool.hosts, self.pool.heartbeat(self.host), self._running_key], args=[self.host]
            )
        except REDIS_DOWN:
            pass


def run_supervisor(config: PoolConfig) -> None:
    """Process entry point (pickleable config in, blocks until SIGTERM/SIGINT).

    Made for ``app.manager.manage("jobs-supervisor", run_supervisor, {"config": cfg})``. Signal
    handlers are installed only when called on the main thread; in a thread, use Supervisor.
    """
    ensure_logging()
    supervisor = Supervisor(config)
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: supervisor.stop())
    supervisor.run()


def start_supervisor_thread(config: PoolConfig) -> Supervisor:
    """Single-process mode: a supervisor on a daemon thread. Call .stop() then .join() at shutdown."""
    supervisor = Supervisor(config)
    supervisor.start_thread()
    return supervisor
