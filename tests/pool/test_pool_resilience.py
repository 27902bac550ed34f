"""Failures around the pool: dead supervisors, two supervisors on one Redis, Redis restarts, shutdown."""

from __future__ import annotations

import logging
import os
import signal

import pytest
import redis

from jobs import TERMINAL, JobClient, JobKeys, PoolKeys, Status
from support.pool_jobs import pid_of, wait_status
from support.processes import pid_gone
from support.servers import RedisServer
from support.waits import wait_for


def test_dead_supervisor_jobs_are_orphaned_by_another_host(
    redis_client, make_config, start_process_supervisor, start_thread_supervisor
) -> None:
    first = make_config()
    jobs = JobClient(redis_client, first)
    job_id = jobs.submit("sleeper", {"seconds": 60})
    process = start_process_supervisor(first)
    child = pid_of(jobs, job_id, 15)
    os.kill(process.pid, signal.SIGKILL)
    process.join(5)
    wait_for(lambda: pid_gone(child), 5, "the child to notice its supervisor is gone and exit")
    assert jobs.status(job_id)["status"] == Status.STARTED  # nobody left to say otherwise

    start_thread_supervisor(make_config())  # another host on the same Redis
    done = wait_status(jobs, job_id, TERMINAL, 10)
    assert done["error"]["code"] == "JOB_ORPHANED"
    assert f"host {first.host_id} stopped heartbeating" in done["error"]["message"]
    pool = PoolKeys(first.prefix)
    wait_for(lambda: not redis_client.sismember(pool.hosts, first.host_id), 5, "the dead host to be forgotten")
    assert redis_client.llen(pool.running(first.host_id)) == 0
    assert 0 < redis_client.pttl(JobKeys(first.prefix, job_id).job) <= first.job_ttl_seconds * 1000


def test_restarted_host_orphans_what_its_predecessor_left(
    redis_client, make_config, start_process_supervisor, start_thread_supervisor
) -> None:
    config = make_config()
    jobs = JobClient(redis_client, config)
    pool = PoolKeys(config.prefix)
    job_id = jobs.submit("sleeper", {"seconds": 60})
    process = start_process_supervisor(config)
    pid_of(jobs, job_id, 15)
    os.kill(process.pid, signal.SIGKILL)
    process.join(5)
    # A job the dead supervisor had taken but not yet started: it must run, not be failed.
    taken = jobs.submit("echo", {"taken": True})
    assert redis_client.lmove(pool.queue, pool.running(config.host_id), "LEFT", "RIGHT") == taken.encode()

    start_thread_supervisor(config)  # same host id: waits for the old heartbeat to lapse, then cleans up
    done = wait_status(jobs, job_id, TERMINAL, 10)
    assert done["error"]["code"] == "JOB_ORPHANED" and "restarted" in done["error"]["message"]
    assert wait_status(jobs, taken, TERMINAL, 10)["status"] == Status.FINISHED


def test_two_supervisors_run_every_job_exactly_once(redis_client, make_config, start_process_supervisor) -> None:
    hosts = [make_config(worker_count=2), make_config(worker_count=2)]
    p = hosts[0].prefix
    payload = {
        "count_key": f"{p}:t:count",
        "max_key": f"{p}:t:max",
        "runs_key": f"{p}:t:runs",
        "runner_key": f"{p}:t:runner",
        "seconds": 0.05,
    }
    for config in hosts:
        start_process_supervisor(config)
    jobs = JobClient(redis_client, hosts[0])
    ids = [jobs.submit("counted", payload) for _ in range(40)]
    for job_id in ids:
        assert wait_status(jobs, job_id, TERMINAL, 60)["status"] == Status.FINISHED
    runs = {k.decode(): int(v) for k, v in redis_client.hgetall(f"{p}:t:runs").items()}
    assert runs == {job_id: 1 for job_id in ids}
    runners = {v.decode() for v in redis_client.hgetall(f"{p}:t:runner").values()}
    assert runners == {c.host_id for c in hosts}
    assert int(redis_client.get(f"{p}:t:max")) <= 4


@pytest.mark.skipif(not RedisServer().binary, reason="redis-server binary not installed")
def test_redis_restart_mid_job(make_config, start_thread_supervisor, caplog) -> None:
    caplog.set_level(logging.INFO, logger="jobs")
    server = RedisServer()
    server.start()
    try:
        config = make_config(redis_url=server.url, worker_count=1)
        client = redis.Redis.from_url(server.url, socket_connect_timeout=1)
        jobs = JobClient(client, config)
        job_id = jobs.submit("redis_heavy", {"seconds": 60})
        supervisor = start_thread_supervisor(config)
        child = pid_of(jobs, job_id, 15)

        server.kill()
        wait_for(lambda: pid_gone(child), 5, "the child to end once Redis is gone")
        wait_for(lambda: "event=redis_lost" in caplog.text, 5, "the supervisor to notice the outage")
        assert supervisor.join(1.5) is False  # still looping, retrying with backoff
        server.start()  # same port, empty: the job's keys are gone

        done = wait_status(jobs, job_id, TERMINAL, 15)
        assert done["error"]["code"] == "JOB_FAILED" and "lost Redis" in done["error"]["message"], done
        assert done["kind"] == "redis_heavy" and done["started_at"]  # rebuilt from the supervisor's copy
        assert 0 < client.pttl(JobKeys(config.prefix, job_id).job) <= config.job_ttl_seconds * 1000
        after = jobs.submit("echo", {"after": "restart"})
        assert wait_status(jobs, after, TERMINAL, 15)["status"] == Status.FINISHED
        assert caplog.text.count("event=redis_lost") == 1  # once per outage, not once per retry
        assert "event=redis_restored" in caplog.text
        client.close()
    finally:
        server.close()


def test_graceful_shutdown_lets_short_jobs_end_and_interrupts_the_rest(
    redis_client, make_config, start_thread_supervisor
) -> None:
    grace = 3.0
    config = make_config(worker_count=2, shutdown_grace_seconds=grace)
    jobs = JobClient(redis_client, config)
    short = jobs.submit("sleeper", {"seconds": 0.6})
    long = jobs.submit("sleeper", {"seconds": 60})
    supervisor = start_thread_supervisor(config)
    long_pid = pid_of(jobs, long, 15)
    # Stop only once the short job is inside its function: a child's interpreter start-up can take
    # over a second on a loaded machine, and the grace is meant for the work, not the start-up.
    for job_id in (short, long):
        wait_for(
            lambda job_id=job_id: (jobs.status(job_id) or {})["progress"].get("phase"),
            15,
            f"job {job_id} to report progress",
        )
    supervisor.stop()
    assert supervisor.join(grace + 0.5 + 4), "stop() took longer than grace + kill grace"
    assert jobs.status(short)["status"] == Status.FINISHED
    interrupted = jobs.status(long)
    assert interrupted["error"]["code"] == "JOB_INTERRUPTED", interrupted
    assert pid_gone(long_pid)
    pool = PoolKeys(config.prefix)
    assert redis_client.exists(pool.heartbeat(config.host_id), pool.pool_state(config.host_id)) == 0


def test_sigterm_stops_a_supervisor_process_gracefully(redis_client, make_config, start_process_supervisor) -> None:
    config = make_config(shutdown_grace_seconds=0.5)
    jobs = JobClient(redis_client, config)
    job_id = jobs.submit("sleeper", {"seconds": 60})
    process = start_process_supervisor(config)  # daemonic, spawned: as Sanic's worker manager runs it
    child = pid_of(jobs, job_id, 15)
    process.terminate()
    process.join(10)
    assert process.exitcode == 0
    assert jobs.status(job_id)["error"]["code"] == "JOB_INTERRUPTED"
    assert pid_gone(child)
