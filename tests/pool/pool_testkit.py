"""Helpers for the pool tests: bounded waits, a private redis-server, free ports."""

from __future__ import annotations

import shutil
import signal
import subprocess
import tempfile
from collections.abc import Collection
from typing import Any

import psutil
import redis

# One definition of a bounded wait and of a free port for the whole test suite (tests/ is on sys.path).
from server_process import free_port, wait_for  # noqa: F401 - re-exported to the pool tests

from jobs import JobClient, Status


def wait_status(
    jobs: JobClient, job_id: str, statuses: Collection[Status] | Status, timeout: float
) -> dict[str, Any]:
    wanted = {Status(statuses)} if isinstance(statuses, str) else set(statuses)

    def probe() -> dict[str, Any] | None:
        status = jobs.status(job_id)
        return status if status and status["status"] in wanted else None

    try:
        return wait_for(probe, timeout, f"job {job_id} to be {'/'.join(sorted(wanted))}")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; status now: {jobs.status(job_id)}") from None


def pid_of(jobs: JobClient, job_id: str, timeout: float = 10) -> int:
    """The job's child pid, once the supervisor has written it."""
    return wait_for(lambda: (jobs.status(job_id) or {}).get("pid"), timeout, f"the child pid of job {job_id}")


def pid_gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


class RedisServer:
    """A throwaway redis-server of the test's own (no persistence) that can be killed and restarted."""

    def __init__(self) -> None:
        self.binary = shutil.which("redis-server")
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="jobs-redis-")
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        assert self.binary, "redis-server not installed"
        self.proc = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                self.dir,
                "--daemonize",
                "no",
                "--loglevel",
                "warning",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

        def answers() -> bool:
            try:
                return bool(redis.Redis(port=self.port, socket_connect_timeout=0.2).ping())
            except redis.RedisError:
                return False

        wait_for(answers, 10, f"redis-server on port {self.port}")

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(5)

    def close(self) -> None:
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


def kill_tree(pid: int) -> None:
    try:
        procs = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return
    for proc in procs:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass


__all__ = ["RedisServer", "free_port", "kill_tree", "pid_gone", "pid_of", "wait_for", "wait_status"]
