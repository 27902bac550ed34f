"""`sanic-trace loadtest`: the body checkers, the target rule, and short runs against a real server.

The server is `sanic-trace serve --single-process` on a generated 2,000-lot warehouse, started
once for the module, with a small TRACE_ASYNC_CID_THRESHOLD so that `large` (and the bigger
`msd` ranges) really go through jobs, and a small chunk size with a per-chunk delay so a
large job's stream is long enough to be cut by the run's final deadline.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from sanic_trace.cli import main
from support.redis_keys import own_prefix
from support.servers import TRACE_CLI, ServerProcess
from support.settings import service_env
from support.warehouses import DemoWarehouses
from trace_tools.loadtest import target
from trace_tools.loadtest.calls import Budget, Caller, RequestFailed
from trace_tools.loadtest.checks import (
    BAD_JSON,
    COUNT_MISMATCH,
    PROTOCOL_ERROR,
    STREAM_TRUNCATED,
    CheckError,
    InlineEventsChecker,
    LineSplitter,
    NdjsonChecker,
    ServerReportedError,
)
from trace_tools.loadtest.stats import Stats
from trace_tools.percentiles import percentile

# --- the NDJSON checker -------------------------------------------------------------------------


def _line(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj).encode()


def _good_stream() -> list[dict[str, Any]]:
    return [
        {"type": "progress", "status": "queued", "progress": {}},
        {"type": "meta", "job_id": "x", "profile": "mid_section_defect", "domains": ["a", "b"], "cid_count": 3},
        {"type": "domain_start", "domain": "a"},
        {"type": "records", "domain": "a", "batch": 0, "count": 2, "data": [{"i": 1}, {"i": 2}]},
        {"type": "progress", "status": "started", "progress": {"done": 1}},
        {"type": "records", "domain": "a", "batch": 1, "count": 1, "data": [{"i": 3}]},
        {"type": "domain_end", "domain": "a", "total_records": 3},
        {"type": "domain_start", "domain": "b"},
        {"type": "domain_end", "domain": "b", "total_records": 0},
        {"type": "aggregation", "data": {}},
        {"type": "complete", "total_records": 3, "elapsed_seconds": 0.5},
    ]


def _check(lines: list[dict[str, Any]]) -> Any:
    checker = NdjsonChecker()
    for obj in lines:
        checker.line(_line(obj))
    return checker.finish()


def test_ndjson_checker_accepts_a_consistent_stream() -> None:
    totals = _check(_good_stream())
    assert totals.domains == {"a": 3, "b": 0} and totals.records == 3


@pytest.mark.parametrize(
    ("index", "change", "code"),
    [
        (3, {"count": 3}, COUNT_MISMATCH),  # records count != len(data)
        (5, {"data": [{"i": 3}, {"i": 4}]}, COUNT_MISMATCH),  # data longer than count
        (6, {"total_records": 4}, COUNT_MISMATCH),  # domain_end total != sum of counts
        (10, {"total_records": 2}, COUNT_MISMATCH),  # complete total != sum
        (5, {"batch": 2}, PROTOCOL_ERROR),  # a batch skipped
        (7, {"domain": "c"}, PROTOCOL_ERROR),  # a domain the meta line did not announce
        (3, {"count": "2"}, PROTOCOL_ERROR),
    ],
)
def test_ndjson_checker_rejects_counts_that_do_not_add_up(index: int, change: dict[str, Any], code: str) -> None:
    lines = _good_stream()
    lines[index] = {**lines[index], **change}
    with pytest.raises(CheckError) as caught:
        _check(lines)
    assert caught.value.code == code


def test_ndjson_checker_rejects_truncation_bad_lines_and_order() -> None:
    with pytest.raises(CheckError) as caught:
        _check(_good_stream()[:-1])  # no complete line
    assert caught.value.code == STREAM_TRUNCATED
    with pytest.raises(CheckError) as caught:
        NdjsonChecker().line(b'{"type": "meta", ')
    assert caught.value.code == BAD_JSON
    with pytest.raises(CheckError) as caught:
        _check([_good_stream()[2]])  # domain_start before meta
    assert caught.value.code == PROTOCOL_ERROR
    with pytest.raises(CheckError) as caught:
        _check([*_good_stream(), {"type": "progress", "status": "finished", "progress": {}}])
    assert caught.value.code == PROTOCOL_ERROR  # nothing may follow the last line


def test_ndjson_error_line_is_the_servers_code() -> None:
    lines = [*_good_stream()[:4], {"type": "error", "code": "JOB_MEMORY_LIMIT", "message": "killed"}]
    with pytest.raises(ServerReportedError) as caught:
        _check(lines)
    assert caught.value.code == "JOB_MEMORY_LIMIT"


def test_line_splitter_joins_pieces_and_bounds_lines() -> None:
    body = b"".join(_line(o) + b"\n" for o in _good_stream())
    splitter = LineSplitter()
    lines = [line for start in range(0, len(body), 7) for line in splitter.feed(body[start : start + 7])]
    splitter.finish()
    assert [json.loads(line) for line in lines] == _good_stream()
    cut = LineSplitter()
    cut.feed(b'{"type": "complete"')
    with pytest.raises(CheckError) as caught:
        cut.finish()
    assert caught.value.code == STREAM_TRUNCATED
    with pytest.raises(CheckError):
        LineSplitter(max_line_bytes=10).feed(b"x" * 11)


# --- the inline body checker --------------------------------------------------------------------


def _inline_body(counts: dict[str, int], declared: dict[str, int] | None = None, tail: str = "") -> bytes:
    declared = declared or counts
    parts = []
    for domain, n in counts.items():
        # Strings holding JSON punctuation: a record boundary must not be guessed from characters.
        data = ",".join(json.dumps({"CONTAINERID": f"c{i}", "NOTE": 'a},{"b": [1,2]}\\"', "QTY": i}) for i in range(n))
        parts.append(f'"{domain}":{{"data":[{data}],"count":{declared[domain]}}}')
    return ('{"stage":"events","results":{' + ",".join(parts) + '},"aggregation":null' + tail + "}").encode()


def _feed(body: bytes, step: int) -> Any:
    checker = InlineEventsChecker()
    for start in range(0, len(body), step):
        checker.feed(body[start : start + step])
    return checker.finish()


@pytest.mark.parametrize("step", [1, 5, 64, 1 << 20])
def test_inline_checker_counts_records_in_any_pieces(step: int) -> None:
    totals = _feed(_inline_body({"history": 30, "materials": 0, "holds": 12}), step)
    assert totals.domains == {"history": 30, "materials": 0, "holds": 12}
    assert totals.records == 42


def test_inline_checker_mismatch_truncation_and_partial_failure() -> None:
    with pytest.raises(CheckError) as caught:
        _feed(_inline_body({"history": 30, "holds": 2}, {"history": 30, "holds": 3}), 100)
    assert caught.value.code == COUNT_MISMATCH
    body = _inline_body({"history": 30})
    with pytest.raises(CheckError) as caught:
        _feed(body[: len(body) // 2], 100)
    assert caught.value.code == STREAM_TRUNCATED
    with pytest.raises(CheckError) as caught:
        _feed(body + b"{}", 100)
    assert caught.value.code == PROTOCOL_ERROR
    partial = _inline_body({"history": 3}, tail=',"code":"EVENTS_PARTIAL_FAILURE","failed_domains":["holds"]')
    with pytest.raises(ServerReportedError) as reported:
        _feed(partial, 100)
    assert reported.value.code == "EVENTS_PARTIAL_FAILURE"


def test_caller_counts_a_mismatch_as_an_error_not_a_success() -> None:
    """The whole path: a 202, then a live stream whose records line lies about its count."""
    stream = _good_stream()
    stream[5] = {**stream[5], "count": 5000}  # the records line of a short last chunk, claiming a full one
    ndjson = b"".join(_line(o) + b"\n" for o in stream)
    job = {"job_id": "j", "stream_url": "/api/trace/job/j/stream", "status_url": "/api/trace/job/j"}
    inline = _inline_body({"history": 4}, {"history": 5})

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/trace/events":
            ids = json.loads(request.content)["container_ids"]
            if len(ids) > 1:
                return httpx.Response(202, json={"stage": "events", "async": True, **job})
            return httpx.Response(200, content=inline, headers={"Content-Type": "application/json"})
        if request.url.path.endswith("/stream"):
            return httpx.Response(200, content=ndjson, headers={"Content-Type": "application/x-ndjson"})
        raise AssertionError(f"unexpected request {request.url}")

    async def scenario() -> Stats:
        stats = Stats()
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler), base_url="http://test") as client:
            caller = Caller(client, stats, Budget(10, time.monotonic() + 60), "t")
            for ids in (["a", "b"], ["a"]):
                with pytest.raises(RequestFailed) as failed:
                    await caller.events({"profile": "mid_section_defect", "container_ids": ids})
                assert failed.value.code == COUNT_MISMATCH
        return stats

    stats = asyncio.run(scenario())
    assert stats.errors == {COUNT_MISMATCH: 2}
    assert stats.failure_total() == 2
    assert stats.endpoints["job stream"].errors == 1 and stats.endpoints["events (inline)"].errors == 1
    assert stats.jobs["finished"] == 0 and stats.streams["job"].count == 0


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50 and percentile(values, 99) == 99 and percentile(values, 100) == 100
    assert percentile([3.0], 95) == 3.0 and percentile([], 50) is None


# --- the target rule ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:8080", "http://127.9.8.7:1/", "http://[::1]:8080", "http://[::ffff:127.0.0.1]:1",
     "http://localhost:1"],
)
def test_loopback_targets_are_accepted(url: str) -> None:
    assert target.check_target(url, allow_remote=False).loopback


@pytest.mark.parametrize(
    "url", ["http://10.0.0.1:1", "https://192.0.2.7/", "http://[::ffff:10.0.0.1]:80", "http://[2001:db8::1]:80"]
)
def test_remote_targets_are_refused(url: str) -> None:
    with pytest.raises(target.TargetRefused, match="--allow-remote"):
        target.check_target(url, allow_remote=False)
    assert not target.check_target(url, allow_remote=True).loopback


def test_a_name_is_checked_on_every_address_and_pinned(monkeypatch: pytest.MonkeyPatch) -> None:
    answers = {"mixed.example": ["10.1.2.3", "127.0.0.1"], "local.example": ["127.0.1.1"]}
    monkeypatch.setattr(target, "resolve", lambda host, port: answers[host])
    with pytest.raises(target.TargetRefused):
        target.check_target("http://mixed.example:8080", allow_remote=False)
    pinned = target.check_target("http://local.example:8080/base/", allow_remote=False)
    assert pinned.connect_url == "http://127.0.1.1:8080/base" and pinned.host_header == "local.example:8080"


def test_remote_url_is_refused_before_any_connection(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def no_connections(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the harness tried to connect")

    monkeypatch.setattr(socket.socket, "connect", no_connections)
    monkeypatch.setattr(socket.socket, "connect_ex", no_connections)
    monkeypatch.setattr(httpx.AsyncClient, "send", no_connections)
    started = time.monotonic()
    code = main(["loadtest", "--url", "http://10.0.0.1:1", "--users", "1", "--duration", "1", "--quiet"])
    assert code == 2
    assert time.monotonic() - started < 2
    assert "not loopback" in capsys.readouterr().err


# --- against a real server ----------------------------------------------------------------------

LARGE_IDS = 1000
SERVER_ENV = {
    "TRACE_ASYNC_CID_THRESHOLD": "500",
    "TRACE_STREAM_BATCH_SIZE": "500",
    "TRACE_JOB_STEP_DELAY_SECONDS": "0.05",
    "TRACE_MIN_AVAILABLE_MB": "0",  # a busy shared machine must not turn jobs away
    "TRACE_JOB_SHUTDOWN_GRACE_SECONDS": "1",
    # Every virtual user comes from 127.0.0.1: per-IP rate limits would throttle the run itself.
    "TRACE_RATE_LIMIT_SEED_RESOLVE": "0",
    "TRACE_RATE_LIMIT_LINEAGE": "0",
    "TRACE_RATE_LIMIT_EVENTS": "0",
    "TRACE_RATE_LIMIT_JOBS": "0",
}


@pytest.fixture(scope="module")
def server(demo_warehouses: DemoWarehouses, redis_url: str) -> Iterator[ServerProcess]:
    """A real service on a 2,000-lot warehouse, with its own Redis key prefix (deleted afterwards)."""
    # Module-wide, like conftest's redis_prefix (function-scoped): one server serves every run here.
    with own_prefix(redis_url) as prefix:
        env = service_env(demo_warehouses(2000), redis_url, prefix, **SERVER_ENV)
        argv = [TRACE_CLI, "serve", "--single-process", "--host", "127.0.0.1", "--port", "{port}"]
        with ServerProcess(env, argv=argv, stop_timeout=15) as process:
            yield process


def _run(server: ServerProcess, tmp_path: Path, *extra: str) -> tuple[int, dict[str, Any]]:
    report_path = tmp_path / "report.json"
    code = main(["loadtest", "--url", server.base_url, "--users", "2", "--large-ids", str(LARGE_IDS),
                 "--quiet", "--report", str(report_path), *extra])
    server.track_tree()  # job children run in sessions of their own: remembered to be killed at the end
    return code, json.loads(report_path.read_text())


def _no_errors(report: dict[str, Any]) -> None:
    assert report["errors"]["total"] == 0, json.dumps(report["errors"], indent=2)


@pytest.mark.parametrize("scenario", ["dashboard", "msd", "large", "mixed"])
def test_short_run_of_each_scenario_is_clean(server: ServerProcess, tmp_path: Path, scenario: str) -> None:
    code, report = _run(server, tmp_path, "--scenario", scenario, "--duration", "3", "--grace", "20")
    _no_errors(report)
    assert code == 0
    sessions = report["run"]["sessions"]
    assert sum(o.get("completed", 0) for o in sessions.values()) > 0, sessions
    assert report["run"]["requests"] > 0 and report["run"]["requests_per_s"] > 0
    assert report["endpoints"]["seed-resolve"]["p50_ms"] > 0 and report["endpoints"]["lineage"]["count"] > 0
    assert report["discovery"]["msd_window_lots"] > 0 and report["discovery"]["lot_ids"] > 0
    streams = report["streams"]
    if scenario == "dashboard":
        assert streams["inline"]["count"] > 0 and streams["inline"]["records"] > 0
    if scenario in ("large", "mixed"):
        assert report["discovery"]["large_pool_ids"] >= LARGE_IDS
    if scenario == "large":
        assert report["responses"]["accepted_202"] > 0
        assert report["jobs"]["finished"] > 0 and streams["job"]["records"] > 0
        assert report["jobs"]["first_records_p50_s"] is not None
        assert "large sessions answered inline" not in report["notes"]
    psutil_memory = report["memory"]["psutil"]
    assert psutil_memory["sampled"] and psutil_memory["server_pid"] == server.proc.pid
    assert psutil_memory["server_mb"]["peak"] > 0
    assert report["memory"]["health"]["polls"] > 0


def test_final_deadline_cuts_streams_and_cancels_their_jobs(server: ServerProcess, tmp_path: Path) -> None:
    # 2,000 ids: about 50 chunks at 0.05 s each, far longer than the 1 s + 1 s the run may take.
    started = time.monotonic()
    code, report = _run(server, tmp_path, "--scenario", "large", "--large-ids", "2000",
                        "--duration", "1", "--grace", "1")
    assert time.monotonic() - started < 15  # discovery + 2 s + cancelling
    assert report["run"]["stopped_by"] == "final deadline"
    assert report["run"]["elapsed_s"] < 3
    assert report["streams"]["aborted_at_deadline"] >= 1
    assert report["jobs"]["cancelled_at_end"] >= 1
    _no_errors(report)  # a cut is not an error
    assert code == 1  # but a run in which no session completed is not a pass


def test_request_cap_stops_each_user(server: ServerProcess, tmp_path: Path) -> None:
    code, report = _run(server, tmp_path, "--scenario", "dashboard", "--duration", "30", "--max-requests", "6")
    assert code == 0
    assert report["run"]["requests"] <= 2 * (6 + 2)  # a 202 already received is still followed (stream + status)
    assert report["run"]["elapsed_s"] < 10
    assert report["notes"].get("users stopped by --max-requests") == 2
