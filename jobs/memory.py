"""Memory measurements (psutil and cgroup files): host headroom, RSS of a process tree, own RSS.

Only measures: what a figure means — refuse a submit, hold the queue, kill a child — is decided
by the caller (jobs.client, jobs.supervisor, jobs.context).
"""

from __future__ import annotations

import os
from pathlib import Path

import psutil

MB = 1024 * 1024
# cgroup v1 reports "no limit" as a huge page-aligned number rather than "max".
_V1_UNLIMITED = 1 << 60


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except (OSError, ValueError):
        return None
    if text == "max":
        return None
    try:
        return int(text)
    except ValueError:
        return None


def cgroup_headroom_bytes(proc_cgroup: str = "/proc/self/cgroup", root: str = "/sys/fs/cgroup") -> int | None:
    """`memory.max − memory.current` of this process's own cgroup, or None when there is no limit.

    cgroup v2 first (the "0::/path" line); v1's memory controller as a fallback, since some
    container hosts still mount v1. Inside a container the cgroup namespace usually makes the
    listed path "/", so the mount root itself is tried after the listed path.
    """
    try:
        lines = Path(proc_cgroup).read_text().splitlines()
    except OSError:
        return None
    v2_path = v1_path = None
    for line in lines:
        hierarchy, _, rest = line.partition(":")
        controllers, _, path = rest.partition(":")
        if hierarchy == "0" and controllers == "":
            v2_path = path
        elif "memory" in controllers.split(","):
            v1_path = path
    base = Path(root)
    if v2_path is not None:
        for directory in _candidates(base, v2_path):
            limit_file = directory / "memory.max"
            if limit_file.exists():
                limit = _read_int(limit_file)
                current = _read_int(directory / "memory.current")
                if limit is None or current is None:
                    return None
                return max(0, limit - current)
    if v1_path is not None:
        for directory in _candidates(base / "memory", v1_path):
            limit = _read_int(directory / "memory.limit_in_bytes")
            if limit is not None:
                if limit >= _V1_UNLIMITED:
                    return None
                usage = _read_int(directory / "memory.usage_in_bytes")
                return None if usage is None else max(0, limit - usage)
    return None


def _candidates(mount: Path, path: str) -> list[Path]:
    listed = mount / path.lstrip("/")
    return [listed, mount] if listed != mount else [mount]


def available_memory_mb() -> float:
    """What a new job can still use: min(host available memory, this cgroup's headroom), in MB."""
    available = psutil.virtual_memory().available
    headroom = cgroup_headroom_bytes()
    if headroom is not None:
        available = min(available, headroom)
    return available / MB


def process_tree_rss_mb(pid: int) -> float | None:
    """RSS of `pid` plus all its descendants, in MB; None if the process is gone.

    Descendants count because a job may start helpers (a DB client, a compressor) whose memory
    is just as much the job's.
    """
    try:
        root = psutil.Process(pid)
        total = root.memory_info().rss
        children = root.children(recursive=True)
    except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
        return None
    for child in children:
        try:
            total += child.memory_info().rss
        except (psutil.NoSuchProcess, psutil.ZombieProcess, psutil.AccessDenied):
            continue  # exited between listing and sampling
    return total / MB


def own_rss_mb() -> float:
    return psutil.Process(os.getpid()).memory_info().rss / MB
