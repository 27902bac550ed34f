"""Server and job-child memory over time, sampled with psutil when the server runs on this host.

The server is found by --server-pid, or as the process listening on the target's port. A
listener started by Python's multiprocessing (a Sanic HTTP worker under the worker manager)
is not the root of the service: its parent is, so the walk goes up while the process is a
multiprocessing child. The tree under that root is sampled every 0.5 s:

- job children are the processes running `python -m jobs.child` (the supervisor spawns one
  per job) or named by /health's pool as running jobs, with everything under them;
- the server is every other process of the tree (main process, HTTP workers, supervisor).

RSS is summed per group. Summed RSS counts pages shared between processes more than once,
so it is an upper bound; its shape over time is what a load test is after.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import psutil

MB = 2**20
JOB_CHILD_MARKER = "jobs.child"
SPAWNED_MARKER = "--multiprocessing-fork"


def find_server_pid(port: int) -> tuple[int | None, str]:
    """(root pid of the service listening on `port`, how it was found or why not)."""
    try:
        listeners = [c.pid for c in psutil.net_connections("tcp") if c.laddr and c.laddr.port == port
                     and c.status == psutil.CONN_LISTEN and c.pid]
    except (psutil.AccessDenied, OSError) as exc:
        return None, f"cannot list listening sockets ({exc}); pass --server-pid"
    if not listeners:
        return None, f"no process of this user listens on port {port}; pass --server-pid"
    return service_root(listeners[0]), f"listening on port {port}"


def service_root(pid: int) -> int:
    """Climb from a multiprocessing child (a Sanic worker) to the process that started it."""
    try:
        process = psutil.Process(pid)
        while SPAWNED_MARKER in " ".join(process.cmdline()):
            parent = process.parent()
            if parent is None:
                break
            process = parent
        return process.pid
    except psutil.Error:
        return pid


@dataclass
class ProcessPeak:
    pid: int
    role: str
    peak_mb: float = 0.0
    last_mb: float = 0.0


@dataclass
class RssTimeline:
    interval: float
    root_pid: int | None
    found_by: str
    samples: list[tuple[float, float, float, int]] = field(default_factory=list)  # t, server, jobs, n jobs
    processes: dict[int, ProcessPeak] = field(default_factory=dict)
    gone: bool = False  # the server process disappeared during the run

    def summary(self) -> dict[str, Any]:
        if self.root_pid is None:
            return {"sampled": False, "reason": self.found_by}
        server = [s[1] for s in self.samples]
        jobs = [s[2] for s in self.samples]
        job_peaks = [p.peak_mb for p in self.processes.values() if p.role == "job child"]
        return {
            "sampled": bool(self.samples),
            "server_pid": self.root_pid,
            "found_by": self.found_by,
            "interval_s": self.interval,
            "samples": len(self.samples),
            "server_went_away": self.gone,
            "server_mb": {
                "first": server[0] if server else None,
                "peak": max(server) if server else None,
                "last": server[-1] if server else None,
            },
            "job_children_mb": {
                "peak_total": max(jobs) if jobs else None,
                "peak_single": max(job_peaks) if job_peaks else None,
                "children_seen": len(job_peaks),
                "peak_concurrent": max((s[3] for s in self.samples), default=0),
            },
            "server_processes": [
                {"pid": p.pid, "role": p.role, "peak_mb": p.peak_mb, "last_mb": p.last_mb}
                for p in self.processes.values()
                if p.role != "job child"
            ],
            "timeline_columns": ["t_s", "server_mb", "job_children_mb", "job_children"],
            "timeline": [list(s) for s in self.samples],
        }


class TreeSampler:
    """One psutil pass over the service's process tree."""

    def __init__(self, root_pid: int) -> None:
        self.root = psutil.Process(root_pid)
        self.job_pids_from_health: set[int] = set()
        self.supervisor_pids: set[int] = set()
        self.worker_pids: set[int] = set()
        self._is_job: dict[int, bool] = {}  # cmdline checks are cached: a pid's command does not change

    def _job_root(self, process: psutil.Process) -> bool:
        if process.pid in self.job_pids_from_health:
            return True
        known = self._is_job.get(process.pid)
        if known is None:
            try:
                known = JOB_CHILD_MARKER in " ".join(process.cmdline())
            except psutil.Error:
                known = False
            self._is_job[process.pid] = known
        return known

    def sample(self) -> tuple[float, float, dict[int, tuple[str, float]]] | None:
        """(server MB, job children MB, {pid: (role, MB)}); None once the root is gone."""
        try:
            tree = [self.root, *self.root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return None
        job_pids = self._job_subtrees(tree)
        server = jobs = 0.0
        per_process: dict[int, tuple[str, float]] = {}
        for process in tree:
            try:
                mb = process.memory_info().rss / MB
            except psutil.Error:
                continue  # ended between the listing and the read
            if process.pid in job_pids:
                jobs += mb
                per_process[process.pid] = ("job child", mb)
            else:
                server += mb
                per_process[process.pid] = (self._role(process), mb)
        return server, jobs, per_process

    def _job_subtrees(self, tree: list[psutil.Process]) -> set[int]:
        """Pids of the job children and everything under them (walking parents within the tree)."""
        parents: dict[int, int] = {}
        for process in tree:
            try:
                parents[process.pid] = process.ppid()
            except psutil.Error:
                pass
        by_pid = {p.pid: p for p in tree}
        in_job: dict[int, bool] = {self.root.pid: False}

        def belongs(pid: int) -> bool:
            chain: list[int] = []
            while pid not in in_job:
                chain.append(pid)
                if self._job_root(by_pid[pid]):
                    in_job[pid] = True
                    break
                parent = parents.get(pid)
                if parent is None or parent not in by_pid:
                    in_job[pid] = False
                    break
                pid = parent
            answer = in_job[pid]
            for seen in chain:
                in_job[seen] = answer
            return answer

        return {pid for pid in by_pid if belongs(pid)}

    def _role(self, process: psutil.Process) -> str:
        if process.pid == self.root.pid:
            return "main"
        if process.pid in self.supervisor_pids:
            return "job supervisor"
        if process.pid in self.worker_pids:
            return "http worker"
        return "server process"


async def sample_rss(timeline: RssTimeline, sampler: TreeSampler, started: float, stop: asyncio.Event) -> None:
    """Append a sample every interval until `stop` is set or the server is gone."""
    while not stop.is_set():
        taken = time.monotonic()
        result = sampler.sample()
        if result is None:
            timeline.gone = True
            return
        server, jobs, per_process = result
        count = sum(1 for role, _ in per_process.values() if role == "job child")
        timeline.samples.append((round(taken - started, 2), round(server, 1), round(jobs, 1), count))
        for pid, (role, mb) in per_process.items():
            peak = timeline.processes.get(pid)
            if peak is None or peak.role != role:
                peak = timeline.processes[pid] = ProcessPeak(pid, role, peak.peak_mb if peak else 0.0)
            peak.peak_mb = round(max(peak.peak_mb, mb), 1)
            peak.last_mb = round(mb, 1)
        try:
            await asyncio.wait_for(stop.wait(), max(0.0, timeline.interval - (time.monotonic() - taken)))
        except TimeoutError:
            pass
