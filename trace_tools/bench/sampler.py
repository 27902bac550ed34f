"""One RSS sampler for every variant, so their peaks are measured the same way.

A thread of the bench process reads the resident set of one process *and its descendants*
(jobs.memory.process_tree_rss_mb, the pool's own probe) every `interval` seconds, on a fixed
schedule (no drift from the time a sample takes). The process is named after the sampler
started (`attach`), because the job path's child only exists once the supervisor spawned it.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import psutil

from jobs.memory import process_tree_rss_mb

# A bound on memory and on the JSON size: 50 ms samples for over an hour.
MAX_SAMPLES = 100_000


@dataclass
class RssTrace:
    """What a sampler saw: (seconds since the sampler started, RSS in MB) pairs and their peak."""

    interval: float
    samples: list[tuple[float, float]] = field(default_factory=list)
    attached_at: float | None = None  # seconds since the sampler started
    # CPU seconds (user + system) of the tree at the last sample: unlike wall time, barely moved by
    # what other processes of a shared machine do.
    cpu_s: float | None = None

    @property
    def peak_mb(self) -> float:
        return max((rss for _, rss in self.samples), default=0.0)

    @property
    def first_mb(self) -> float:
        return self.samples[0][1] if self.samples else 0.0

    def series(self, max_points: int = 2000) -> list[list[float]]:
        """The samples for a plot or the JSON, thinned to at most max_points (the peak is always kept)."""
        if len(self.samples) <= max_points:
            return [[round(t, 3), round(rss, 1)] for t, rss in self.samples]
        step = len(self.samples) / max_points
        picked = {int(i * step) for i in range(max_points)}
        peak_index = max(range(len(self.samples)), key=lambda i: self.samples[i][1])
        picked.add(peak_index)
        return [[round(self.samples[i][0], 3), round(self.samples[i][1], 1)] for i in sorted(picked)]


def _tree_cpu_s(process: psutil.Process | None) -> float | None:
    if process is None:
        return None
    try:
        times = process.cpu_times()
        total = times.user + times.system
        for child in process.children(recursive=True):
            try:
                child_times = child.cpu_times()
            except psutil.Error:
                continue
            total += child_times.user + child_times.system
    except psutil.Error:
        return None
    return total


class RssSampler:
    """Samples the RSS of one process tree on a thread: start(), attach(pid), stop() → RssTrace."""

    def __init__(self, interval: float) -> None:
        if interval <= 0:
            raise ValueError("sample interval must be > 0")
        self.trace = RssTrace(interval)
        self._pid: int | None = None
        self._process: psutil.Process | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="bench-rss-sampler", daemon=True)
        self._t0 = 0.0

    def start(self) -> RssSampler:
        self._t0 = time.monotonic()
        self._thread.start()
        return self

    def attach(self, pid: int) -> None:
        """Sample this process (and its descendants) from the next tick on."""
        try:
            self._process = psutil.Process(pid)
        except psutil.Error:
            self._process = None
        self._pid = pid
        self.trace.attached_at = time.monotonic() - self._t0

    def stop(self) -> RssTrace:
        self._stop.set()
        self._thread.join(timeout=5)
        return self.trace

    def _sample(self) -> None:
        pid = self._pid
        if pid is None or len(self.trace.samples) >= MAX_SAMPLES:
            return
        rss = process_tree_rss_mb(pid)
        # None: not started yet, or gone; 0: exiting (its memory already released).
        if rss:
            self.trace.samples.append((time.monotonic() - self._t0, rss))
            cpu = _tree_cpu_s(self._process)
            if cpu is not None:
                self.trace.cpu_s = cpu

    def _loop(self) -> None:
        interval = self.trace.interval
        tick = 1
        while not self._stop.wait(max(0.0, self._t0 + tick * interval - time.monotonic())):
            self._sample()
            # Skip the ticks a slow sample overran instead of firing them back to back.
            tick = max(tick + 1, int((time.monotonic() - self._t0) / interval) + 1)
