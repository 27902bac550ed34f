"""The per-host supervisor: takes queued jobs, runs each in a fresh child, guards and reaps them.

One loop, one thread. Each round it
  1. keeps Redis in order: reconnects after an outage and writes what it owes (jobs.link),
     heartbeats and scans for orphans (jobs.host);
  2. takes a job if a slot is free and the host has memory to spare (BLMOVE queue →
     running:{host}, so a job is taken by exactly one supervisor) and starts its child;
  3. waits on the children's report pipes, at most rss_sample_interval;
  4. watches every child: reaps the ended ones (jobs.outcome decides what their exit means),
     samples RSS, kills on memory limit, timeout and cancel.
With no child running it blocks on BLMOVE instead of waiting; it never spins.

A *slot* is one job running in one child; `PoolConfig.worker_count` is how many slots a host has.
Run it in a process (`run_supervisor(config)`, e.g. via `app.manager.manage`) or in a thread
(`start_supervisor_thread(config)`); only run_supervisor touches signal handlers.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from multiprocessing.connection import wait as wait_readable

from jobs import registry
from jobs.config import PoolConfig
from jobs.document import host_report
from jobs.errors import JOB_FAILED
from jobs.host import HostClaim
from jobs.keys import is_valid_job_id
from jobs.link import Offline, RedisLink, supervisor_client
from jobs.logfmt import ensure_logging, log_event
from jobs.memory import available_memory_mb
from jobs.outcome import KillReason, Limits, Outcome, decide
from jobs.process import ChildProcess
from jobs.slot import Slot
from jobs.status import TERMINAL, Status
from jobs.store import JobStore, StartedJob


class Supervisor:
    """Runs at most worker_count jobs of its host at once, each in its own child process."""

    def __init__(self, config: PoolConfig) -> None:
        self.config = config
        self.host = config.host_id
        self.slot_count = config.worker_count
        self.slots: dict[str, Slot] = {}
        self.store = JobStore(config.prefix)
        self.link = RedisLink(supervisor_client(config), self.store.ping, self.host, lambda: len(self.slots))
        self.claim = HostClaim(config, self.store, self.link, lambda: self.slots.keys())
        self._limits = Limits(config.max_rss_mb, config.job_timeout_seconds, self.host)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._holding = False
        self._available_mb: float | None = None
        self._last_report = 0.0

    # -- public -----------------------------------------------------------------------------

    def run(self) -> None:
        """The blocking loop; returns after stop() once running children ended or were killed."""
        cfg = self.config
        kinds = ",".join(sorted(cfg.job_kinds))
        log_event(
            "supervisor_started", host=self.host, pid=os.getpid(), slots=self.slot_count,
            max_rss_mb=cfg.max_rss_mb, timeout_s=cfg.job_timeout_seconds, kinds=kinds,
        )
        missing = registry.missing_modules(cfg)
        if missing:
            log_event("job_modules_missing", logging.WARNING, host=self.host, kinds=";".join(missing))
        try:
            while not self._stop.is_set():
                self._round()
            self._shutdown()
        finally:
            self.link.close()
            log_event("supervisor_stopped", host=self.host, pid=os.getpid(), unwritten=self.link.unwritten)

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
        return {job_id: slot.child.pid for job_id, slot in list(self.slots.items())}

    # -- the loop ---------------------------------------------------------------------------

    def _round(self) -> None:
        self._keep_redis()
        took = waited = False
        if self.link.ready and self.claim.claimed and len(self.slots) < self.slot_count and self._memory_allows():
            # With no children to watch, block on Redis; otherwise poll it and wait on the children.
            took, waited = self._take(block=not self.slots)
        if not took and not waited:
            self._wait(self.config.rss_sample_interval)
        self._watch()

    def _keep_redis(self) -> None:
        if self.link.upkeep():
            self.claim.beat_now()  # Redis is back, maybe empty: claim the host again at once
        if self.link.ready:
            try:
                self.claim.upkeep(time.monotonic())
            except Offline:
                pass

    def _memory_allows(self) -> bool:
        """Hold queued jobs while the host is short of memory (logged once per episode)."""
        self._available_mb = available_memory_mb()
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
        fds = [slot.child.fd for slot in self.slots.values() if slot.child.fd is not None]
        if fds:
            wait_readable(fds, timeout)
        elif self.slots:  # pipes closed, exit status not in yet: look again soon
            self._stop.wait(min(timeout, 0.02))
        else:
            self._stop.wait(timeout)

    # -- taking and starting jobs -----------------------------------------------------------

    def _take(self, block: bool) -> tuple[bool, bool]:
        """(took a job, spent the round blocked on Redis)."""
        try:
            job_id = self.link.run(self.store.take(self.host, self.config.rss_sample_interval if block else None))
        except Offline:
            return False, False
        if job_id is not None:
            self._start(job_id)
        return job_id is not None, block

    def _start(self, job_id: str) -> None:
        cfg = self.config
        try:
            if not is_valid_job_id(job_id):
                self.link.run(self.store.drop_taken(self.host, job_id))
                log_event("queue_garbage_dropped", logging.WARNING, host=self.host, value=job_id[:80])
                return
            previous, job = self.link.run(self.store.mark_started(self.host, job_id, cfg.started_ttl_seconds))
        except Offline:
            return  # the id stays in running:{host}; once Redis is back the own-list scan requeues or fails it
        if job is None:
            log_event("job_skipped", job_id=job_id, host=self.host, status=previous or "missing")
            return
        if job.kind not in cfg.job_kinds:
            self._record(job, Outcome.failed(JOB_FAILED, f"no job function for kind {job.kind!r}"), pid=None)
            return
        try:
            child = ChildProcess.spawn(cfg, job_id, job.kind)
        except OSError as exc:
            self._record(job, Outcome.failed(JOB_FAILED, f"could not start a child process: {exc}"), pid=None)
            return
        self.slots[job_id] = Slot(job, child, time.monotonic())
        queued_s = max(0.0, job.started_at - float(job.created_at or job.started_at))
        log_event("job_started", job_id=job_id, kind=job.kind, host=self.host, pid=child.pid, queued_s=queued_s)
        try:
            self.link.run(self.store.set_pid(job_id, child.pid))
        except Offline:
            pass  # the status shows no pid; the outcome is written all the same

    # -- watching children ------------------------------------------------------------------

    def _watch(self) -> None:
        cfg = self.config
        now = time.monotonic()
        for slot in list(self.slots.values()):
            if slot.child.exited():
                self._end(slot)
                continue
            slot.child.sample()
            reason = slot.limit_passed(now, cfg)
            if reason is not None:
                self._kill(slot, reason)
            elif slot.hard_kill_due(now):
                slot.kill_hard()
        if self.link.ok and (self.slots or now - self._last_report >= min(1.0, cfg.heartbeat_seconds)):
            self._report(now)

    def _report(self, now: float) -> None:
        """One round trip: publish this host's report and read each job's status (cancelled?)."""
        watched = [slot for slot in self.slots.values() if slot.kill is None]
        rows = [slot.row(now) for slot in self.slots.values()]
        report = host_report(self.host, os.getpid(), self._available_mb, self._holding, self.slot_count, rows)
        job_ids = [slot.job.job_id for slot in watched]
        try:
            statuses = self.link.run(self.store.report(self.host, job_ids, report, self.config.heartbeat_ttl_seconds))
        except Offline:
            return
        self._last_report = now
        for slot, status in zip(watched, statuses, strict=True):
            if status == Status.CANCELLED:
                self._kill(slot, KillReason.CANCEL)
            elif status in TERMINAL:  # ended elsewhere (orphaned while we were cut off)
                self._kill(slot, KillReason.SUPERSEDED)

    def _kill(self, slot: Slot, reason: KillReason) -> None:
        child = slot.child
        log_event(
            "job_killing",
            logging.WARNING if reason in (KillReason.MEMORY, KillReason.TIMEOUT) else logging.INFO,
            job_id=slot.job.job_id, kind=slot.job.kind, host=self.host, pid=child.pid, reason=reason,
            rss_mb=round(child.rss_mb, 1), peak_rss_mb=round(child.peak_rss_mb, 1),
        )
        slot.begin_kill(reason, self.config.kill_grace_seconds)

    # -- outcomes ---------------------------------------------------------------------------

    def _end(self, slot: Slot) -> None:
        del self.slots[slot.job.job_id]
        ended = slot.child.collect()
        self._record(slot.job, decide(ended, slot.kill, self._limits), ended.pid)

    def _record(self, job: StartedJob, outcome: Outcome, pid: int | None) -> None:
        log_event(
            "job_ended",
            logging.INFO if outcome.status is Status.FINISHED else logging.WARNING,
            job_id=job.job_id, kind=job.kind, host=self.host, pid=pid, status=outcome.label,
            code=outcome.error_code, duration_s=time.time() - job.started_at, peak_rss_mb=outcome.peak_rss_mb,
            message=outcome.error_message,
        )
        ttl = self.config.job_ttl_seconds
        fields = {"job_id": job.job_id, "kind": job.kind, "status": outcome.label}
        self.link.write(lambda: self.store.record(job, outcome, ttl), **fields)

    # -- shutdown ---------------------------------------------------------------------------

    def _shutdown(self) -> None:
        cfg = self.config
        log_event("supervisor_stopping", host=self.host, running=len(self.slots), grace_s=cfg.shutdown_grace_seconds)
        deadline = time.monotonic() + cfg.shutdown_grace_seconds
        while self.slots and time.monotonic() < deadline:
            self._keep_redis()  # keep heartbeating, or another host would orphan these jobs
            self._wait(min(cfg.rss_sample_interval, max(0.0, deadline - time.monotonic())))
            self._watch()
        for slot in list(self.slots.values()):
            if slot.kill is None:
                self._kill(slot, KillReason.SHUTDOWN)
        hard_deadline = time.monotonic() + cfg.kill_grace_seconds + 3.0
        while self.slots and time.monotonic() < hard_deadline:
            self._wait(0.05)
            self._watch()
        self.link.retry_now()  # a last chance to write what an outage kept back, and to leave cleanly
        self.link.upkeep()
        try:
            self.claim.leave()
        except Offline:
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
