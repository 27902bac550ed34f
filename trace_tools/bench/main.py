"""The bench's orchestration: the warehouse, the cases one after another, the server checks, the report.

Modules: plan (options, where the outputs go), checkout (git in the working directory: default
paths, code stamp), warehouse, space (Redis db, prefix, settings), sampler (RSS), children
(spawn + sampling), ours / baseline / floor (the variants), http_phase with server, streams,
load_clients and http_checks, profiling, msd_case with msd_baseline (the MSD analysis at scale),
targets (targets.toml and its overrides), report, plot.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path
from typing import Any

import redis

from sanic_trace.settings import Settings, SettingsError, load_settings
from sanic_trace.trace.events import EventsRequest, default_domains
from sanic_trace.trace.params import QUERY_TOOL
from trace_tools.bench import warehouse
from trace_tools.bench.baseline import run_baseline
from trace_tools.bench.checkout import code_version
from trace_tools.bench.children import ChildFailed, run_in_child, variant_figures
from trace_tools.bench.floor import run_floor
from trace_tools.bench.machine import load_average, machine_facts
from trace_tools.bench.msd_case import MsdStageFailed, run_msd_case
from trace_tools.bench.ours import JobRunFailed, PoolRunner
from trace_tools.bench.plan import PLAIN_PROFILE, Plan, resolve_plan
from trace_tools.bench.report import Reporter
from trace_tools.bench.sampler import RssTrace
from trace_tools.bench.space import bench_environment, delete_matching, delete_prefix


def run(args: argparse.Namespace) -> int:
    try:
        plan = resolve_plan(args)
    except ValueError as exc:  # a bad --targets file or --target
        print(f"sanic-trace bench: {exc}", file=sys.stderr)
        return 2
    client = redis.Redis.from_url(plan.redis_url)
    try:
        client.ping()
    except redis.RedisError as exc:
        print(f"sanic-trace bench: no Redis at {plan.redis_url}: {exc}", file=sys.stderr)
        return 2
    reporter = Reporter(plan, _command_line())
    reporter.outputs()
    try:
        _run(plan, client, reporter)
    except KeyboardInterrupt:
        print("\nsanic-trace bench: interrupted; everything it started is stopped", file=sys.stderr)
        return 130
    except (SettingsError, ValueError) as exc:
        print(f"sanic-trace bench: {exc}", file=sys.stderr)
        return 2
    except (ChildFailed, JobRunFailed, MsdStageFailed) as exc:
        print(f"sanic-trace bench: a variant failed: {exc}", file=sys.stderr)
        return 1
    finally:
        deleted = delete_prefix(client, plan.prefix)
        reporter.note(f"deleted {deleted:,} Redis keys under {plan.prefix}:")
        client.close()
    return 0


def _command_line() -> str:
    if Path(sys.argv[0]).name in ("sanic-trace", "cli.py"):
        return shlex.join(["sanic-trace", *sys.argv[1:]])
    return "sanic-trace bench (called in-process: see options)"


def _run(plan: Plan, client: redis.Redis, reporter: Reporter) -> None:
    doc = reporter.doc
    doc["machine"] = machine_facts(client)
    doc["code"] = code_version()
    doc["load_avg"]["start"] = load_average()
    reporter.note(f"load average at start: {doc['load_avg']['start']} on {doc['machine']['cpus']} CPUs")

    facts = warehouse.ensure_warehouse(plan.warehouse, plan.lots, plan.seed, progress=not plan.quiet)
    facts["page_cache_warm_s"] = warehouse.warm_page_cache(plan.warehouse)
    doc["warehouse"] = facts
    reporter.note(
        f"warehouse {facts['path']}: {facts['containers']:,} containers, {facts['history_rows']:,} history rows"
    )
    settings = load_settings(bench_environment(plan.warehouse, plan.redis_url, plan.prefix, "bench"))
    doc["settings"] = _settings_summary(settings, plan)

    if not plan.msd_only:
        _run_cases(plan, settings, client, reporter)
    if plan.msd:
        try:
            doc["msd"] = run_msd_case(plan, settings, client, reporter)
        finally:
            delete_prefix(client, plan.prefix)
        reporter.msd_done(doc["msd"])
        reporter.save()
    doc["load_avg"]["end"] = load_average()
    reporter.finish()


def _run_cases(plan: Plan, settings: Settings, client: redis.Redis, reporter: Reporter) -> None:
    """The cases (ours / baseline / floor per size and domain set), the profile, the server checks."""
    doc = reporter.doc
    all_ids = warehouse.container_ids(plan.warehouse, max(plan.sizes), plan.seed)
    runner = PoolRunner(settings, plan.sample_interval)
    try:
        for size in plan.sizes:
            for domains in plan.domain_sets:
                case = _run_case(plan, settings, runner, client, all_ids[:size], domains)
                doc["cases"].append(case)
                reporter.case_done(case)
                reporter.save()  # a long run interrupted later still leaves what it measured
        if plan.domain_costs:
            doc["domain_costs"] = _domain_costs(plan, settings, all_ids[: max(plan.sizes)])
            reporter.domain_costs_done(doc["domain_costs"])
            reporter.save()
        if plan.profile:
            # The middle size: the shares do not depend on it, and the largest would double the profile's time.
            size = plan.sizes[len(plan.sizes) // 2]
            doc["profile"] = _profile(plan, settings, all_ids[:size], plan.domain_sets[0])
            reporter.profile_done(doc["profile"])
    finally:
        runner.close()
        delete_prefix(client, plan.prefix)

    if plan.http:
        from trace_tools.bench.http_phase import run_http_phase

        doc["http"] = run_http_phase(plan, settings, client, all_ids[: max(plan.sizes)], reporter)
        reporter.save()


def _settings_summary(settings: Settings, plan: Plan) -> dict[str, Any]:
    return {
        "fetchmany_size": settings.db_fetchmany_size,
        "in_batch_size": settings.db_in_batch_size,
        "chunk_size": settings.stream_batch_size,
        "worker_count": settings.worker_count,
        "job_max_rss_mb": settings.job_max_rss_mb,
        "rss_sample_interval_s": plan.sample_interval,
        "supervisor_rss_sample_interval_s": 0.2,
        "redis_url": plan.redis_url,
        "prefix": plan.prefix,
    }


def _ratio(top: float | None, bottom: float | None) -> float | None:
    return top / bottom if top and bottom else None


def _run_case(
    plan: Plan, settings: Settings, runner: PoolRunner, client: redis.Redis, ids: list[str], domains: list[str]
) -> dict[str, Any]:
    profile = PLAIN_PROFILE
    payload = {**EventsRequest(profile, ids, domains).to_payload(), "settings": settings}
    traces: dict[str, RssTrace] = {}
    variants: dict[str, dict[str, Any]] = {}

    floor = run_in_child(run_floor, payload, sample_interval=plan.sample_interval, timeout_s=plan.timeout_s)
    variants["floor"], traces["floor"] = variant_figures(floor.result, floor.trace, floor.wall_s), floor.trace

    ours, trace = runner.run(profile, ids, domains, plan.timeout_s)
    variants["ours"], traces["ours"] = variant_figures(ours, trace, ours["wall_s"]), trace
    delete_matching(client, f"{plan.prefix}:job:{{{ours['job_id']}}}*")  # its chunks are not needed again

    baseline_keys = f"{plan.prefix}:baseline:{len(ids)}-{'+'.join(domains)}"
    task = {**payload, "redis_url": plan.redis_url, "key_prefix": baseline_keys, "ttl_s": settings.job_ttl_seconds}
    base = run_in_child(run_baseline, task, sample_interval=plan.sample_interval, timeout_s=plan.timeout_s)
    variants["baseline"], traces["baseline"] = variant_figures(base.result, base.trace, base.wall_s), base.trace
    delete_prefix(client, baseline_keys)

    counts = {name: v["domains"] for name, v in variants.items()}
    case: dict[str, Any] = {
        "cids": len(ids),
        "domains": domains,
        "profile": profile,
        "variants": variants,
        "records_agree": counts["ours"] == counts["baseline"] == counts["floor"],
        "ratios": {
            "rss_ours_over_baseline": variants["ours"]["peak_rss_mb"] / variants["baseline"]["peak_rss_mb"],
            "rate_ours_over_floor": variants["ours"]["records_per_s"] / variants["floor"]["records_per_s"],
            "rate_ours_over_baseline": variants["ours"]["records_per_s"] / variants["baseline"]["records_per_s"],
            "cpu_rate_ours_over_floor": _ratio(
                variants["ours"]["records_per_cpu_s"], variants["floor"]["records_per_cpu_s"]
            ),
        },
    }
    if len(ids) == max(plan.sizes):
        case["rss_series"] = {name: trace.series() for name, trace in traces.items()}
    return case


def _domain_costs(plan: Plan, settings: Settings, ids: list[str]) -> dict[str, Any]:
    """Every query_tool domain's query over the same ids, fetched and only counted (the floor's way):
    what each domain costs the database per id, without the service's own work."""
    domains = default_domains(QUERY_TOOL)
    payload = {**EventsRequest(QUERY_TOOL, ids, domains).to_payload(), "settings": settings}
    child = run_in_child(run_floor, payload, sample_interval=plan.sample_interval, timeout_s=plan.timeout_s)
    costs = {
        domain: {
            "records": child.result["domains"][domain],
            "s": seconds,
            "ms_per_id": seconds * 1000 / len(ids),
        }
        for domain, seconds in child.result["domain_s"].items()
    }
    return {"cids": len(ids), "domains": costs}


def _profile(plan: Plan, settings: Settings, ids: list[str], domains: list[str]) -> dict[str, Any]:
    from sanic_trace.pool import pool_config
    from trace_tools.bench.profiling import profile_events_job

    task = {
        "config": pool_config(settings),
        "payload": EventsRequest(PLAIN_PROFILE, ids, domains).to_payload(),
        "top": 25,
    }
    started = time.perf_counter()
    child = run_in_child(profile_events_job, task, sample_interval=plan.sample_interval, timeout_s=plan.timeout_s * 3)
    return {**child.result, "cids": len(ids), "domains": domains, "wall_s": time.perf_counter() - started}
