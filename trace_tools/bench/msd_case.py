"""The MSD case: a backward mid-section-defect analysis over the warehouse's whole span (issue 11, "Scale").

Three parts, one after the other, so that nothing else of the bench runs beside each:

1. **Stage by stage through HTTP**, against a real `sanic-trace serve --single-process` of its own,
   as the dashboard's MSD page drives it: seed-resolve (station, dates) → lineage of the seeds →
   events with the analysis (the MSD profile's body: the seeds as `container_ids` and
   `seed_container_ids`, the dates; 202 → a job, followed through `GET /api/trace/job/<id>`
   until it ends) → re-aggregation of the finished analysis with a new loss-reason filter,
   a few times. Each stage: its time, its body bytes, and the server process's RSS before,
   after and at its peak (the server alone; the job runs in a child of its own, whose peak the
   job status gives as `peak_rss_mb`).
2. **The same job with and without the analysis**, through the bench's own pool supervisor
   (`ours.PoolRunner`), each child followed by the same RSS sampler: the MSD job (payload as the
   HTTP layer builds it) and a plain `query_tool` job over the same containers the analysis
   reads — the seeds' closure, taken from the lineage stage and checked against the MSD job's
   own `cid_count` — and the same domains. Record counts must agree.
3. **The seed's baseline** (`msd_baseline.py`) in a spawn child with the same sampler: every row
   of both domains over the same containers held, grouped, then attributed. Its machine
   attribution is checked against the MSD job's.

The server runs with TRACE_ASYNC_CID_THRESHOLD=1 so that the events stage is a job at any size
(at 114,000 seeds it is one anyway); every other setting is the bench's environment.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import psutil
import redis
import ujson

from jobs import ACTIVE, JobKeys, Status
from sanic_trace.msd.run import normalise_params
from sanic_trace.msd.storage import aggregation_key
from sanic_trace.results.layout import INDEX_SUFFIX, ResultIndex
from sanic_trace.settings import Settings
from sanic_trace.trace.events import EventsRequest
from sanic_trace.trace.params import MSD
from trace_tools.bench.children import run_in_child, variant_figures
from trace_tools.bench.msd_baseline import DOMAINS, run_msd_baseline
from trace_tools.bench.ours import PoolRunner
from trace_tools.bench.plan import Plan
from trace_tools.bench.report import Reporter
from trace_tools.bench.server import ServerProcess
from trace_tools.bench.space import bench_environment, delete_matching
from trace_tools.percentiles import percentile

# The demo warehouse's whole span (sanic_trace.demo.generator: 150 days of test track-ins from
# 2026-01-05) at its detection station.
START_DATE, END_DATE, STATION = "2026-01-05", "2026-06-03", "測試"
REAGGREGATION_FILTER = "OPEN 開路"
MB = 2**20
HTTP_TIMEOUT = httpx.Timeout(30.0, read=600.0)
POLL_S = 0.2
SERVER_SAMPLE_S = 0.05


class MsdStageFailed(RuntimeError):
    """A stage of the MSD case answered something other than what it must."""


class ServerRss:
    """The RSS of the server process alone (not its job children), around each stage."""

    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)

    def mb(self) -> float:
        return self.process.memory_info().rss / MB

    @contextmanager
    def stage(self, out: dict[str, Any]) -> Iterator[None]:
        before = self.mb()
        peak = [before]
        stop = threading.Event()

        def sample() -> None:
            while not stop.wait(SERVER_SAMPLE_S):
                try:
                    peak[0] = max(peak[0], self.mb())
                except psutil.Error:
                    return

        sampler = threading.Thread(target=sample, name="bench-server-rss", daemon=True)
        sampler.start()
        try:
            yield
        finally:
            stop.set()
            sampler.join(5)
            after = self.mb()
            out["server_rss_mb"] = {"before": before, "after": after, "peak": max(peak[0], after)}


def _checked(response: httpx.Response, expected: int, what: str) -> httpx.Response:
    if response.status_code != expected:
        raise MsdStageFailed(f"{what}: HTTP {response.status_code} (expected {expected}): {response.text[:500]}")
    return response


def _timed(http: httpx.Client, method: str, path: str, **kwargs: Any) -> tuple[httpx.Response, float]:
    started = time.perf_counter()
    response = http.request(method, path, **kwargs)
    return response, time.perf_counter() - started


def _body_figures(response: httpx.Response, seconds: float) -> dict[str, Any]:
    return {
        "seconds": seconds,
        "body_bytes": len(response.content),  # as the client holds it
        "wire_bytes": response.num_bytes_downloaded,  # as sent (gzip when the server compressed it)
        "content_encoding": response.headers.get("content-encoding", "identity"),
        "x_cache": response.headers.get("x-cache"),
    }


def _msd_params() -> dict[str, Any]:
    return {"start_date": START_DATE, "end_date": END_DATE, "station": STATION}


def seed_resolve(http: httpx.Client, rss: ServerRss) -> tuple[dict[str, Any], list[str]]:
    out: dict[str, Any] = {}
    with rss.stage(out):
        body = {"profile": MSD, "params": _msd_params()}
        response, seconds = _timed(http, "POST", "/api/trace/seed-resolve", json=body)
    _checked(response, 200, "seed-resolve")
    seeds = [seed["container_id"] for seed in response.json()["seeds"]]
    if not seeds:
        raise MsdStageFailed(f"seed-resolve found no lots at {STATION} from {START_DATE} to {END_DATE}")
    return {**out, **_body_figures(response, seconds), "seeds": len(seeds)}, seeds


def lineage(http: httpx.Client, rss: ServerRss, seeds: list[str]) -> tuple[dict[str, Any], list[str]]:
    """The lineage stage; and the seeds' closure (seeds ∪ their ancestors), sorted: what the analysis reads."""
    out: dict[str, Any] = {}
    with rss.stage(out):
        body = {"profile": MSD, "container_ids": seeds, "params": {"direction": "backward"}}
        response, seconds = _timed(http, "POST", "/api/trace/lineage", json=body)
    _checked(response, 200, "lineage")
    result = response.json()
    closure = set(seeds)
    for ancestors in result["ancestors"].values():
        closure.update(ancestors)
    figures = {
        **out,
        **_body_figures(response, seconds),
        "total_ancestor_count": result.get("total_ancestor_count"),
        "closure_containers": len(closure),
    }
    return figures, sorted(closure)


def _cid_count(client: redis.Redis, prefix: str, job_id: str) -> int | None:
    """The number of containers a finished job read (its result index's meta)."""
    index = ResultIndex.parse(client.hgetall(JobKeys(prefix, job_id).data(INDEX_SUFFIX)))
    return None if index is None else index.cid_count


def _aggregation(client: redis.Redis, prefix: str, job_id: str) -> dict[str, Any] | None:
    raw = client.get(aggregation_key(prefix, job_id))
    return ujson.loads(raw) if raw else None


def events(
    http: httpx.Client, rss: ServerRss, client: redis.Redis, prefix: str, seeds: list[str], timeout_s: float
) -> dict[str, Any]:
    """The MSD events request as the page sends it → 202 → its job followed until it ends."""
    out: dict[str, Any] = {}
    with rss.stage(out):
        body = {"profile": MSD, "container_ids": seeds, "seed_container_ids": seeds, "params": _msd_params()}
        started = time.perf_counter()
        response = http.post("/api/trace/events", json=body)
        post_s = time.perf_counter() - started
        _checked(response, 202, "events (an MSD request over TRACE_ASYNC_CID_THRESHOLD)")
        job_id = response.json()["job_id"]
        deadline = started + timeout_s
        polls = 0
        while True:
            status = _checked(http.get(f"/api/trace/job/{job_id}"), 200, "job status").json()
            polls += 1
            if status["status"] not in ACTIVE:
                break
            if time.perf_counter() > deadline:
                http.delete(f"/api/trace/job/{job_id}")
                raise MsdStageFailed(f"the MSD job {job_id} ran past {timeout_s:g} s")
            time.sleep(POLL_S)
        seconds = time.perf_counter() - started
    if status["status"] != Status.FINISHED:
        raise MsdStageFailed(f"the MSD job {job_id} ended as {status['status']}: {status.get('error')}")
    result = status.get("result") or {}
    return {
        **out,
        "job_id": job_id,
        "seconds": seconds,  # POST → the status poll that saw it finished (every 0.2 s)
        "post_s": post_s,
        "request_bytes": len(response.request.content),
        "run_s": status.get("run_seconds"),
        "records": result.get("total_records"),
        "domains": {d: v["records"] for d, v in (result.get("domains") or {}).items()},
        "aggregation": result.get("aggregation"),
        "peak_rss_mb": status.get("peak_rss_mb"),  # the job child's, by the server's supervisor (0.2 s)
        "cid_count": _cid_count(client, prefix, job_id),
        "status_polls": polls,
    }


def reaggregation(http: httpx.Client, rss: ServerRss, job_id: str, runs: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    seconds: list[float] = []
    path = f"/api/trace/msd/{job_id}/aggregation"
    with rss.stage(out):
        for _ in range(runs):
            response, took = _timed(http, "GET", path, params={"loss_reasons": REAGGREGATION_FILTER})
            _checked(response, 200, "re-aggregation")
            seconds.append(took)
    body = response.json()
    if body.get("loss_reasons") != [REAGGREGATION_FILTER]:
        raise MsdStageFailed(f"re-aggregation answered loss_reasons {body.get('loss_reasons')!r}")
    return {
        **out,
        **_body_figures(response, seconds[-1]),
        "filter": REAGGREGATION_FILTER,
        "runs": runs,
        "run_seconds": seconds,
        # The first request of the analysis also reads its stored index from Redis and parses it.
        "first_s": seconds[0],
        "median_s": percentile(seconds, 50),
        "max_s": max(seconds),
        "filtered_defect_qty": (body.get("kpi") or {}).get("total_defect_qty"),
    }


def run_http_stages(
    plan: Plan, client: redis.Redis, reporter: Reporter
) -> tuple[dict[str, Any], list[str], list[str], dict[str, Any] | None]:
    env = bench_environment(plan.warehouse, plan.redis_url, plan.prefix, "msd-server")
    env["TRACE_LOG_LEVEL"] = "WARNING"
    env["TRACE_ASYNC_CID_THRESHOLD"] = "1"
    out: dict[str, Any] = {"server": "sanic-trace serve --single-process", "async_cid_threshold": 1}
    with ServerProcess(env, plan.work_dir / f"server-msd-{plan.prefix}.log") as server:
        rss = ServerRss(server.pid)
        out["server_rss_mb_at_start"] = rss.mb()
        reporter.note(f"MSD: server up at {server.url} (pid {server.pid}); {STATION} {START_DATE} … {END_DATE}")
        with httpx.Client(base_url=server.url, timeout=HTTP_TIMEOUT) as http:
            out["seed_resolve"], seeds = seed_resolve(http, rss)
            reporter.msd_stage_done("seed-resolve", out["seed_resolve"])
            out["lineage"], closure = lineage(http, rss, seeds)
            reporter.msd_stage_done("lineage", out["lineage"])
            out["events"] = events(http, rss, client, plan.prefix, seeds, plan.timeout_s)
            reporter.msd_stage_done("events + analysis (job)", out["events"])
            job_id = out["events"]["job_id"]
            out["reaggregation"] = reaggregation(http, rss, job_id, plan.msd_reaggregation_runs)
            reporter.msd_stage_done("re-aggregation", out["reaggregation"])
        aggregation = _aggregation(client, plan.prefix, job_id)
    delete_matching(client, f"{plan.prefix}:job:{{{job_id}}}*")
    return out, seeds, closure, aggregation


def _job_payloads(settings: Settings, seeds: list[str], closure: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The MSD job's payload as the HTTP layer builds it, and the plain job's over its closure."""
    params = normalise_params(_msd_params(), settings.msd_max_range_days)
    msd = EventsRequest(MSD, seeds, list(DOMAINS), params=params, seed_container_ids=seeds).to_payload()
    plain = EventsRequest("query_tool", closure, list(DOMAINS)).to_payload()
    return msd, plain


def _differing(
    ours: dict[tuple[Any, ...], tuple[Any, ...]], theirs: dict[tuple[Any, ...], tuple[Any, ...]]
) -> list[str]:
    """Keys whose (lots, input, defects) differ, or that only one side has."""

    def same(a: tuple[Any, ...], b: tuple[Any, ...]) -> bool:
        return a[0] == b[0] and all(math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-6) for x, y in zip(a[1:], b[1:]))

    return sorted(
        str(k) for k in ours.keys() | theirs.keys() if k not in ours or k not in theirs or not same(ours[k], theirs[k])
    )


def _attribution_check(
    machines: list[list[Any]], materials: list[list[Any]], aggregation: dict[str, Any] | None
) -> dict[str, Any]:
    """The baseline's sums against the MSD job's attribution rows (lots, input, defects): every machine;
    the material rows the aggregation lists (the first 1,000) and the number of materials."""
    if aggregation is None:
        return {"compared": False, "agrees": None, "why": "the MSD job's aggregation was not found"}

    def numbers(row: dict[str, Any]) -> tuple[Any, ...]:
        return row["DETECTION_LOT_COUNT"], row["INPUT_QTY"], row["DEFECT_QTY"]

    ours = {
        (row["WORKCENTER_GROUP"], row["EQUIPMENT_NAME"], row["EQUIPMENT_ID"]): numbers(row)
        for row in aggregation.get("attribution", [])
    }
    theirs = {(g, n, i): (lots, inp, d) for g, n, i, lots, inp, d in machines}
    differing = _differing(ours, theirs)
    listed = {
        (row["MATERIAL_PART_NAME"], row["MATERIAL_LOT_NAME"]): numbers(row)
        for row in aggregation.get("material_attribution", [])
    }
    baseline_materials = {(part, lot): (lots, inp, d) for part, lot, lots, inp, d in materials}
    differing_materials = _differing(listed, {k: baseline_materials[k] for k in listed if k in baseline_materials})
    materials_total = aggregation.get("material_attribution_total")
    return {
        "compared": True,
        "machines_msd": len(ours),
        "machines_baseline": len(theirs),
        "differing": len(differing),
        "differing_examples": differing[:5],
        "materials_msd_total": materials_total,
        "materials_baseline": len(baseline_materials),
        "materials_compared": len(listed),
        "materials_differing": len(differing_materials),
        "materials_differing_examples": differing_materials[:5],
        "agrees": not differing and not differing_materials and materials_total == len(baseline_materials),
    }


def phase_peaks(phases: list[list[Any]], samples: list[tuple[float, float]], wall_s: float) -> list[dict[str, Any]]:
    """Each phase of the job (ours.PoolRunner: the status' progress phases — analysis, each domain —
    then `finish` from its last domain's end notification: the MSD index and aggregation): when, and
    the child's peak RSS then. Progress is written at most 4 times a second: a short phase may not show."""
    out = []
    for i, (start, phase) in enumerate(phases):
        end = phases[i + 1][0] if i + 1 < len(phases) else wall_s
        in_phase = [rss for t, rss in samples if start <= t < end]
        out.append({"phase": phase, "start_s": start, "end_s": end, "peak_rss_mb": max(in_phase, default=None)})
    return out


def run_msd_case(plan: Plan, settings: Settings, client: redis.Redis, reporter: Reporter) -> dict[str, Any]:
    case: dict[str, Any] = {
        "station": STATION,
        "start_date": START_DATE,
        "end_date": END_DATE,
        "direction": "backward",
        "domains": list(DOMAINS),
        "load_avg": {"start": [round(v, 2) for v in os.getloadavg()]},
    }
    http, seeds, closure, aggregation = run_http_stages(plan, client, reporter)
    case["http"] = http
    case["seeds"], case["closure_containers"] = len(seeds), len(closure)
    case["closure_agrees_with_job"] = http["events"]["cid_count"] == len(closure)
    if not case["closure_agrees_with_job"]:
        reporter.note(
            f"MSD: the lineage closure has {len(closure):,} containers, the MSD job read "
            f"{http['events']['cid_count']}: the plain job and baseline read the closure"
        )

    msd_payload, plain_payload = _job_payloads(settings, seeds, closure)
    jobs: dict[str, dict[str, Any]] = {}
    series: dict[str, Any] = {}
    runner = PoolRunner(settings, plan.sample_interval)
    try:
        for name, payload in (("plain", plain_payload), ("msd", msd_payload)):
            result, trace = runner.run_payload(payload, plan.timeout_s)
            result["phase_peaks"] = phase_peaks(result.pop("phases"), trace.samples, result["wall_s"])
            if name == "msd":
                result["cid_count"] = _cid_count(client, plan.prefix, result["job_id"])
                job_aggregation = _aggregation(client, plan.prefix, result["job_id"])
                aggregation = job_aggregation if job_aggregation is not None else aggregation
            delete_matching(client, f"{plan.prefix}:job:{{{result['job_id']}}}*")
            jobs[name] = variant_figures(result, trace, result["wall_s"])
            series[name] = trace.series()
            reporter.msd_job_done(name, jobs[name])
    finally:
        runner.close()
    case["jobs"] = jobs

    task = {
        "settings": settings,
        "container_ids": closure,
        "seeds": seeds,
        "station": STATION,
        "start_date": START_DATE,
        "end_date": END_DATE,
    }
    base = run_in_child(run_msd_baseline, task, sample_interval=plan.sample_interval, timeout_s=plan.timeout_s)
    machines, materials = base.result.pop("machines"), base.result.pop("materials")
    case["baseline"] = variant_figures(base.result, base.trace, base.wall_s)
    series["baseline"] = base.trace.series()
    reporter.msd_job_done("baseline", case["baseline"])
    case["attribution_check"] = _attribution_check(machines, materials, aggregation)

    msd, plain, baseline = jobs["msd"], jobs["plain"], case["baseline"]
    case["records_agree"] = msd["domains"] == plain["domains"] == baseline["domains"] == http["events"]["domains"]
    case["ratios"] = {
        "wall_msd_over_plain": msd["wall_s"] / plain["wall_s"],
        "cpu_msd_over_plain": msd["cpu_s"] / plain["cpu_s"] if msd["cpu_s"] and plain["cpu_s"] else None,
        "rss_msd_over_plain": msd["peak_rss_mb"] / plain["peak_rss_mb"],
        "rss_msd_over_baseline": msd["peak_rss_mb"] / baseline["peak_rss_mb"],
    }
    case["rss_series"] = series
    case["load_avg"]["end"] = [round(v, 2) for v in os.getloadavg()]
    return case
