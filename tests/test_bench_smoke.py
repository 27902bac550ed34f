"""`sanic-trace bench` end to end on a tiny warehouse: it runs, and what it writes adds up.

Benchmarks are not tests — nothing here judges a figure against a target. This keeps the
bench working: every variant, the server checks and the report run for real (real Redis,
a real server subprocess, real pool children) at a size that takes seconds. It also checks
where the bench writes: only into the --docs-dir and --work-dir it is given, whatever the
working directory, and that its code stamp comes from git in the working directory.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import redis

from sanic_trace.cli import main
from trace_tools.bench.report import BEGIN, END

TARGET_IDS = {"rss_vs_baseline", "rss_flat", "rate_vs_floor", "first_records", "stream_read", "health_p99"}
REPO = Path(__file__).resolve().parents[1]


def _tree(root: Path) -> dict[str, int]:
    """Every file under root with its modification time (nothing when root does not exist)."""
    return {str(p): p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()} if root.exists() else {}


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

    # Everything the bench wrote under its prefix is gone.
    client = redis.Redis.from_url(redis_url)
    try:
        assert list(client.scan_iter(match=f"{redis_prefix}:*")) == []
    finally:
        client.close()
