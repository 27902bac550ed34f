"""The service starts and stops its job supervisor, in every way it can be run.

Real server subprocesses, real supervisor and children, real Redis:
- `sanic-trace serve`: the supervisor is a separate process managed by Sanic's worker manager;
- `sanic sanic_trace.app:create_app --factory` (Sanic's own CLI): the same;
- `sanic-trace serve --single-process`: no worker manager, the supervisor is a thread.
In each, a job runs to the end; then SIGTERM to the service stops the supervisor, and a job
still running after the shutdown grace is failed JOB_INTERRUPTED, its child gone.
"""

from __future__ import annotations

import signal
import sqlite3
from pathlib import Path

import psutil
import pytest
import redis

import jobs
from support.processes import pid_gone
from support.servers import SANIC_CLI, TRACE_CLI, ServerProcess
from support.settings import jobs_env
from support.trace_jobs import submit, wait_job
from support.waits import wait_for
from support.warehouses import DemoWarehouses, container_ids

MODES = {
    "managed": None,  # ServerProcess's default: sanic-trace serve
    "sanic-cli": [SANIC_CLI, "sanic_trace.app:create_app", "--factory", "--host", "127.0.0.1", "--port", "{port}"],
    "single-process": [TRACE_CLI, "serve", "--single-process", "--host", "127.0.0.1", "--port", "{port}"],
}


@pytest.fixture(scope="module")
def warehouse(demo_warehouses: DemoWarehouses) -> Path:
    return demo_warehouses(600, seed=3)


@pytest.mark.parametrize("mode", list(MODES))
def test_service_runs_jobs_and_its_stop_interrupts_them(
    mode: str, warehouse: Path, redis_url: str, redis_prefix: str
) -> None:
    env = jobs_env(
        warehouse,
        redis_url,
        redis_prefix,
        TRACE_ASYNC_CID_THRESHOLD=3,
        TRACE_STREAM_BATCH_SIZE=20,
        # Every stored chunk is followed by a pause: the slow job below outlives the grace.
        TRACE_JOB_STEP_DELAY_SECONDS=0.4,
        TRACE_JOB_SHUTDOWN_GRACE_SECONDS=1,
    )
    client = redis.Redis.from_url(redis_url)
    server = ServerProcess(env, argv=MODES[mode])
    try:
        server.start()

        def supervisor_pid_reported() -> int | None:
            hosts = server.client.get("/health").json()["pool"]["hosts"]
            return next((h["supervisor_pid"] for h in hosts if h["host"] == server.env["TRACE_HOST_ID"]), None)

        # The heartbeat comes before the first sample round that carries the pid.
        supervisor_pid = wait_for(supervisor_pid_reported, 10, "the supervisor's first sample round")
        server_pid = server.proc.pid
        if mode == "single-process":
            assert supervisor_pid == server_pid, "without a worker manager the supervisor is a thread"
        else:
            assert supervisor_pid in {p.pid for p in psutil.Process(server_pid).children(recursive=True)}

        with sqlite3.connect(warehouse) as db:
            ids = container_ids(db, 60)
        quick = submit(server, ids[:4], ["holds"])
        assert wait_job(server, quick, "finished", 60)["status"] == "finished"

        slow = submit(server, ids, ["history", "materials"])
        wait_job(server, slow, "started", 60)
        child_pids = wait_for(server.job_child_pids, 20, "the slow job's child to run")

        server.proc.send_signal(signal.SIGTERM)
        server.proc.wait(30)
        wait_for(lambda: pid_gone(supervisor_pid), 10, "the supervisor to stop with the service")
        for pid in child_pids:
            wait_for(lambda pid=pid: pid_gone(pid), 10, f"job child {pid} to be gone")
        final = jobs.JobClient(client, redis_prefix).status(slow)
        assert final["status"] == "failed" and final["error"]["code"] == "JOB_INTERRUPTED", final
    finally:
        server.close()
        client.close()


# Log lines of the start-up, in order: the supervisor is registered (main_process_ready, before any
# process starts), a worker starts, it is ready (its acknowledgement may still be on the way).
STARTUP_MARKERS = ("job_supervisor_managed", "Starting worker", "Worker ready")


@pytest.mark.parametrize("marker", STARTUP_MARKERS)
@pytest.mark.parametrize("mode", ["managed", "sanic-cli"])
def test_a_stop_during_start_up_ends_the_service_cleanly(
    mode: str, marker: str, warehouse: Path, redis_url: str, redis_prefix: str
) -> None:
    # Sanic 25.12 alone spins forever (or crashes) on a SIGTERM before its workers acknowledged
    # their start; sanic_trace.compat holds the signal until they have. SIGTERM goes out the
    # moment the marker is in the log: as early in the start-up as a test can aim.
    server = ServerProcess(jobs_env(warehouse, redis_url, redis_prefix), argv=MODES[mode], stop_timeout=20)
    server.launch()
    try:
        wait_for(lambda: marker.encode() in server.log_path.read_bytes(), 30, f"{marker!r} in the log", 0.002)
        assert server.proc is not None
        server.terminate()
        try:
            code = server.proc.wait(20)
        except Exception:  # noqa: BLE001 - the failure message carries the log
            raise AssertionError(f"no exit within 20 s of SIGTERM\n{server.log_tail()}") from None
        assert code == 0, server.log_tail()
        assert b"Traceback" not in server.log_path.read_bytes(), server.log_tail()
    finally:
        server.close()
