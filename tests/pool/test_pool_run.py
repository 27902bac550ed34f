"""Jobs run by a real supervisor (on a thread here) in real child processes."""

from __future__ import annotations

import logging

import psutil

from jobs import TERMINAL, JobClient, JobKeys, Status
from support.pool_jobs import wait_status
from support.processes import pid_gone
from support.waits import wait_for


def test_queued_started_finished_with_result_and_progress(redis_client, make_config, start_thread_supervisor) -> None:
    config = make_config()
    jobs = JobClient(redis_client, config)
    job_id = jobs.submit("sleeper", {"seconds": 1.0})
    assert jobs.status(job_id)["status"] == Status.QUEUED
    start_thread_supervisor(config)
    wait_status(jobs, job_id, Status.STARTED, 10)
    # `started` is written when the job is taken, its pid once the child exists (a moment later).
    running = wait_for(lambda: (s := jobs.status(job_id)) and s.get("pid") and s, 10, "the child's pid")
    assert running["status"] == Status.STARTED
    assert running["host"] == config.host_id and running["pid"] and running["started_at"]
    assert psutil.pid_exists(running["pid"])
    assert psutil.Process(running["pid"]).cmdline()[-2:] == ["-m", "jobs.child"]

    def listed() -> dict | None:
        hosts = jobs.pool_state()["hosts"]
        rows = [r for h in hosts for r in h["running"] if r["job_id"] == job_id]
        return rows[0] if rows and rows[0]["rss_mb"] > 0 else None

    row = wait_for(listed, 5, "the running job in pool_state")
    assert row["pid"] == running["pid"]
    state = jobs.pool_state(config.host_id)["hosts"][0]
    assert state["alive"] and state["available_mb"] > 0 and state["worker_count"] == 2

    done = wait_status(jobs, job_id, TERMINAL, 15)
    assert done["status"] == Status.FINISHED, done
    assert done["result"]["ticks"] > 10
    assert done["progress"]["phase"] == "sleeping" and done["progress"]["done"] == done["result"]["ticks"]
    assert done["finished_at"] >= done["started_at"] >= done["created_at"]
    assert done["run_seconds"] >= 1.0 and done["peak_rss_mb"] > 5
    assert "host" not in done and "error" not in done
    wait_for(lambda: pid_gone(running["pid"]), 5, "the child to exit")
    assert redis_client.llen(f"{config.prefix}:running:{config.host_id}") == 0


def test_data_keys_notifications_and_job_ttl(redis_client, make_config, start_thread_supervisor) -> None:
    config = make_config(job_ttl_seconds=1.5)
    jobs = JobClient(redis_client, config)
    job_id = jobs.submit("writer", {"chunks": 3, "pause": 0.05})
    keys = JobKeys(config.prefix, job_id)
    with jobs.events(job_id) as events:  # subscribed before anything can happen
        start_thread_supervisor(config)
        seen = []
        while not seen or seen[-1]["event"] != "ended":
            event = events.wait(10)
            assert event is not None, f"no event after {seen}"
            seen.append(event)
    chunks = [e for e in seen if e["event"] == "chunk"]
    assert [(e["domain"], e["n"]) for e in chunks] == [("demo", 0), ("demo", 1), ("demo", 2)]
    assert seen[-1] == {"event": "ended", "status": "finished"}
    assert jobs.status(job_id)["result"] == {"chunks": 3}
    assert redis_client.get(keys.data("chunk:demo:2")) == b"[2]"
    assert redis_client.hget(keys.data("index"), "demo:chunks") == b"3"
    job_keys = list(redis_client.scan_iter(match=f"{config.prefix}:job:*", count=1000))
    assert len(job_keys) == 7  # hash, request, keyset, index, 3 chunks
    assert all(0 < redis_client.pttl(k) <= 1500 for k in job_keys)  # shortened to the job TTL at the end
    wait_for(lambda: not list(redis_client.scan_iter(match=f"{config.prefix}:job:*")), 5, "every job key to expire")


def test_never_more_than_worker_count_at_once(redis_client, make_config, start_thread_supervisor) -> None:
    config = make_config(worker_count=2)
    jobs = JobClient(redis_client, config)
    p = config.prefix
    payload = {
        "count_key": f"{p}:t:count",
        "max_key": f"{p}:t:max",
        "runs_key": f"{p}:t:runs",
        "runner_key": f"{p}:t:runner",
        "seconds": 0.4,
    }
    ids = [jobs.submit("counted", payload) for _ in range(7)]
    start_thread_supervisor(config)
    for job_id in ids:
        assert wait_status(jobs, job_id, TERMINAL, 30)["status"] == Status.FINISHED
    assert int(redis_client.get(f"{p}:t:max")) == 2
    assert int(redis_client.get(f"{p}:t:count")) == 0


def test_failures_carry_codes_and_messages(redis_client, make_config, start_thread_supervisor) -> None:
    kinds = {"missing": "no_such_module_for_jobs:run"}
    config = make_config(worker_count=2, result_max_bytes=1000, job_kinds={**make_config().job_kinds, **kinds})
    jobs = JobClient(redis_client, config)
    submitted = {
        "boom": jobs.submit("boom", {"message": "bad input"}),
        "coded": jobs.submit("coded", {"code": "TRACE_NO_DATA", "message": "nothing"}),
        "exits": jobs.submit("exits", {"code": 3}),
        "big": jobs.submit("big_result", {"size": 5000}),
        "missing": jobs.submit("missing", {}),
    }
    start_thread_supervisor(config)
    ended = {name: wait_status(jobs, i, TERMINAL, 20) for name, i in submitted.items()}
    assert all(s["status"] == Status.FAILED for s in ended.values()), ended
    assert ended["boom"]["error"] == {"code": "JOB_FAILED", "message": "ValueError: bad input"}
    assert ended["coded"]["error"] == {"code": "TRACE_NO_DATA", "message": "nothing"}
    assert ended["exits"]["error"]["code"] == "JOB_WORKER_DIED"
    assert "exited with code 3" in ended["exits"]["error"]["message"]
    assert ended["big"]["error"]["code"] == "JOB_FAILED" and "result_max_bytes" in ended["big"]["error"]["message"]
    assert ended["missing"]["error"]["code"] == "JOB_FAILED"
    assert "ModuleNotFoundError" in ended["missing"]["error"]["message"]


def test_cancel_after_the_end_changes_nothing(redis_client, make_config, start_thread_supervisor) -> None:
    config = make_config()
    jobs = JobClient(redis_client, config)
    job_id = jobs.submit("echo", {"x": 1})
    start_thread_supervisor(config)
    wait_status(jobs, job_id, Status.FINISHED, 10)
    before = redis_client.hgetall(JobKeys(config.prefix, job_id).job)
    result = jobs.cancel(job_id)
    assert (result.previous_status, result.cancelled) == (Status.FINISHED, False)
    assert redis_client.hgetall(JobKeys(config.prefix, job_id).job) == before
    assert redis_client.exists(JobKeys(config.prefix, job_id).request) == 1


def test_supervisor_holds_jobs_while_memory_is_short(redis_client, make_config, start_thread_supervisor, caplog):
    caplog.set_level(logging.INFO, logger="jobs")
    submit_config = make_config()
    jobs = JobClient(redis_client, submit_config)
    job_id = jobs.submit("echo", {})
    start_thread_supervisor(make_config(host_id=submit_config.host_id, min_available_mb=10**9))

    def holding() -> bool:
        hosts = jobs.pool_state()["hosts"]
        return bool(hosts) and hosts[0]["holding_for_memory"] is True

    wait_for(holding, 5, "the supervisor to report a memory hold")
    wait_for(lambda: "event=memory_hold " in caplog.text, 5, "the memory_hold log line")
    status = jobs.status(job_id)
    assert status["status"] == Status.QUEUED and status["queue_position"] == 0
    assert caplog.text.count("event=memory_hold ") == 1  # logged once per episode, not per round


def test_progress_is_throttled_and_flushed(redis_client, make_config, start_thread_supervisor) -> None:
    config = make_config()
    jobs = JobClient(redis_client, config)
    job_id = jobs.submit("sleeper", {"seconds": 1.2})  # calls progress() every ~20 ms
    with jobs.events(job_id) as events:
        start_thread_supervisor(config)
        seen = []
        while not seen or seen[-1]["event"] != "ended":
            event = events.wait(10)
            assert event is not None, seen
            seen.append(event)
    progress = [e for e in seen if e["event"] == "progress"]
    assert 3 <= len(progress) <= 1.2 / 0.25 + 2  # ~60 calls, at most ~4 writes a second
    final = jobs.status(job_id)
    assert final["progress"]["done"] == final["result"]["ticks"]  # the last value was flushed at the end


def test_a_clean_stop_leaves_no_pool_key_without_a_ttl(redis_client, make_config, start_thread_supervisor) -> None:
    config = make_config()
    jobs = JobClient(redis_client, config)
    job_id = jobs.submit("sleeper", {"seconds": 0.2})
    supervisor = start_thread_supervisor(config)
    assert wait_status(jobs, job_id, TERMINAL, 15)["status"] == Status.FINISHED
    hosts_key = f"{config.prefix}:hosts"
    # While the supervisor runs, the hosts set is there, with a TTL.
    assert redis_client.sismember(hosts_key, config.host_id)
    assert 0 < redis_client.pttl(hosts_key) <= config.started_ttl_seconds * 1000
    supervisor.stop()
    assert supervisor.join(15)
    keys = [k.decode() for k in redis_client.scan_iter(match=f"{config.prefix}:*")]
    assert hosts_key not in keys and f"{config.prefix}:host:{config.host_id}" not in keys
    assert [k for k in keys if redis_client.pttl(k) < 0] == [], keys
