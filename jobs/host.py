"""This supervisor's hold on its host id: heartbeat, claim, orphan scans, and leaving cleanly.

The heartbeat key holds the token of the supervisor that owns the host id, so two live
supervisors can never share one: the second waits (`host_id_in_use`, logged once) until the
first one's heartbeat lapses. A supervisor takes jobs only while it holds its claim.

Orphans, every `orphan_scan_heartbeats` beats and at the first claim: jobs in the running list
of a host that stopped heartbeating are failed JOB_ORPHANED (started) or put back at the head of
the queue (taken, never started); in this host's own list, anything that is not one of our own
children was left by a predecessor with the same host id, and is treated the same way.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
from collections.abc import Callable, Collection

from jobs.config import PoolConfig
from jobs.link import RedisLink
from jobs.logfmt import log_event
from jobs.store import JobStore


class HostClaim:
    def __init__(
        self, config: PoolConfig, store: JobStore, link: RedisLink, own_jobs: Callable[[], Collection[str]]
    ) -> None:
        self.config = config
        self.host = config.host_id
        self.claimed = False
        self._store = store
        self._link = link
        self._own_jobs = own_jobs
        # Identifies this incarnation in the heartbeat key.
        self._token = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(8)}"
        self._next_beat = 0.0
        self._beats = 0
        self._scanned = False
        self._busy_logged = False

    def beat_now(self) -> None:
        self._next_beat = 0.0

    def upkeep(self, now: float) -> None:
        """Heartbeat when due, and scan for orphans every few beats (raises Offline)."""
        if now < self._next_beat:
            return
        cfg = self.config
        self._next_beat = now + cfg.heartbeat_seconds
        plan = self._store.heartbeat(self.host, self._token, cfg.heartbeat_ttl_seconds, cfg.started_ttl_seconds)
        if not self._link.run(plan):
            # Another live supervisor holds this host id: taking jobs or scanning our running list
            # would interfere with its jobs.
            if not self._busy_logged:
                self._busy_logged = True
                note = "another supervisor heartbeats for this host id; waiting for it to stop"
                log_event("host_id_in_use", logging.WARNING, host=self.host, note=note)
            self.claimed = False
            return
        if not self.claimed:
            self._busy_logged = False
            log_event("host_claimed", host=self.host, pid=os.getpid())
        self.claimed = True
        self._beats += 1
        if not self._scanned or self._beats % cfg.orphan_scan_heartbeats == 0:
            self._scanned = True
            self.scan()

    def scan(self) -> None:
        """Fail what dead supervisors left started; also what an earlier run of this host left."""
        run, store = self._link.run, self._store
        for host in run(store.hosts()):
            if host == self.host:
                own = self._own_jobs()
                why = f"the supervisor of host {host} restarted while the job was running"
                for job_id in [i for i in run(store.running_ids(host)) if i not in own]:
                    self._orphan(host, job_id, why)
                continue
            if run(store.host_alive(host)):
                continue
            why = f"host {host} stopped heartbeating: its supervisor is gone"
            for job_id in run(store.running_ids(host)):
                self._orphan(host, job_id, why)
            if run(store.forget_host(host)):
                log_event("host_forgotten", host=host, by=self.host)

    def leave(self) -> None:
        """A clean stop: leave nothing of this host behind unless a job of it still needs a scan."""
        self._link.run(self._store.leave(self.host, self._token))

    def _orphan(self, host: str, job_id: str, why: str) -> None:
        result = self._link.run(self._store.orphan(host, job_id, why, self.config.job_ttl_seconds))
        if result == "orphaned":
            log_event("job_orphaned", logging.WARNING, job_id=job_id, host=host, by=self.host, reason=why)
        elif result == "requeued":
            log_event("job_requeued", job_id=job_id, host=host, by=self.host)
