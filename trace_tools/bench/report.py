"""The bench's output: progress lines, the JSON document, the Markdown results section, the plot.

The Markdown file keeps whatever prose it has; only the part between the BEGIN/END markers is
rewritten (created at the end of the file if the markers are missing), so the explanation of
the figures lives next to them and survives a re-run.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from trace_tools.bench.plan import Plan
from trace_tools.bench.plot import draw_rss_plot
from trace_tools.bench.targets import DECLARED, MSD_TARGETS, evaluate, fraction, load_targets

BEGIN = "<!-- bench:results:begin (written by `sanic-trace bench`; edits inside are lost) -->"
END = "<!-- bench:results:end -->"
# The MSD case's own section: written by any run that ran it (`--msd` alone writes only this one).
MSD_BEGIN = "<!-- bench:msd:begin (written by `sanic-trace bench`; edits inside are lost) -->"
MSD_END = "<!-- bench:msd:end -->"
SCHEMA = 1


def _met(value: bool | None) -> str:
    return "not measured" if value is None else ("met" if value else "**NOT MET**")


class Reporter:
    def __init__(self, plan: Plan, command: str) -> None:
        self.plan = plan
        self.targets = load_targets(plan.targets_file, plan.target_overrides)
        self.doc: dict[str, Any] = {
            "schema": SCHEMA,
            "date": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
            "command": command,
            "quick": plan.quick,
            "options": {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(plan).items()},
            "outputs": {
                "docs_dir": str(plan.docs_dir),
                "docs_dir_from": plan.docs_dir_from,
                "json": str(plan.output),
                "markdown": None if plan.markdown is None else str(plan.markdown),
                "plot": str(plan.plot),
                "work_dir": str(plan.work_dir),
            },
            "load_avg": {"start": None, "end": None},
            "cases": [],
        }

    # -- progress -------------------------------------------------------------------------

    def note(self, message: str) -> None:
        print(f"bench: {message}", file=sys.stderr, flush=True)

    def outputs(self) -> None:
        """Say where the run writes, before it writes anything."""
        plan = self.plan
        sections = ([] if plan.msd_only else ["results"]) + (["MSD"] if plan.msd else [])
        files = [plan.output.name] + (
            [f"{plan.markdown.name} (its {' and '.join(sections)} section{'s' if len(sections) > 1 else ''})"]
            if plan.markdown
            else []
        )
        plot = "" if plan.msd_only else f", {plan.plot.name} (if matplotlib is installed)"
        self.note(
            f"results go to {plan.docs_dir} ({plan.docs_dir_from}): {', '.join(files)}{plot}; "
            f"scratch (warehouse, server log) in {plan.work_dir}"
        )
        changed = [t.id for t in self.targets.values() if t.overridden_by]
        self.note(f"targets from {DECLARED}" + (f"; overridden: {', '.join(changed)}" if changed else ""))

    def case_done(self, case: dict[str, Any]) -> None:
        v = case["variants"]
        self.note(
            f"{case['cids']:>7,} ids {'+'.join(case['domains']):<26} "
            + "  ".join(
                f"{name} {v[name]['records']:,} rec {v[name]['wall_s']:.1f} s {v[name]['peak_rss_mb']:,.0f} MB"
                for name in ("ours", "baseline", "floor")
            )
            + ("" if case["records_agree"] else "  RECORD COUNTS DIFFER")
        )

    def domain_costs_done(self, costs: dict[str, Any]) -> None:
        parts = ", ".join(f"{name} {c['ms_per_id']:.3f}" for name, c in costs["domains"].items())
        self.note(f"query cost per id at {costs['cids']:,} ids (ms, fetched and counted): {parts}")

    def profile_done(self, profile: dict[str, Any]) -> None:
        shares = ", ".join(f"{name} {c['share']:.0%}" for name, c in profile["categories"].items())
        self.note(f"profile of the job function ({profile['records']:,} records): {shares}")

    def first_records_done(self, first: dict[str, Any]) -> None:
        delays = [r["first_records_after_start_s"] for r in first["runs"]]
        self.note(f"first live records after job start: {', '.join(_seconds(d) for d in delays)}")

    def stream_read_done(self, read: dict[str, Any]) -> None:
        self.note(
            f"stream read {read['stream_mb_s']:.0f} MB/s vs bare GET loop {read['get_loop_mb_s']:.0f} MB/s "
            f"(×{read['stream_over_get']:.2f}) over {read['chunk_mb']:.0f} MB"
        )

    def health_done(self, idle: dict[str, Any], health: dict[str, Any]) -> None:
        load = health["under_load"]
        self.note(
            f"/health under load ({health['client_encoding']} streams): p50 {_ms(load['p50_ms'])} "
            f"p99 {_ms(load['p99_ms'])} ({load['samples']} samples); idle p50 {_ms(idle['p50_ms'])} "
            f"p99 {_ms(idle['p99_ms'])}"
        )

    def msd_stage_done(self, stage: str, figures: dict[str, Any]) -> None:
        rss = figures["server_rss_mb"]
        seconds = figures.get("median_s", figures["seconds"])
        what = {
            "seed-resolve": lambda f: f"{f['seeds']:,} seeds",
            "lineage": lambda f: f"closure {f['closure_containers']:,} containers",
            "events + analysis (job)": lambda f: f"{f['records']:,} records, child peak {_num(f['peak_rss_mb'])} MB",
            "re-aggregation": lambda f: f"median of {f['runs']} (first {f['first_s']:.2f} s)",
        }[stage](figures)
        body = f"{_mb(figures['body_bytes'])} body, " if "body_bytes" in figures else ""
        self.note(
            f"MSD {stage}: {seconds:.2f} s, {body}{what}; "
            f"server RSS {rss['before']:,.0f} → {rss['after']:,.0f} MB (peak {rss['peak']:,.0f})"
        )

    def msd_job_done(self, name: str, v: dict[str, Any]) -> None:
        self.note(f"MSD {name}: {v['records']:,} records {v['wall_s']:.1f} s {v['peak_rss_mb']:,.0f} MB")

    def msd_done(self, msd: dict[str, Any]) -> None:
        r = msd["ratios"]
        check = msd["attribution_check"]
        self.note(
            f"MSD: wall ×{r['wall_msd_over_plain']:.2f} of the plain job, RSS ×{r['rss_msd_over_plain']:.2f} of it "
            f"and {fraction(r['rss_msd_over_baseline'])} of the baseline; records agree: {msd['records_agree']}; "
            f"baseline machine attribution agrees: {check.get('agrees')}"
        )

    # -- files ----------------------------------------------------------------------------

    def save(self) -> None:
        self.plan.output.parent.mkdir(parents=True, exist_ok=True)
        self.plan.output.write_text(json.dumps(self.doc, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")

    def finish(self) -> None:
        self.doc["targets"] = evaluate(self.doc, self.targets)
        plot_path = self.plan.plot
        if self.plan.msd_only:
            skipped: str | None = "the MSD case alone draws no plot; its RSS series are in the JSON (msd.rss_series)"
        else:
            skipped = draw_rss_plot(self.doc["cases"], plot_path)
        self.doc["plot"] = {"path": None if skipped else str(plot_path), "skipped": skipped}
        self.save()
        if self.plan.markdown:
            if not self.plan.msd_only:
                write_section(self.plan.markdown, render_markdown(self.doc))
            if self.doc.get("msd"):
                write_section(self.plan.markdown, render_msd_markdown(self.doc), MSD_BEGIN, MSD_END)
        print(render_console(self.doc, self.plan.msd_only))
        written = [str(self.plan.output)] + ([str(self.plan.markdown)] if self.plan.markdown else [])
        self.note(f"wrote {', '.join(written)}" + (f"; plot skipped: {skipped}" if skipped else f", {plot_path}"))


def _code(code: dict[str, Any] | None) -> str:
    """The code stamp (checkout.code_version) in words."""
    if not code or not code.get("checkout"):
        return "unknown (the bench was not run in a git checkout)"
    out = f"commit {code['commit'][:10]}"
    if code["modified"]:
        out += f"; uncommitted changes in: {', '.join(code['modified'])}"
    if code.get("runs_checkout_code") is False:
        out += "; **the sanic_trace that ran is not this checkout's** (not an editable install of it)"
    return out


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} ms"


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"


def _num(value: float | None, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _overrides(targets: list[dict[str, Any]]) -> str:
    changed = [f"{t['id']} (by {t['overridden_by']})" for t in targets if t.get("overridden_by")]
    return f"as declared in `{DECLARED}`" + (f", overridden: {', '.join(changed)}" if changed else "")


def render_console(doc: dict[str, Any], msd_only: bool = False) -> str:
    lines = ["", f"targets ({_overrides(doc['targets'])}):"]
    # The targets of the parts that ran (an MSD case left out shows as "not measured", as any other).
    shown = [t for t in doc["targets"] if t["id"] in MSD_TARGETS or not msd_only]
    for target in shown:
        lines.append(f"  [{_met(target['met']).strip('*'):^12}] {target['target']}: {target['measured']}")
    return "\n".join(lines)


def _header(doc: dict[str, Any], load: dict[str, Any]) -> list[str]:
    """The lines that say what ran where: command, machine, code, load, warehouse, settings."""
    m = doc["machine"]
    s = doc["settings"]
    w = doc["warehouse"]
    return [
        f"- command: `{doc['command']}`",
        f"- machine: {m['cpus']} CPUs ({m['processor']}), {m['ram_mb']:,} MB RAM, {m['platform']}; "
        f"Python {m['python']}, SQLite {m['sqlite']}, Redis {m['redis_server']}",
        f"- code: {_code(doc.get('code'))}",
        f"- load average (1/5/15 min): {load['start']} at the start, {load['end']} at the end "
        "(a shared machine: timings are noisy, memory figures are not)",
        f"- warehouse: {w['containers']:,} containers, {w['history_rows']:,} history rows, "
        f"{w['materials_rows']:,} material rows ({w['size_mb']:,.0f} MB SQLite{', reused' if w['reused'] else ''})",
        f"- settings: fetchmany {s['fetchmany_size']:,}, IN-batch {s['in_batch_size']:,}, chunk {s['chunk_size']:,}; "
        f"RSS of each worker process and its children sampled every {s['rss_sample_interval_s'] * 1000:.0f} ms",
    ]


def _targets_table(targets: list[dict[str, Any]]) -> list[str]:
    out = ["| target | measured | verdict |", "|---|---|---|"]
    for t in targets:
        detail = f" — {t['detail']}" if t["detail"] else ""
        out.append(f"| {t['target']} | {t['measured']}{detail} | {_met(t['met'])} |")
    return out


def render_markdown(doc: dict[str, Any]) -> str:
    out = [
        f"### Run of {doc['date']}{' (quick)' if doc['quick'] else ''}",
        "",
        *_header(doc, doc["load_avg"]),
        "",
        "#### Targets (largest case)",
        "",
        f"Targets {_overrides(doc['targets'])}; each names the issue it comes from (`source` in the JSON). "
        "The MSD case's targets are in its own section.",
        "",
        *_targets_table([t for t in doc["targets"] if t["id"] not in MSD_TARGETS]),
    ]
    out += [
        "",
        "#### Cases",
        "",
        "wall = process start → process gone (ours: submit → job finished, which includes the pool's pick-up, "
        "the child's interpreter start and its reaping); records/s = records / wall. CPU s = user + system "
        "seconds of the worker process (and children) — steadier than wall time on a shared machine.",
        "",
        "| ids | domains | variant | records | wall s | records/s | CPU s | peak RSS MB | RSS ours/baseline "
        "| rate ours/floor (wall; CPU) |",
        "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for case in doc["cases"]:
        r = case["ratios"]
        for name in ("ours", "baseline", "floor"):
            v = case["variants"][name]
            ratio_rss = fraction(r["rss_ours_over_baseline"]) if name == "ours" else ""
            ratio_rate = ""
            if name == "ours":
                cpu_ratio = r.get("cpu_rate_ours_over_floor")
                ratio_rate = f"×{r['rate_ours_over_floor']:.2f}" + (f"; ×{cpu_ratio:.2f}" if cpu_ratio else "")
            out.append(
                f"| {case['cids']:,} | {'+'.join(case['domains'])} | {name} | {v['records']:,} | {v['wall_s']:.1f} | "
                f"{_num(v['records_per_s'])} | {_num(v.get('cpu_s'), 1)} | {v['peak_rss_mb']:,.0f} | {ratio_rss} | "
                f"{ratio_rate} |"
            )
    agree = all(c["records_agree"] for c in doc["cases"])
    out += ["", f"Record counts of the three variants agree in every case: {'yes' if agree else '**NO**'}."]
    cross = [
        f"{c['cids']:,} {'+'.join(c['domains'])}: {c['variants']['ours']['peak_rss_mb']:,.0f} "
        f"/ {_num(c['variants']['ours']['supervisor_peak_rss_mb'])}"
        for c in doc["cases"]
    ]
    out += ["", "Ours, peak RSS by the bench's sampler / by the pool supervisor (0.2 s): " + "; ".join(cross) + " MB."]
    out += _markdown_domain_costs(doc.get("domain_costs"))
    out += _markdown_http(doc.get("http"))
    out += _markdown_profile(doc.get("profile"))
    plot = doc.get("plot") or {}
    if plot.get("path"):
        out += ["", f"![RSS over time, ours vs baseline]({Path(plot['path']).name})"]
    else:
        out += ["", f"RSS plot skipped: {plot.get('skipped')}."]
    return "\n".join(out)


def _markdown_http(http: dict[str, Any] | None) -> list[str]:
    if not http:
        return ["", "The checks against a real server were not run (--no-http)."]
    out = ["", f"#### Against a real server (`{http['server']}`)", ""]
    if "code_at_server_start" in http:
        out += [f"- code when the server started: {_code(http['code_at_server_start'])}"]
    first = http.get("first_records")
    if first:
        delays = ", ".join(_seconds(r["first_records_after_start_s"]) for r in first["runs"])
        starts = ", ".join(_seconds(r["start_after_submit_s"]) for r in first["runs"])
        run0 = first["runs"][0]
        out.append(
            f"- first live records, {first['cids']:,} ids {'+'.join(first['domains'])}: {delays} after the job "
            f"started (submit → start: {starts}); the first run streamed {run0.get('streamed_records', 0):,} records "
            f"live, {'matching' if run0.get('counts_agree') else '**not matching**'} the complete line and the job"
        )
    read = http.get("stream_read")
    if read:
        out.append(
            f"- stream read of the finished job ({read['chunks']} chunks, {read['chunk_mb']:.0f} MB): "
            f"{read['stream_mb_s']:.0f} MB/s through `/stream` against {read['get_loop_mb_s']:.0f} MB/s for a bare "
            f"Redis GET loop (×{read['stream_over_get']:.2f}; best of {read['repeats']})"
        )
    health = http.get("health")
    if health:
        idle = health["idle"]
        out.append(
            f"- /health idle: p50 {_ms(idle['p50_ms'])}, p99 {_ms(idle['p99_ms'])} over {idle['samples']} probes"
        )
        for encoding in ("gzip", "identity"):
            run = health.get(encoding)
            if not run:
                continue
            load = run["under_load"]
            out.append(
                f"- /health with {run['jobs']} jobs of {run['cids_per_job']:,} ids running and {run['clients']} "
                f"clients following their streams ({encoding}): p50 {_ms(load['p50_ms'])}, p95 {_ms(load['p95_ms'])}, "
                f"p99 {_ms(load['p99_ms'])}, max {_ms(load['max_ms'])} over {load['samples']} probes in "
                f"{run['window_s']:.0f} s ({load['failures']} failed); load average "
                f"{run['load_avg_before'][0]:.1f} → {run['load_avg_after'][0]:.1f}"
            )
    return out


def _markdown_domain_costs(costs: dict[str, Any] | None) -> list[str]:
    if not costs:
        return []
    out = [
        "",
        f"#### What each domain's query costs ({costs['cids']:,} ids, IN-batched, fetched and only counted)",
        "",
        "| domain | records | s | ms per id |",
        "|---|---:|---:|---:|",
    ]
    for name, c in costs["domains"].items():
        out.append(f"| {name} | {c['records']:,} | {c['s']:.1f} | {c['ms_per_id']:.3f} |")
    return out


def _markdown_profile(profile: dict[str, Any] | None) -> list[str]:
    if not profile:
        return []
    out = [
        "",
        f"#### Where the job function's time goes (cProfile, {profile['cids']:,} ids {'+'.join(profile['domains'])}, "
        f"{profile['records']:,} records, {profile['wall_s_under_profiler']:.1f} s under the profiler)",
        "",
        "| category | own time s | share |",
        "|---|---:|---:|",
    ]
    for name, c in profile["categories"].items():
        out.append(f"| {name} | {c['own_s']:.1f} | {c['share']:.0%} |")
    out += ["", "| function | calls | own s | cumulative s |", "|---|---:|---:|---:|"]
    for row in profile["top"][:12]:
        out.append(f"| `{row['function']}` | {row['calls']:,} | {row['own_s']:.2f} | {row['cum_s']:.2f} |")
    return out


def _mb(value: float | None) -> str:
    """Bytes as KB under a megabyte, else MB."""
    if value is None:
        return "-"
    return f"{value / 2**10:,.0f} KB" if value < 2**20 else f"{value / 2**20:,.1f} MB"


def _server_rss(figures: dict[str, Any]) -> str:
    rss = figures["server_rss_mb"]
    return f"{rss['before']:,.0f} → {rss['after']:,.0f} (peak {rss['peak']:,.0f})"


def render_msd_markdown(doc: dict[str, Any]) -> str:
    msd = doc["msd"]
    http = msd["http"]
    seed, lineage, events, reagg = http["seed_resolve"], http["lineage"], http["events"], http["reaggregation"]
    jobs, base, r = msd["jobs"], msd["baseline"], msd["ratios"]
    check = msd["attribution_check"]
    targets = [t for t in doc["targets"] if t["id"] in MSD_TARGETS]
    out = [
        f"### MSD case, run of {doc['date']}{' (quick)' if doc['quick'] else ''}",
        "",
        *_header(doc, msd["load_avg"]),
        f"- analysis: backward, station {msd['station']}, {msd['start_date']} … {msd['end_date']} (the warehouse's "
        f"whole span); {msd['seeds']:,} seeds, a closure of {msd['closure_containers']:,} containers "
        f"({'the same count as' if msd['closure_agrees_with_job'] else '**not** the count of'} the MSD job's "
        f"cid_count, {_num(events['cid_count'])}); domains {' + '.join(msd['domains'])}",
        "",
        "#### Targets",
        "",
        f"Targets {_overrides(targets)}.",
        "",
        *_targets_table(targets),
        "",
        f"#### Stage by stage through HTTP (`{http['server']}`, TRACE_ASYNC_CID_THRESHOLD=1)",
        "",
        "time = request sent → body read (events: POST → the status poll, every 0.2 s, that saw the job finished). "
        "body = as the client holds it; wire = as sent (the client accepts gzip, as browsers do). "
        "Server RSS = the server process alone, before → after the stage (its peak, sampled every 50 ms); "
        "the job runs in a child of its own.",
        "",
        "| stage | time s | body | wire | server RSS MB | what |",
        "|---|---:|---:|---:|---|---|",
        f"| seed-resolve | {seed['seconds']:.2f} | {_mb(seed['body_bytes'])} | {_mb(seed['wire_bytes'])} | "
        f"{_server_rss(seed)} | {seed['seeds']:,} seeds |",
        f"| lineage | {lineage['seconds']:.2f} | {_mb(lineage['body_bytes'])} | {_mb(lineage['wire_bytes'])} | "
        f"{_server_rss(lineage)} | {_num(lineage['total_ancestor_count'])} ancestors; closure "
        f"{lineage['closure_containers']:,} containers |",
        f"| events + analysis (job) | {events['seconds']:.1f} | request {_mb(events['request_bytes'])} | | "
        f"{_server_rss(events)} | 202 in {events['post_s']:.2f} s; job ran {_seconds(events['run_s'])}; "
        f"{_num(events['records'])} records; child peak RSS {_num(events['peak_rss_mb'])} MB (status "
        f"`peak_rss_mb`); aggregation {events['aggregation']} |",
        f"| re-aggregation `loss_reasons={reagg['filter']}` | {reagg['median_s']:.2f} | {_mb(reagg['body_bytes'])} | "
        f"{_mb(reagg['wire_bytes'])} | {_server_rss(reagg)} | median of {reagg['runs']}: "
        f"{', '.join(f'{x:.2f}' for x in reagg['run_seconds'])} s (the first reads and parses the stored index) |",
        "",
        "#### The same job with and without the analysis, and the seed's baseline",
        "",
        "Both jobs through the bench's own pool supervisor, submitted as the API submits them; wall = submit → "
        "finished; each child (and the baseline's spawn child) followed by the same RSS sampler. The plain job is "
        "`query_tool` over the MSD job's containers (the seeds' closure) and domains.",
        "",
        "| variant | records | wall s | CPU s | peak RSS MB | supervisor's peak MB |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, label in (("msd", "MSD job (events + analysis)"), ("plain", "the same job without the analysis")):
        v = jobs[name]
        out.append(
            f"| {label} | {v['records']:,} | {v['wall_s']:.1f} | {_num(v.get('cpu_s'), 1)} | {v['peak_rss_mb']:,.0f} | "
            f"{_num(v.get('supervisor_peak_rss_mb'))} |"
        )
    out.append(
        f"| the seed's baseline (held, grouped, attributed) | {base['records']:,} | {base['wall_s']:.1f} | "
        f"{_num(base.get('cpu_s'), 1)} | {base['peak_rss_mb']:,.0f} | |"
    )
    cpu = f", CPU ×{r['cpu_msd_over_plain']:.2f}" if r.get("cpu_msd_over_plain") else ""
    out += [
        "",
        f"MSD over plain: wall ×{r['wall_msd_over_plain']:.2f}{cpu}, peak RSS ×{r['rss_msd_over_plain']:.2f}; "
        f"MSD over the baseline: peak RSS {fraction(r['rss_msd_over_baseline'])}.",
    ]
    for name, label in (("msd", "MSD job"), ("plain", "Plain job")):
        phases = jobs[name].get("phase_peaks") or []
        if phases:
            spans = "; ".join(
                f"{p['phase']} {p['start_s']:.1f}–{p['end_s']:.1f} s, peak {_num(p['peak_rss_mb'])} MB" for p in phases
            )
            out += [
                "",
                f"{label} by phase (its status' progress phase, written at most 4 times a second, so a short phase "
                f"may not show; `finish` = from its last domain's end to the job's end): {spans}.",
            ]
    out += [
        "",
        f"Baseline time: fetch and hold {base['fetch_s']:.1f} s, group {base['group_s']:.1f} s, detection facts "
        f"{base['population_s']:.1f} s, lineage {base['lineage_s']:.1f} s, attribution {base['attribute_s']:.1f} s; "
        f"{base['machine_count']:,} machines and {base['material_count']:,} materials attributed over "
        f"{base['lot_count']:,} lots. It computes the machine and material sums only (lot count, input, defects "
        "per factor; no scores, suspects, wafer roots, charts or joined lot facts).",
    ]
    if check.get("compared"):
        out.append(
            f"Its sums against the MSD job's attribution (lot count, input, defects): {check['machines_baseline']:,} "
            f"vs {check['machines_msd']:,} machines, {check['differing']} differing; {check['materials_baseline']:,} "
            f"vs {_num(check['materials_msd_total'])} materials, of the {check['materials_compared']:,} rows the "
            f"aggregation lists {check['materials_differing']} differing — "
            + ("the same numbers." if check["agrees"] else "**they differ**.")
        )
    else:
        out.append(f"Its machine attribution was not compared: {check.get('why')}.")
    out += [
        "",
        f"Record counts of the HTTP job, the two pool jobs and the baseline agree: "
        f"{'yes' if msd['records_agree'] else '**NO**'}.",
    ]
    return "\n".join(out)


def write_section(path: Path, section: str, begin: str = BEGIN, end_marker: str = END) -> None:
    """Replace the marked section of `path` (created, or appended to the file, if missing)."""
    block = f"{begin}\n{section}\n{end_marker}"
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n\n"
    start, end = text.find(begin), text.find(end_marker)
    if start >= 0 and end > start:
        text = text[:start] + block + text[end + len(end_marker) :]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
