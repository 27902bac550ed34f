"""The end of a run: the JSON report (every figure) and the text summary (the ones to look at first).

docs/loadtest.md explains each field. The JSON is the contract for scripts comparing runs:
`report_version` changes when a field changes meaning.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from trace_tools.loadtest.discovery import SeedPool
from trace_tools.loadtest.health import HealthTimeline
from trace_tools.loadtest.rss import RssTimeline
from trace_tools.loadtest.stats import BACKPRESSURE_CODES, Stats
from trace_tools.percentiles import percentile

if TYPE_CHECKING:
    from trace_tools.loadtest.runner import RunConfig

REPORT_VERSION = 1


def _seconds(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def build_report(
    *,
    config: RunConfig,
    pool: SeedPool,
    stats: Stats,
    rss_timeline: RssTimeline | None,
    health: HealthTimeline,
    started_at: datetime,
    stopped_by: str,
    jobs_cancelled: int,
) -> dict[str, Any]:
    elapsed = stats.elapsed()
    status = stats.status_counts
    return {
        "tool": "sanic-trace loadtest",
        "report_version": REPORT_VERSION,
        "started_at": started_at.isoformat(timespec="seconds"),
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "target": {
            "url": config.target.url,
            "loopback": config.target.loopback,
            "server_version": pool.health.get("version"),
        },
        "config": config.as_dict(),
        "discovery": pool.summary(),
        "run": {
            "elapsed_s": round(elapsed, 2),
            "stopped_by": stopped_by,
            "requests": stats.requests,
            "requests_per_s": round(stats.requests / elapsed, 2) if elapsed > 0 else None,
            "sessions": {name: dict(outcomes) for name, outcomes in sorted(stats.sessions.items())},
        },
        "endpoints": {name: e.summary() for name, e in stats.endpoints.items()},
        "status_counts": {str(code): n for code, n in sorted(status.items())},
        "responses": {"accepted_202": status[202], "throttled_429": status[429], "unavailable_503": status[503]},
        "errors": {
            "total": stats.error_total(),
            "failures": stats.failure_total(),
            "backpressure": stats.error_total() - stats.failure_total(),
            "by_code": dict(stats.errors.most_common()),
            "samples": stats.error_samples,
        },
        "streams": {
            "inline": stats.streams["inline"].summary(elapsed),
            "job": stats.streams["job"].summary(elapsed),
            "aborted_at_deadline": stats.aborted_streams,
        },
        "jobs": {
            "submitted": stats.jobs["submitted"],
            "finished": stats.jobs["finished"],
            "failed": stats.jobs["failed"],
            "cancelled_at_end": jobs_cancelled,
            "first_records_p50_s": _seconds(percentile(stats.job_first_records, 50)),
            "first_records_p95_s": _seconds(percentile(stats.job_first_records, 95)),
            "complete_p50_s": _seconds(percentile(stats.job_total, 50)),
            "complete_p95_s": _seconds(percentile(stats.job_total, 95)),
        },
        "memory": {
            "psutil": rss_timeline.summary() if rss_timeline else {"sampled": False, "reason": "not asked"},
            "health": health.summary(),
        },
        "notes": dict(stats.notes),
    }


def write_report(path: str | os.PathLike[str], report: dict[str, Any]) -> None:
    """Write atomically: a reader (or a crashed run) never sees half a report."""
    target = Path(path)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, target)


def _fmt(value: Any, digits: int = 0) -> str:
    if value is None:
        return "-"
    return f"{value:,.{digits}f}" if isinstance(value, (int, float)) else str(value)


def format_summary(report: dict[str, Any]) -> str:
    cfg, run, errors = report["config"], report["run"], report["errors"]
    lines = [
        f"sanic-trace loadtest: {cfg['scenario']}, {cfg['users']} users, {cfg['duration_s']:g} s "
        f"against {report['target']['url']} (server {report['target']['server_version']})",
        f"elapsed {run['elapsed_s']} s (stopped by {run['stopped_by']}); requests {run['requests']:,} "
        f"= {_fmt(run['requests_per_s'], 1)}/s",
    ]
    for name, outcomes in run["sessions"].items():
        lines.append(f"  sessions {name}: " + ", ".join(f"{n} {what}" for what, n in sorted(outcomes.items())))
    lines.append(
        f"errors {errors['total']} (failures {errors['failures']}, backpressure {errors['backpressure']})"
    )
    for code, n in errors["by_code"].items():
        sample = (errors["samples"].get(code) or [""])[0]
        kind = " [backpressure]" if code in BACKPRESSURE_CODES else ""
        lines.append(f"  {code}{kind}: {n}   e.g. {sample[:160]}")
    status = report["status_counts"]
    lines.append("HTTP status: " + ", ".join(f"{code} x{n}" for code, n in status.items()))
    lines.append(f"{'endpoint':<18}{'count':>7}{'errors':>7}{'p50 ms':>10}{'p95 ms':>10}{'p99 ms':>10}{'max ms':>10}")
    for name, e in report["endpoints"].items():
        lines.append(
            f"{name:<18}{e['count']:>7}{e['errors']:>7}{_fmt(e['p50_ms'], 1):>10}{_fmt(e['p95_ms'], 1):>10}"
            f"{_fmt(e['p99_ms'], 1):>10}{_fmt(e['max_ms'], 1):>10}"
        )
    for kind, label in (("inline", "inline events bodies"), ("job", "job NDJSON streams")):
        s = report["streams"][kind]
        lines.append(
            f"{label}: {s['count']} read, {s['records']:,} records, {s['payload_mb']} MB "
            f"({s['wire_mb']} MB on the wire) = {_fmt(s['mb_per_s'], 2)} MB/s, {_fmt(s['records_per_s'])} records/s; "
            f"per stream p50 {_fmt(s['per_stream_mb_per_s_p50'], 2)} MB/s"
        )
    jobs = report["jobs"]
    lines.append(
        f"jobs: {jobs['submitted']} submitted, {jobs['finished']} read to complete, {jobs['failed']} failed, "
        f"{jobs['cancelled_at_end']} cancelled at the end; first records p50 {_fmt(jobs['first_records_p50_s'], 2)} s"
        f" p95 {_fmt(jobs['first_records_p95_s'], 2)} s; complete p50 {_fmt(jobs['complete_p50_s'], 2)} s "
        f"p95 {_fmt(jobs['complete_p95_s'], 2)} s; "
        f"streams cut at the deadline {report['streams']['aborted_at_deadline']}"
    )
    lines.extend(_memory_lines(report["memory"]))
    for note, n in report["notes"].items():
        lines.append(f"note: {note}: {n}")
    return "\n".join(lines)


def _memory_lines(memory: dict[str, Any]) -> list[str]:
    ps, health = memory["psutil"], memory["health"]
    lines = []
    if ps.get("sampled"):
        server, jobs = ps["server_mb"], ps["job_children_mb"]
        lines.append(
            f"memory (psutil, server pid {ps['server_pid']}, every {ps['interval_s']} s): server RSS "
            f"{_fmt(server['first'])} MB at start, peak {_fmt(server['peak'])}, {_fmt(server['last'])} at the end; "
            f"job children peak {_fmt(jobs['peak_total'])} MB together, {_fmt(jobs['peak_single'])} MB one child, "
            f"{jobs['children_seen']} seen, {jobs['peak_concurrent']} at once"
        )
    else:
        lines.append(f"memory (psutil): not sampled: {ps.get('reason')}")
    lines.append(
        f"/health: {health['polls']} polls, p50 {_fmt(health['latency_p50_ms'], 1)} ms, "
        f"p99 {_fmt(health['latency_p99_ms'], 1)} ms, {health['not_ok']} not ok; worker RSS peak "
        f"{_fmt(health['worker_rss_mb_peak'])} MB; pool running peak {health['pool_running_peak']} "
        f"({_fmt(health['pool_running_rss_mb_peak'])} MB), queued peak {health['pool_queued_peak']}"
    )
    return lines
