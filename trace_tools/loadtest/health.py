"""Polling GET /health during the run: the server's own view of its memory and its job pool.

A cross-check of the psutil figures (and the only memory figures for a remote target):
`process.rss_mb` is the HTTP worker that answered; `pool.hosts[].running[]` lists the job
children with their RSS as the supervisors last sampled it. The poll's latency is also
what an orchestrator's health probe would see under this load. Polls are not counted as
load requests.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import ujson

from trace_tools.percentiles import percentile

POLL_TIMEOUT_SECONDS = 2.0


@dataclass
class HealthTimeline:
    interval: float
    # t, latency ms, HTTP status (0: no answer), worker rss, jobs running, their rss sum, queued
    samples: list[tuple[float, float, int, float | None, int, float, int]] = field(default_factory=list)
    errors: int = 0
    supervisor_pids: set[int] = field(default_factory=set)
    job_pids: set[int] = field(default_factory=set)
    worker_pids: set[int] = field(default_factory=set)  # the HTTP workers that answered

    def summary(self) -> dict[str, Any]:
        latencies = [s[1] for s in self.samples if s[2]]
        worker = [s[3] for s in self.samples if s[3] is not None]
        return {
            "polls": len(self.samples),
            "interval_s": self.interval,
            "failed_polls": self.errors,
            "latency_p50_ms": percentile(latencies, 50),
            "latency_p99_ms": percentile(latencies, 99),
            "latency_max_ms": max(latencies) if latencies else None,
            "not_ok": sum(1 for s in self.samples if s[2] != 200),
            "worker_rss_mb_peak": max(worker) if worker else None,
            "pool_running_peak": max((s[4] for s in self.samples), default=0),
            "pool_running_rss_mb_peak": max((s[5] for s in self.samples), default=0.0),
            "pool_queued_peak": max((s[6] for s in self.samples), default=0),
            "supervisor_pids": sorted(self.supervisor_pids),
            "timeline_columns": ["t_s", "latency_ms", "status", "worker_rss_mb", "jobs_running",
                                 "jobs_rss_mb", "jobs_queued"],
            "timeline": [list(s) for s in self.samples],
        }


def _pool_figures(body: dict[str, Any], timeline: HealthTimeline) -> tuple[int, float, int]:
    pool = body.get("pool") if isinstance(body.get("pool"), dict) else {}
    running = 0
    rss = 0.0
    for host in pool.get("hosts") or []:
        if isinstance(host.get("supervisor_pid"), int):
            timeline.supervisor_pids.add(host["supervisor_pid"])
        for job in host.get("running") or []:
            running += 1
            rss += float(job.get("rss_mb") or 0)
            if isinstance(job.get("pid"), int):
                timeline.job_pids.add(job["pid"])
    return running, round(rss, 1), int(pool.get("queued") or 0)


async def poll_health(
    client: httpx.AsyncClient, timeline: HealthTimeline, started: float, stop: asyncio.Event
) -> None:
    while not stop.is_set():
        asked = time.monotonic()
        status, worker_rss, running, jobs_rss, queued = 0, None, 0, 0.0, 0
        try:
            response = await client.get("/health", timeout=POLL_TIMEOUT_SECONDS)
            status = response.status_code
            body = ujson.loads(response.content)
            if isinstance(body, dict):
                process = body.get("process") or {}
                worker_rss = process.get("rss_mb")
                if isinstance(process.get("pid"), int):
                    timeline.worker_pids.add(process["pid"])
                running, jobs_rss, queued = _pool_figures(body, timeline)
        except (httpx.HTTPError, ValueError):
            timeline.errors += 1
        latency = round((time.monotonic() - asked) * 1000, 1)
        timeline.samples.append((round(asked - started, 2), latency, status, worker_rss, running, jobs_rss, queued))
        try:
            await asyncio.wait_for(stop.wait(), max(0.0, timeline.interval - (time.monotonic() - asked)))
        except TimeoutError:
            pass
