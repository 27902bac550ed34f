"""Fixtures for the pool tests: configs under the test's own prefix, supervisors that always stop."""

from __future__ import annotations

import multiprocessing
import uuid
from collections.abc import Callable, Iterator
from multiprocessing import resource_tracker
from pathlib import Path

import psutil
import pytest

from jobs import PoolConfig, Supervisor, run_supervisor
from support.pool_samples import ALL_KINDS
from support.processes import kill_tree

# The test process imports support.* from tests/ (pyproject's pythonpath); the job children reach
# support.pool_samples through import_paths.
TESTS_DIR = Path(__file__).resolve().parents[1]


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
            "import_paths": (str(TESTS_DIR),),
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
