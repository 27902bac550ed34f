"""One RSS sampler for every variant, so their peaks are measured the same way.

A thread of the bench process reads the resident set of one process *and its descendants*
(what the pool's own memory guard sums too) every `interval` seconds, on a fixed schedule (no
drift from the time a sample takes). The process is named after the sampler started
(`attach`), because the job path's child only exists once the supervisor spawned it.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import psutil

# A bound on memory and on the JSON size: 50 ms samples for over an hour.
MAX_SAMPLES = 100_000


@dataclass
class RssTrace:
    """What a sampler saw: (seconds since the sampler started, RSS in MB) pairs and their peak."""

    interval: float
    samples: list[tuple[float, float]] = field(default_factory=list)
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


def _tree_usage(process: psutil.Process) -> tuple[float, float | None] | None:
    """(RSS in MB, CPU seconds) of a process and its descendants; None once it is gone.

    A descendant that ends between the listing and its read is skipped; the CPU seconds are
    None when the root's cannot be read.
    """
    try:
        rss = process.memory_info().rss
        children = process.children(recursive=True)
    except psutil.Error:
        return None
    try:
        times = process.cpu_times()
        cpu: float | None = times.user + times.system
    except psutil.Error:
        cpu = None
    for child in children:
        try:
            rss += child.memory_info().rss
            if cpu is not None:
                child_times = child.cpu_times()
                cpu += child_times.user + child_times.system
        except psutil.Error:
            continue
    return rss / 2**20, cpu


class RssSampler:
    """Samples the RSS of one process tree on a thread: start(), attach(pid), stop() → RssTrace."""

    def __init__(self, interval: float) -> None:
        if interval <= 0:
            raise ValueError("sample interval must be > 0")
        self.trace = RssTrace(interval)
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

    def stop(self) -> RssTrace:
        self._stop.set()
        self._thread.join(timeout=5)
        return self.trace

    def _sample(self) -> None:
        process = self._process
        if process is None or len(self.trace.samples) >= MAX_SAMPLES:
            return
        usage = _tree_usage(process)
        # None: gone; an RSS of 0: exiting (its memory already released).
        if usage and usage[0]:
            rss, cpu = usage
            self.trace.samples.append((time.monotonic() - self._t0, rss))
            if cpu is not None:
                self.trace.cpu_s = cpu

    def _loop(self) -> None:
        interval = self.trace.interval
        tick = 1
        while not self._stop.wait(max(0.0, self._t0 + tick * interval - time.monotonic())):
            self._sample()
            # Skip the ticks a slow sample overran instead of firing them back to back.
            tick = max(tick + 1, int((time.monotonic() - self._t0) / interval) + 1)
