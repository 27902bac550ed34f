"""`sanic-trace bench` end to end on a tiny warehouse: it runs, and what it writes adds up.

Benchmarks are not tests — nothing here judges a figure against a target. This keeps the
bench working: every variant, the server checks and the report run for real (real Redis,
a real server subprocess, real pool children) at a size that takes seconds.
"""

from __future__ import annotations

import json
from pathlib import Path

import redis

from sanic_trace.cli import main
from trace_tools.bench.report import BEGIN, END

TARGET_IDS = {"rss_vs_baseline", "rate_vs_floor", "first_records", "stream_read", "health_p99"}


def test_bench_runs_end_to_end_and_writes_a_sane_report(tmp_path: Path, redis_url: str, redis_prefix: str) -> None:
    output = tmp_path / "bench.json"
    code = main(
        [
            "bench",
            "--quick",
            "--lots", "300",
            "--work-dir", str(tmp_path),
            "--sizes", "250",
            "--redis-url", redis_url,
            "--prefix", redis_prefix,
            "--output", str(output),
            "--health-samples", "10",
            "--profile",
            "--quiet",
        ]
    )  # fmt: skip
    assert code == 0

    doc = json.loads(output.read_text())
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

    assert TARGET_IDS <= {t["id"] for t in doc["targets"]}
    markdown = output.with_suffix(".md").read_text()
    assert BEGIN in markdown and END in markdown and "| ours |" in markdown

    # Everything the bench wrote under its prefix is gone.
    client = redis.Redis.from_url(redis_url)
    try:
        assert list(client.scan_iter(match=f"{redis_prefix}:*")) == []
    finally:
        client.close()
