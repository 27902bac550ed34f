"""One job's child process as the supervisor sees it: `python -m jobs.child`, its pipes, its RSS.

subprocess, not multiprocessing: Sanic runs managed processes as daemonic multiprocessing
processes, and those may not have multiprocessing children. A fresh interpreter also inherits
no Redis or DB connection by construction. The child leads its own session (process group), so
a kill reaches the helpers a job starts, and a ^C on the service's terminal does not.

stdin carries the order and then stays open — its EOF tells the child the supervisor is gone;
stdout carries the child's one-line report (jobs.child), read without blocking.
"""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
from pathlib import Path

import psutil

from jobs.config import PoolConfig
from jobs.memory import process_tree_rss_mb
from jobs.outcome import ChildExit, parse_report
from jobs.protocol import FRAME

# The directory holding the `jobs` package: put on the child's PYTHONPATH so `-m jobs.child`
# resolves to this very code, installed or not.
JOBS_ROOT = str(Path(__file__).resolve().parent.parent)
# Ask the kernel for a 1 MiB report pipe (Linux); the default 64 KiB would make a large result
# wait for the next round's read.
F_SETPIPE_SZ = 1031


class ChildProcess:
    """A running child. Spawn it, poll it, sample it, end it, and collect its exit."""

    def __init__(self, proc: subprocess.Popen) -> None:
        assert proc.stdin is not None and proc.stdout is not None
        self.proc = proc
        self.pid = proc.pid
        self._output = bytearray()
        self._fd: int | None = proc.stdout.fileno()
        os.set_blocking(self._fd, False)
        try:
            import fcntl

            fcntl.fcntl(self._fd, F_SETPIPE_SZ, 1 << 20)
        except (ImportError, OSError):
            pass
        self.rss_mb = 0.0
        self.peak_rss_mb = 0.0

    @classmethod
    def spawn(cls, config: PoolConfig, job_id: str, kind: str) -> ChildProcess:
        """Start a child and hand it its order (raises OSError when no process can be started)."""
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (JOBS_ROOT, env.get("PYTHONPATH", "")) if p)
        proc = subprocess.Popen(
            [sys.executable, "-m", "jobs.child"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            close_fds=True,
            start_new_session=True,
            env=env,
        )
        child = cls(proc)
        order = pickle.dumps({"config": config, "job_id": job_id, "kind": kind})
        try:
            proc.stdin.write(FRAME.pack(len(order)) + order)  # type: ignore[union-attr]
            proc.stdin.flush()  # type: ignore[union-attr]
        except BrokenPipeError:
            pass  # the child died at once; collecting it reports that
        return child

    @property
    def fd(self) -> int | None:
        """The report pipe while it is open (to wait on), else None."""
        return self._fd

    def exited(self) -> bool:
        """Read what the child wrote so far; True once it has exited."""
        self._read()
        return self.proc.poll() is not None

    def sample(self) -> None:
        """Measure the RSS of the child and its descendants, keeping the peak."""
        rss = process_tree_rss_mb(self.pid)
        if rss is not None:
            self.rss_mb = rss
            self.peak_rss_mb = max(self.peak_rss_mb, rss)

    def terminate(self) -> None:
        """SIGTERM to the child's process group: the job may stop cleanly."""
        self._signal_group(signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL to the group, and to descendants that left it: they still belong to the job."""
        try:
            strays = psutil.Process(self.pid).children(recursive=True)
        except psutil.Error:
            strays = []
        self._signal_group(signal.SIGKILL)
        for proc in strays:
            try:
                proc.kill()
            except psutil.Error:
                pass

    def collect(self) -> ChildExit:
        """After exit: the last of the report, both pipes closed, and what the exit says."""
        self._read()
        if self._fd is not None:  # a descendant still holds the pipe: what we have is all we take
            self._close_output()
        try:
            self.proc.stdin.close()  # type: ignore[union-attr]
        except OSError:
            pass
        return ChildExit(self.pid, self.proc.returncode, parse_report(bytes(self._output)), self.peak_rss_mb)

    def _read(self) -> None:
        while self._fd is not None:
            try:
                chunk = os.read(self._fd, 1 << 16)
            except BlockingIOError:
                return
            except OSError:
                chunk = b""
            if not chunk:
                self._close_output()
                return
            self._output += chunk

    def _close_output(self) -> None:
        self.proc.stdout.close()  # type: ignore[union-attr]
        self._fd = None

    def _signal_group(self, sig: int) -> None:
        try:
            os.killpg(self.pid, sig)
        except ProcessLookupError:
            pass
        except PermissionError:
            try:
                self.proc.send_signal(sig)
            except ProcessLookupError:
                pass
