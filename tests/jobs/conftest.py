"""Fixtures for the pool tests: configs under the test's own prefix, supervisors that always stop."""

from __future__ import annotations

import multiprocessing
import sys
import uuid
from collections.abc import Callable, Iterator
from multiprocessing import resource_tracker
from pathlib import Path

import psutil
import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
# This directory is named `jobs` too. Under pytest's default import mode `tests/` lands on sys.path, where
# `tests/jobs` would pass for a namespace package `jobs` unless the real package is reachable by path as
# well (a regular package anywhere on sys.path wins over namespace portions). An editable install's
# finder comes after the path scan, so the project root is added explicitly and an impostor dropped.
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))
if "jobs" in sys.modules and getattr(sys.modules["jobs"], "__file__", None) is None:
    del sys.modules["jobs"]
if str(HERE) not in sys.path:  # jobs_samples / jobs_testkit, for this process; children get import_paths
    sys.path.insert(0, str(HERE))

from jobs_samples import ALL_KINDS  # noqa: E402
from jobs_testkit import kill_tree  # noqa: E402

from jobs import PoolConfig, Supervisor, run_supervisor  # noqa: E402


@pytest.fixture
def make_config(redis_url: str, redis_prefix: str) -> Callable[..., PoolConfig]:
    """Small, fast settings; each call gets a fresh host id unless one is given."""

    def make(**overrides: object) -> PoolConfig:
        values: dict[str, object] = {
            "redis_url": redis_url,
            "prefix": redis_prefix,
            "job_kinds": ALL_KINDS,
            "worker_count": 2,
            "queue_max": 50,
            "job_ttl_seconds": 60,
            "job_timeout_seconds": 20,
            "max_rss_mb": 600,
            "min_available_mb": 0,
            "shutdown_grace_seconds": 2,
            "heartbeat_seconds": 0.5,
            "host_id": f"h{uuid.uuid4().hex[:8]}",
            "rss_sample_interval": 0.1,
            "kill_grace_seconds": 0.5,
            "orphan_scan_heartbeats": 2,
            "import_paths": (str(HERE),),
        }
        values.update(overrides)
        return PoolConfig(**values)  # type: ignore[arg-type]

    return make


@pytest.fixture
def start_thread_supervisor() -> Iterator[Callable[[PoolConfig], Supervisor]]:
    """Start supervisors on threads of the test process; all are stopped and joined afterwards."""
    started: list[Supervisor] = []

    def start(config: PoolConfig) -> Supervisor:
        supervisor = Supervisor(config)
        supervisor.start_thread()
        started.append(supervisor)
        return supervisor

    yield start
    for supervisor in started:
        supervisor.stop()
    for supervisor in started:
        assert supervisor.join(30), "supervisor thread did not stop"


@pytest.fixture
def start_process_supervisor() -> Iterator[Callable[[PoolConfig], multiprocessing.Process]]:
    """Start supervisors as daemonic spawn processes — the way Sanic's worker manager runs them."""
    started: list[multiprocessing.Process] = []
    context = multiprocessing.get_context("spawn")

    def start(config: PoolConfig) -> multiprocessing.Process:
        process = context.Process(target=run_supervisor, kwargs={"config": config}, daemon=True)
        process.start()
        started.append(process)
        return process

    yield start
    for process in started:
        if process.is_alive():
            process.terminate()
    for process in started:
        process.join(15)
        if process.is_alive() and process.pid:
            kill_tree(process.pid)
            process.join(5)


@pytest.fixture(autouse=True)
def no_leftover_processes() -> Iterator[None]:
    """Whatever a test started and left running (children, grandchildren) is killed after it."""
    me = psutil.Process()
    before = {p.pid for p in me.children(recursive=True)}
    yield
    # multiprocessing's resource tracker is shared by the whole session: it is not a leftover.
    tracker = getattr(resource_tracker._resource_tracker, "_pid", None)
    for proc in me.children(recursive=True):
        if proc.pid not in before and proc.pid != tracker:
            kill_tree(proc.pid)
