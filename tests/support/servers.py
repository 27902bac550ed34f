"""Servers the tests run as subprocesses: the service (`ServerProcess`) and a private redis-server.

    with ServerProcess(env={...}) as server:       # waits for /health (deadline), or fails
        server.client.post("/api/trace/events", json=...)
    # SIGTERM to the service, SIGKILL after a deadline; every process of its tree is gone.

Every wait has a deadline. The server's output goes to a log file whose tail is added to
start-up failures. Job children run in their own sessions, so the tree is recorded while the
service runs (`track_tree`) and anything left of it after the stop is killed. The service in a
subprocess is the only place where the server's own memory is measured.

`RedisServer` is a throwaway redis-server of a test's own that can be killed and restarted.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psutil
import redis

from support.waits import wait_for

# The command lines installed next to this interpreter: the service's, and Sanic's own.
TRACE_CLI = str(Path(sys.executable).with_name("sanic-trace"))
SANIC_CLI = str(Path(sys.executable).with_name("sanic"))
# Settings of the service that must never leak in from the environment running the tests.
_SCRUBBED_PREFIXES = ("TRACE_", "DB_", "SANIC_")
_SCRUBBED = {"REDIS_URL"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]




class ServerProcess:
    def __init__(
        self,
        env: dict[str, str],
        *,
        start_timeout: float = 30.0,
        stop_timeout: float = 8.0,
        expect_healthy: bool = True,
        argv: list[str] | None = None,
    ) -> None:
        """`argv` replaces `sanic-trace serve` (e.g. Sanic's own CLI); {port} in it is filled in."""
        self.port = free_port()
        self.argv = argv
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.expect_healthy = expect_healthy
        base = {k: v for k, v in os.environ.items() if k not in _SCRUBBED and not k.startswith(_SCRUBBED_PREFIXES)}
        self.env = {
            **base,
            "TRACE_HOST_ID": f"test-{uuid.uuid4().hex[:12]}",
            "TRACE_MIN_AVAILABLE_MB": "0",
            "TRACE_SUPERVISOR_HEARTBEAT_SECONDS": "0.5",
            "TRACE_JOB_SHUTDOWN_GRACE_SECONDS": "1",
            "TRACE_LOG_LEVEL": "INFO",
            **env,
        }
        self.log_dir = tempfile.mkdtemp(prefix="sanic-trace-e2e-")
        self.log_path = Path(self.log_dir) / "server.log"
        self.proc: subprocess.Popen | None = None
        self._terminated = False
        self.known: dict[int, psutil.Process] = {}
        self.client = httpx.Client(base_url=self.base_url, timeout=30.0)

    # --- life cycle ---------------------------------------------------------------------------
    def start(self) -> ServerProcess:
        return self.launch().wait_ready()

    def launch(self) -> ServerProcess:
        """Start the process without waiting for it (see wait_ready)."""
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [a.format(port=self.port) for a in self.argv]
                if self.argv
                else [TRACE_CLI, "serve", "--host", "127.0.0.1", "--port", str(self.port)],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        return self

    def wait_ready(self) -> ServerProcess:
        try:
            wait_for(self._answers, self.start_timeout, f"the server on port {self.port} to answer /health")
        except AssertionError as exc:
            self.stop()
            raise AssertionError(f"{exc}\n--- server log ---\n{self.log_tail()}") from None
        self.track_tree()
        return self

    def _answers(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(f"the server exited with {self.proc.returncode}\n{self.log_tail()}")
        try:
            response = self.client.get("/health", timeout=2.0)
        except httpx.HTTPError:
            return False
        if not self.expect_healthy:
            return True
        body = response.json()
        # Healthy, and this host's supervisor is alive (it takes jobs from now on).
        return response.status_code == 200 and any(
            h.get("alive") for h in body.get("pool", {}).get("hosts", []) if h.get("host") == self.env["TRACE_HOST_ID"]
        )

    def track_tree(self) -> list[psutil.Process]:
        """Remember every process of the service's tree now (job children included)."""
        if self.proc is None:
            return []
        try:
            root = psutil.Process(self.proc.pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []
        for proc in procs:
            self.known.setdefault(proc.pid, proc)
        return procs

    def stop(self) -> None:
        """SIGTERM; SIGKILL to the process group after `stop_timeout`; then kill what is left of the tree.

        A SIGTERM that reaches Sanic's main process while it still waits for its workers' start-up
        acknowledgement (it can come a little after the first request is served) makes it loop
        forever (sanic 25.12, WorkerManager.wait_for_ack re-queues the shutdown message): that is
        what the SIGKILL deadline is for.
        """
        self.client.close()
        if self.proc is None:
            return
        self.terminate()
        if self.proc.poll() is None:
            try:
                self.proc.wait(self.stop_timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        # Job children lead their own sessions: kill whatever of the recorded tree is left.
        leftovers = []
        for proc in self.known.values():
            try:
                if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                    proc.kill()
                    leftovers.append(proc)
            except psutil.NoSuchProcess:
                pass
        psutil.wait_procs(leftovers, timeout=5)
        self.proc = None

    def terminate(self) -> None:
        """Send SIGTERM (once), remembering the tree first; stop() waits for the end."""
        if self.proc is None or self.proc.poll() is not None or self._terminated:
            return
        self.track_tree()
        self.proc.send_signal(signal.SIGTERM)
        self._terminated = True

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.log_dir, ignore_errors=True)

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def log_tail(self, chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return "(no log)"

    # --- helpers for tests -------------------------------------------------------------------
    def job_child_pids(self) -> list[int]:
        """Pids of running job children (`python -m jobs.child`)."""
        pids = []
        for proc in self.track_tree():
            try:
                if "jobs.child" in " ".join(proc.cmdline()):
                    pids.append(proc.pid)
            except psutil.NoSuchProcess:
                pass
        return pids


@contextmanager
def running_server(env: dict[str, str], **kwargs: Any) -> Iterator[ServerProcess]:
    server = ServerProcess(env, **kwargs)
    try:
        yield server.start()
    finally:
        server.close()


@contextmanager
def running_servers(*envs: dict[str, str], **kwargs: Any) -> Iterator[list[ServerProcess]]:
    """Several servers started and stopped side by side (one start-up and one stop time, not n)."""
    servers = [ServerProcess(env, **kwargs) for env in envs]
    try:
        for server in servers:
            server.launch()
        for server in servers:
            server.wait_ready()
        yield servers
    finally:
        for server in servers:
            server.terminate()
        for server in servers:
            server.close()


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
