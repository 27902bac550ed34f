"""Per-job guards with real children: memory limit, soft limit, timeout, cancel, a child killed from outside."""

from __future__ import annotations

import os
import signal
import time

from jobs import TERMINAL, JobClient, JobKeys, Status
from support.pool_jobs import pid_of, wait_status
from support.processes import pid_gone
from support.waits import wait_for


def test_memory_hog_is_killed_with_its_peak_reported(redis_client, make_config, start_thread_supervisor) -> None:
    config = make_config(max_rss_mb=150)
    jobs = JobClient(redis_client, config)
    job_id = jobs.submit("hog", {"steps": 60})
    start_thread_supervisor(config)
    pid = wait_status(jobs, job_id, Status.STARTED, 10)["pid"] or wait_for(
        lambda: jobs.status(job_id)["pid"], 5, "the child's pid"
    )
    done = wait_status(jobs, job_id, TERMINAL, 20)
    assert done["error"]["code"] == "JOB_MEMORY_LIMIT", done
    assert "limit of 150 MB" in done["error"]["message"] and "peak RSS" in done["error"]["message"]
    assert done["peak_rss_mb"] > 150
    assert f"{done['peak_rss_mb']:.0f} MB" in done["error"]["message"]
    assert pid_gone(pid)


def test_soft_limit_fails_a_checking_job_cleanly(redis_client, make_config, start_thread_supervisor) -> None:
    config = make_config(max_rss_mb=300, soft_rss_fraction=0.5)
    jobs = JobClient(redis_client, config)
    job_id = jobs.submit("polite_hog", {"steps": 60})
    start_thread_supervisor(config)
    done = wait_status(jobs, job_id, TERMINAL, 20)
    assert done["error"]["code"] == "JOB_MEMORY_LIMIT", done
    assert "soft limit of 150 MB" in done["error"]["message"]  # the job stopped itself, before the hard limit
    assert "peak RSS" in done["error"]["message"] and done["peak_rss_mb"] < 300


def test_timeout_kills_the_child(redis_client, make_config, start_thread_supervisor) -> None:
    config = make_config(job_timeout_seconds=1.0)
    jobs = JobClient(redis_client, config)
    job_id = jobs.submit("sleeper", {"seconds": 30})
    start_thread_supervisor(config)
    pid = pid_of(jobs, job_id, 10)
    done = wait_status(jobs, job_id, TERMINAL, 10)
    assert done["error"]["code"] == "JOB_TIMEOUT" and "longer than 1 s" in done["error"]["message"]
    assert 1.0 <= done["run_seconds"] < 4
    wait_for(lambda: pid_gone(pid), 2, "the child to be gone")


def _cancel_running(redis_client, config, start_thread_supervisor, kind: str, payload: dict) -> float:
    jobs = JobClient(redis_client, config)
    job_id = jobs.submit(kind, payload)
    start_thread_supervisor(config)
    pid = pid_of(jobs, job_id, 10)
    keys = JobKeys(config.prefix, job_id)
    ready = keys.data("chunk:demo:1" if kind == "writer" else "ready")
    wait_for(lambda: redis_client.exists(ready), 10, "the job to be under way")
    result = jobs.cancel(job_id)
    cancelled_at = time.monotonic()
    assert (result.previous_status, result.cancelled) == (Status.STARTED, True)
    wait_for(lambda: pid_gone(pid), 1.0, f"child {pid} to be gone within 1 s of the cancel")
    took = time.monotonic() - cancelled_at
    assert took <= 1.0
    assert jobs.status(job_id)["status"] == Status.CANCELLED
    wait_for(lambda: redis_client.llen(f"{config.prefix}:running:{config.host_id}") == 0, 5, "running list cleared")
    left = sorted(k.decode() for k in redis_client.scan_iter(match=f"{config.prefix}:job:*", count=1000))
    assert left == [keys.job]  # data and request deleted, the hash remains to say so
    assert 0 < redis_client.pttl(keys.job) <= config.job_ttl_seconds * 1000
    return took


def test_cancel_a_running_job(redis_client, make_config, start_thread_supervisor) -> None:
    _cancel_running(redis_client, make_config(), start_thread_supervisor, "writer", {"chunks": 2, "hold": 30})


def test_cancel_a_job_that_ignores_sigterm(redis_client, make_config, start_thread_supervisor) -> None:
    took = _cancel_running(redis_client, make_config(kill_grace_seconds=5), start_thread_supervisor, "stubborn", {})
    assert took >= 0.4  # SIGTERM was ignored: it took the SIGKILL after the cancel grace


def test_child_killed_from_outside_is_reported(redis_client, make_config, start_thread_supervisor) -> None:
    config = make_config()
    jobs = JobClient(redis_client, config)
    job_id = jobs.submit("sleeper", {"seconds": 30})
    start_thread_supervisor(config)
    pid = pid_of(jobs, job_id, 10)
    os.kill(pid, signal.SIGKILL)
    done = wait_status(jobs, job_id, TERMINAL, 5)
    assert done["error"]["code"] == "JOB_WORKER_DIED"
    assert f"child pid {pid} died from signal SIGKILL" in done["error"]["message"]
    # the supervisor carries on
    after = jobs.submit("echo", {"after": True})
    assert wait_status(jobs, after, TERMINAL, 10)["status"] == Status.FINISHED
