"""`sanic-trace bench` end to end on a tiny warehouse: it runs, and what it writes adds up.

Benchmarks are not tests — nothing here judges a figure against a target. This keeps the
bench working: every variant, the server checks and the report run for real (real Redis,
a real server subprocess, real pool children) at a size that takes seconds. It also checks
where the bench writes: only into the --docs-dir and --work-dir it is given, whatever the
working directory, and that its code stamp comes from git in the working directory.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
import redis

from sanic_trace.cli import main
from trace_tools.bench.report import BEGIN, END, MSD_BEGIN, MSD_END

MSD_TARGET_IDS = {"msd_wall_vs_plain", "msd_rss_vs_plain", "msd_rss_vs_baseline", "msd_reaggregation_s"}
TARGET_IDS = {
    "rss_vs_baseline",
    "rss_flat",
    "rate_vs_floor",
    "first_records",
    "stream_read",
    "health_p99",
    "jobs_cost_vs_history",
} | MSD_TARGET_IDS
REPO = Path(__file__).resolve().parents[1]


def _tree(root: Path) -> dict[str, int]:
    """Every file under root with its modification time (nothing when root does not exist)."""
    return {str(p): p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()} if root.exists() else {}


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0


def _assert_msd_case(doc: dict[str, Any], markdown: str) -> None:
    """The MSD case ran whole: every stage, both jobs and the baseline measured, and reported with verdicts."""
    msd = doc["msd"]
    assert msd["station"] == "測試" and msd["direction"] == "backward"
    assert msd["seeds"] > 0 and msd["closure_containers"] >= msd["seeds"]
    # The plain job and the baseline read what the MSD job read, and found the same records.
    assert msd["closure_agrees_with_job"] and msd["records_agree"]
    # The baseline's sums are the analysis's attribution, machine by machine.
    check = msd["attribution_check"]
    assert check["compared"] and check["agrees"] and check["machines_msd"] > 0, check
    http = msd["http"]
    for stage in ("seed_resolve", "lineage", "events", "reaggregation"):
        figures = http[stage]
        assert _finite(figures["seconds"]), stage
        assert all(_finite(figures["server_rss_mb"][k]) for k in ("before", "after", "peak")), stage
    for stage in ("seed_resolve", "lineage", "reaggregation"):
        assert _finite(http[stage]["body_bytes"]) and _finite(http[stage]["wire_bytes"]), stage
    assert http["seed_resolve"]["seeds"] == msd["seeds"]
    events = http["events"]
    assert events["aggregation"] == "ready" and events["cid_count"] == msd["closure_containers"]
    assert _finite(events["peak_rss_mb"]) and events["records"] == msd["jobs"]["msd"]["records"] > 0
    reagg = http["reaggregation"]
    assert reagg["runs"] == len(reagg["run_seconds"]) == 3 and _finite(reagg["median_s"]) and _finite(reagg["first_s"])
    for name, variant in (*msd["jobs"].items(), ("baseline", msd["baseline"])):
        assert variant["records"] > 0 and _finite(variant["wall_s"]) and variant["peak_rss_mb"] > 10, name
        assert variant["rss_samples"] > 0, name
    assert set(msd["jobs"]) == {"msd", "plain"}
    for key in ("wall_msd_over_plain", "rss_msd_over_plain", "rss_msd_over_baseline"):
        assert _finite(msd["ratios"][key]), key
    assert set(msd["rss_series"]) == {"msd", "plain", "baseline"}
    assert _finite(msd["baseline"]["attribute_s"] + msd["baseline"]["fetch_s"])

    # Measured against targets.toml with a verdict each (whatever the verdict: benchmarks, not timed tests).
    targets = {t["id"]: t for t in doc["targets"] if t["id"] in MSD_TARGET_IDS}
    assert set(targets) == MSD_TARGET_IDS
    limits = {
        "msd_wall_vs_plain": 1.25,
        "msd_rss_vs_plain": 1.5,
        "msd_rss_vs_baseline": 0.1,
        "msd_reaggregation_s": 1.0,
    }
    for key, target in targets.items():
        assert target["limit"] == limits[key] and target["compare"] == "<=" and target["source"], target
        assert _finite(target["value"]) and target["met"] == (target["value"] <= target["limit"]), target
        assert target["measured"] != "not measured"
    assert targets["msd_reaggregation_s"]["value"] == reagg["median_s"]
    assert targets["msd_rss_vs_baseline"]["value"] == msd["ratios"]["rss_msd_over_baseline"]

    assert MSD_BEGIN in markdown and MSD_END in markdown
    section = markdown[markdown.index(MSD_BEGIN) : markdown.index(MSD_END)]
    assert "#### Stage by stage through HTTP" in section and "| re-aggregation `loss_reasons=OPEN 開路` |" in section
    assert "| the same job without the analysis |" in section and "| the seed's baseline" in section
    for target in targets.values():
        assert f"| {target['target']} | {target['measured']}" in section
    assert section.count("| met |") + section.count("| **NOT MET** |") == len(targets)


def test_bench_runs_end_to_end_and_writes_a_sane_report(
    tmp_path: Path, redis_url: str, redis_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Run from a directory that is not a git checkout (git may not look above tmp_path), so the
    # code stamp must say "unknown", and nothing may land in it, nor in the repository's docs/ or var/.
    cwd, docs, work = tmp_path / "cwd", tmp_path / "docs", tmp_path / "work"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    repo_before = {**_tree(REPO / "docs"), **_tree(REPO / "var")}
    code = main(
        [
            "bench",
            "--quick",
            "--lots", "300",
            "--work-dir", str(work),
            "--docs-dir", str(docs),
            "--sizes", "250",
            "--redis-url", redis_url,
            "--prefix", redis_prefix,
            "--health-samples", "10",
            "--profile",
            "--quiet",
            "--target", "health_p99=75",
        ]
    )  # fmt: skip
    assert code == 0

    # Where it wrote: the results in --docs-dir, the scratch in --work-dir, nothing anywhere else.
    assert list(cwd.iterdir()) == []
    assert {**_tree(REPO / "docs"), **_tree(REPO / "var")} == repo_before
    written = {p.name for p in docs.iterdir()}
    assert {"quick.json", "quick.md"} <= written <= {"quick.json", "quick.md", "quick-rss.png"}
    assert {p.name for p in tmp_path.iterdir()} == {"cwd", "docs", "work"}
    output = docs / "quick.json"
    doc = json.loads(output.read_text())
    assert doc["outputs"]["docs_dir"] == str(docs) and doc["outputs"]["docs_dir_from"] == "--docs-dir"
    assert doc["outputs"]["json"] == str(output) and doc["outputs"]["markdown"] == str(docs / "quick.md")
    assert doc["outputs"]["work_dir"] == str(work) and doc["warehouse"]["path"].startswith(str(work))
    # The code stamp comes from git in the working directory, which is no checkout here.
    assert doc["code"]["commit"] == "unknown" and doc["code"]["checkout"] is None
    assert doc["http"]["code_at_server_start"]["commit"] == "unknown"
    assert doc["warehouse"]["containers"] >= 250
    assert doc["machine"]["cpus"] >= 1 and len(doc["load_avg"]["start"]) == 3
    [case] = doc["cases"]
    assert case["cids"] == 250 and case["domains"] == ["history", "materials"]
    variants = case["variants"]
    assert set(variants) == {"ours", "baseline", "floor"}
    for name, variant in variants.items():
        assert variant["records"] > 0, name
        assert variant["wall_s"] > 0 and variant["records_per_s"] > 0, name
        assert variant["peak_rss_mb"] > 10 and variant["rss_samples"] > 0, name
    # The same queries over the same ids: the three designs must see the same records.
    assert case["records_agree"]
    assert variants["ours"]["domains"] == variants["baseline"]["domains"] == variants["floor"]["domains"]
    assert variants["ours"]["supervisor_peak_rss_mb"] > 0
    assert set(case["rss_series"]) == {"ours", "baseline", "floor"}

    # The domain-cost case: every query_tool domain over the same ids, its history and materials
    # counts those of the case, and the jobs target judged on it.
    costs = doc["domain_costs"]
    assert costs["cids"] == 250 and list(costs["domains"]) == ["history", "materials", "rejects", "holds", "jobs"]
    assert {d: costs["domains"][d]["records"] for d in ("history", "materials")} == variants["floor"]["domains"]
    assert all(_finite(c["s"]) and _finite(c["ms_per_id"]) for c in costs["domains"].values())
    assert "| jobs |" in (docs / "quick.md").read_text()

    assert doc["profile"]["records"] == variants["ours"]["records"]
    assert doc["profile"]["categories"]

    http = doc["http"]
    first = http["first_records"]["runs"][0]
    assert first["status"] == "finished" and first["counts_agree"]
    assert first["streamed_records"] == variants["ours"]["records"]
    assert 0 < first["first_records_after_start_s"] < 60
    assert http["stream_read"]["stream_mb_s"] > 0 and http["stream_read"]["get_loop_mb_s"] > 0
    assert http["health"]["idle"]["samples"] > 0 and http["health"]["idle"]["p99_ms"] > 0
    assert {"gzip", "identity"} <= set(http["health"])

    # Target, measured and verdict for each target, with the limit read from targets.toml or overridden.
    targets = {t["id"]: t for t in doc["targets"]}
    assert set(targets) == TARGET_IDS
    for target in targets.values():
        assert target["target"] and target["measured"] and target["source"], target
        assert target["met"] in (True, False, None) and target["compare"] in ("<=", ">=")
    assert targets["rss_vs_baseline"]["limit"] == 0.05 and targets["rss_vs_baseline"]["overridden_by"] is None
    assert targets["rss_vs_baseline"]["met"] is not None and targets["rss_vs_baseline"]["value"] > 0
    assert targets["rss_flat"]["met"] is None  # one size: nothing to compare
    jobs_cost = targets["jobs_cost_vs_history"]
    ratio = costs["domains"]["jobs"]["s"] / costs["domains"]["history"]["s"]
    assert jobs_cost["value"] == pytest.approx(ratio) and jobs_cost["met"] == (ratio <= 2.0)
    health = targets["health_p99"]
    assert health["limit"] == 75.0 and health["overridden_by"] == "--target"
    # On this tiny warehouse the jobs may end before the first probe: then it is "not measured".
    assert health["target"].startswith("/health p99 ≤ 75 ms")
    if health["value"] is None:
        assert health["met"] is None and health["measured"] == "not measured"
    else:
        assert "with 2 jobs running and 8 clients" in health["target"]
        assert health["met"] == (health["value"] <= 75.0)
    markdown = (docs / "quick.md").read_text()
    assert BEGIN in markdown and END in markdown and "| ours |" in markdown
    assert "| target | measured | verdict |" in markdown and "overridden: health_p99 (by --target)" in markdown
    assert "- code: unknown (the bench was not run in a git checkout)" in markdown
    # The MSD case is part of the quick run; its targets are in its own section, not in the results section's.
    _assert_msd_case(doc, markdown)
    results = markdown[markdown.index(BEGIN) : markdown.index(END)]
    assert not [t for t in doc["targets"] if t["id"] in MSD_TARGET_IDS and t["target"] in results]

    # Everything the bench wrote under its prefix is gone.
    client = redis.Redis.from_url(redis_url)
    try:
        assert list(client.scan_iter(match=f"{redis_prefix}:*")) == []
    finally:
        client.close()


def test_bench_msd_alone_writes_its_json_and_only_its_section(
    tmp_path: Path, redis_url: str, redis_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    docs, work = tmp_path / "docs", tmp_path / "work"
    docs.mkdir()
    # A results section of an earlier run, and prose around it: `--msd` leaves both alone.
    earlier = f"# Benchmarks\n\nprose before\n\n{BEGIN}\nearlier results\n{END}\n\nprose after\n"
    (docs / "quick.md").write_text(earlier, encoding="utf-8")
    args = ["bench", "--quick", "--lots", "300", "--work-dir", str(work), "--docs-dir", str(docs)]
    args += ["--redis-url", redis_url, "--prefix", redis_prefix, "--quiet"]
    assert main([*args, "--msd", "--no-http"]) == 2  # its stages go through a real server
    assert main([*args, "--msd"]) == 0

    assert {p.name for p in docs.iterdir()} == {"quick.md", "quick-msd.json"}
    doc = json.loads((docs / "quick-msd.json").read_text())
    assert doc["cases"] == [] and "http" not in doc and "profile" not in doc
    markdown = (docs / "quick.md").read_text()
    assert markdown.startswith(earlier)  # the MSD section is appended, nothing before it changed
    _assert_msd_case(doc, markdown)
    # The other targets were not measured; the MSD ones were.
    others = [t for t in doc["targets"] if t["id"] not in MSD_TARGET_IDS]
    assert others and all(t["met"] is None for t in others)
    # A second run replaces the MSD section in place.
    assert main([*args, "--msd", "--prefix", f"{redis_prefix}b"]) == 0
    again = (docs / "quick.md").read_text()
    assert again.startswith(earlier) and again.count(MSD_BEGIN) == 1 and again.count(MSD_END) == 1
