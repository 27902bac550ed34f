"""trace_tools without a run: the one percentile, the service surface the tools import, where the
bench writes and how it stamps the code, and the targets it judges against.

The runs themselves are in test_bench_smoke.py and test_loadtest.py.
"""

from __future__ import annotations

import argparse
import ast
import re
import subprocess
from pathlib import Path

import pytest

import trace_tools
from trace_tools.bench import add_arguments
from trace_tools.bench.checkout import code_version
from trace_tools.bench.plan import resolve_plan
from trace_tools.bench.targets import MEASURED, declared_targets, evaluate, load_targets
from trace_tools.percentiles import percentile

TOOLS = Path(trace_tools.__file__).resolve().parent
SERVICE_PACKAGES = ("sanic_trace", "jobs")

# --- the one percentile -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        # Nearest-rank, worked by hand: rank = ceil(q/100 × n), 1-based, of the sorted values.
        ([15, 20, 35, 40, 50], 5, 15),  # ceil(0.25) = 1
        ([15, 20, 35, 40, 50], 30, 20),  # ceil(1.5) = 2
        ([15, 20, 35, 40, 50], 40, 20),  # 2.0 exactly: rank 2, not 3
        ([15, 20, 35, 40, 50], 50, 35),  # ceil(2.5) = 3
        ([15, 20, 35, 40, 50], 100, 50),
        ([50, 15, 40, 20, 35], 50, 35),  # order of the input does not matter
        ([3, 1, 2, 4], 50, 2),  # 2.0: the lower middle, no interpolation (which would say 2.5)
        ([3, 1, 2, 4], 75, 3),
        ([3, 1, 2, 4], 0, 1),  # rank at least 1: the minimum
        (list(range(1, 21)), 95, 19),  # 19.0: rank 19 (the bench's old round(q/100*n + 0.5) said 20)
        (list(range(1, 21)), 99, 20),  # ceil(19.8)
        (list(range(1, 101)), 7, 7),  # 0.07 * 100 is 7.000000000000001 in floats; the rank is still 7
        (list(range(1, 1001)), 99.9, 999),
        ([7.5], 99, 7.5),
    ],
)
def test_percentile_is_nearest_rank_by_hand(values: list[float], q: float, expected: float) -> None:
    assert percentile(values, q) == expected


def test_percentile_of_nothing_and_out_of_range() -> None:
    assert percentile([], 50) is None
    with pytest.raises(ValueError):
        percentile([1.0], 101)
    with pytest.raises(ValueError):
        percentile([1.0], -1)


def test_bench_and_loadtest_share_the_one_percentile() -> None:
    from trace_tools.bench import http_checks
    from trace_tools.loadtest import health, report, stats

    for module in (http_checks, health, report, stats):
        assert module.percentile is percentile, module.__name__
    defined = [
        str(path.relative_to(TOOLS))
        for path in TOOLS.rglob("*.py")
        if re.search(r"^def percentile\(", path.read_text(encoding="utf-8"), re.M)
    ]
    assert defined == ["percentiles.py"]


# --- the service surface ------------------------------------------------------------------------


def _service_imports() -> dict[str, set[str]]:
    """module -> names, for every `from sanic_trace... / jobs... import` anywhere in trace_tools."""
    found: dict[str, set[str]] = {}
    for path in TOOLS.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    assert alias.name.split(".")[0] not in SERVICE_PACKAGES, f"{path}: import {alias.name}"
            elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in SERVICE_PACKAGES:
                found.setdefault(node.module, set()).update(alias.name for alias in node.names)
    return found


def _declared_surface() -> dict[str, set[str]]:
    declared: dict[str, set[str]] = {}
    for line in (trace_tools.__doc__ or "").splitlines():
        match = re.fullmatch(r" {4}((?:sanic_trace|jobs)[\w.]*): (.+)", line)
        if match:
            declared[match.group(1)] = {name.strip() for name in match.group(2).split(",")}
    return declared


def test_tools_import_only_public_service_names_and_the_docstring_lists_them() -> None:
    imported = _service_imports()
    private = sorted(f"{module}.{name}" for module, names in imported.items() for name in names if name.startswith("_"))
    assert private == []
    # Private submodules are private surface too.
    assert [m for m in imported if any(part.startswith("_") for part in m.split("."))] == []
    assert _declared_surface() == imported


def test_tools_touch_no_private_attribute_of_another_object() -> None:
    """`source._execute(...)`-style calls: only an object's own (self/cls) private names may be used."""
    allowed = {"_replace"}  # namedtuple's public API
    offenders = []
    for path in TOOLS.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Attribute)
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
                and node.attr not in allowed
                and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))
            ):
                offenders.append(f"{path.relative_to(TOOLS)}:{node.lineno}: .{node.attr}")
    assert offenders == []


# --- where the bench writes, and its code stamp ---------------------------------------------------


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args],
        cwd=cwd, check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip


@pytest.fixture
def checkout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A git checkout in tmp_path/repo with one commit of a sanic_trace/ file; git looks no higher."""
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    repo = tmp_path / "repo"
    (repo / "sanic_trace").mkdir(parents=True)
    (repo / "sanic_trace" / "x.py").write_text("A = 1\n")
    (repo / "notes.txt").write_text("not measured code\n")
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "one")
    return repo


def _plan_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(list(argv))


def test_code_stamp_is_the_working_directorys_checkout(checkout: Path) -> None:
    (checkout / "sanic_trace" / "x.py").write_text("A = 2\n")
    (checkout / "notes.txt").write_text("changed, but not code the bench measures\n")
    (checkout / "sub").mkdir()
    stamp = code_version(checkout / "sub")  # from a subdirectory: the same checkout
    assert stamp["commit"] == _git(checkout, "rev-parse", "HEAD")
    assert stamp["checkout"] == str(checkout.resolve())
    assert stamp["modified"] == ["sanic_trace/x.py"]
    # The sanic_trace imported here is the project's, not this scratch checkout's.
    assert stamp["runs_checkout_code"] is False


def test_code_stamp_outside_a_checkout_is_unknown(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    (tmp_path / "plain").mkdir()
    assert code_version(tmp_path / "plain") == {
        "commit": "unknown", "checkout": None, "modified": [], "runs_checkout_code": None,
    }  # fmt: skip


def test_default_outputs_are_found_from_the_working_tree(checkout: Path, tmp_path: Path) -> None:
    (checkout / "sub").mkdir()
    full = resolve_plan(_plan_args(), cwd=checkout / "sub")
    root = checkout.resolve()
    assert full.docs_dir == root / "docs" and full.work_dir == root / "var" / "bench"
    assert (full.output, full.markdown, full.plot) == (
        root / "docs" / "benchmarks.json", root / "docs" / "benchmarks.md", root / "docs" / "benchmarks-rss.png",
    )  # fmt: skip
    assert str(root) in full.docs_dir_from
    # A quick run never rewrites the committed figures: its results go to the scratch dir.
    quick = resolve_plan(_plan_args("--quick"), cwd=checkout)
    assert quick.docs_dir == root / "var" / "bench" and quick.output.name == "quick.json"
    # Outside a checkout: the working directory.
    (tmp_path / "plain").mkdir()
    outside = resolve_plan(_plan_args(), cwd=tmp_path / "plain")
    assert outside.docs_dir == (tmp_path / "plain" / "docs").resolve()
    assert "not a git checkout" in outside.docs_dir_from
    # Explicit: --docs-dir (relative to the working directory) wins, --no-markdown drops the Markdown.
    explicit = resolve_plan(_plan_args("--docs-dir", "out", "--no-markdown"), cwd=checkout)
    assert explicit.docs_dir == root / "out" and explicit.docs_dir_from == "--docs-dir"
    assert explicit.output == root / "out" / "benchmarks.json" and explicit.markdown is None
    # Nothing about the defaults comes from where the tools are installed.
    for path in (full.docs_dir, full.work_dir, quick.docs_dir, outside.docs_dir):
        assert not path.is_relative_to(TOOLS)


# --- targets ------------------------------------------------------------------------------------


def test_targets_are_declared_once_with_their_source() -> None:
    targets = declared_targets()
    assert tuple(targets) == MEASURED
    for target in targets.values():
        assert target.source.startswith(("the bench issue", "issue 11", "issue 14")) and target.measure
        assert target.overridden_by is None
    assert targets["rss_vs_baseline"].limit == 0.05 and targets["health_p99"].limit == 50.0
    # No bound left as a constant in the judging code.
    code = (TOOLS / "bench" / "targets.py").read_text(encoding="utf-8")
    assert not re.search(r"^[A-Z_]+ = (?:1 / 20|1\.3|0\.5|1\.0|0\.7|50\.0|1\.25|1\.5|0\.1)$", code, re.M)
    assert targets["msd_wall_vs_plain"].limit == 1.25 and targets["msd_rss_vs_baseline"].limit == 0.1


def test_targets_file_and_arguments_override(tmp_path: Path) -> None:
    extra = tmp_path / "targets.toml"
    extra.write_text('[health_p99]\nlimit = 80\n\n[stream_read]\nlimit = 0.3\nsource = "a later issue"\n')
    targets = load_targets(extra, ["health_p99=120", "rss_vs_baseline=1/25"])
    assert targets["health_p99"].limit == 120 and targets["health_p99"].overridden_by == "--target"
    assert targets["stream_read"].limit == 0.3 and targets["stream_read"].source == "a later issue"
    assert targets["stream_read"].overridden_by == str(extra)
    assert targets["rss_vs_baseline"].limit == 0.04
    assert targets["rate_vs_floor"] == declared_targets()["rate_vs_floor"]
    for bad in (["nope=1"], ["health_p99"], ["health_p99=fast"]):
        with pytest.raises(ValueError):
            load_targets(None, bad)
    extra.write_text("[nope]\nlimit = 1\n")
    with pytest.raises(ValueError, match="no target 'nope'"):
        load_targets(extra)
    extra.write_text('[health_p99]\ncompare = "<"\n')
    with pytest.raises(ValueError, match="compare"):
        load_targets(extra)


def _case(cids: int, ours: float, base: float, rate_ours: float, rate_floor: float) -> dict:
    variant = {"peak_rss_mb": 0.0, "records_per_s": 0.0}
    return {
        "cids": cids,
        "domains": ["history", "materials"],
        "variants": {
            "ours": {**variant, "peak_rss_mb": ours, "records_per_s": rate_ours},
            "baseline": {**variant, "peak_rss_mb": base},
            "floor": {**variant, "peak_rss_mb": 40.0, "records_per_s": rate_floor},
        },
        "ratios": {"cpu_rate_ours_over_floor": None},
    }


def test_evaluate_says_target_measured_and_verdict_from_the_limits_given() -> None:
    doc = {
        "cases": [_case(1000, 60.0, 300.0, 100.0, 150.0), _case(5000, 66.0, 1500.0, 60.0, 150.0)],
        "http": {
            "first_records": {"runs": [{"first_records_after_start_s": 0.6}, {"first_records_after_start_s": 1.2}],
                              "median_s": 0.9},
            "stream_read": {"stream_over_get": 0.5, "stream_mb_s": 300.0, "get_loop_mb_s": 600.0},
            "health": {"gzip": {"jobs": 2, "clients": 8, "under_load": {"p99_ms": 60.0, "p50_ms": 9.0, "samples": 99}}},
        },
        "domain_costs": {"cids": 5000, "domains": {"history": {"s": 4.0, "ms_per_id": 0.8},
                                                   "jobs": {"s": 10.0, "ms_per_id": 2.0}}},
    }  # fmt: skip
    results = {r["id"]: r for r in evaluate(doc, declared_targets())}
    assert tuple(results) == MEASURED
    assert results["rss_vs_baseline"]["target"] == "ours peak RSS ≤ 1/20 of baseline at 5,000 ids"
    assert results["rss_vs_baseline"]["measured"] == "worst 1/22.7" and results["rss_vs_baseline"]["met"] is True
    assert results["rss_flat"]["value"] == pytest.approx(1.1) and results["rss_flat"]["met"] is True
    assert results["rate_vs_floor"]["value"] == pytest.approx(0.4) and results["rate_vs_floor"]["met"] is False
    assert results["first_records"]["value"] == 1.2 and results["first_records"]["met"] is False
    assert results["stream_read"]["met"] is False
    assert results["health_p99"]["target"].startswith("/health p99 ≤ 50 ms with 2 jobs running and 8 clients")
    assert results["health_p99"]["met"] is False
    assert results["jobs_cost_vs_history"]["value"] == pytest.approx(2.5)
    assert results["jobs_cost_vs_history"]["met"] is False
    assert results["jobs_cost_vs_history"]["detail"] == "2.000 vs 0.800 ms per id (10.0 vs 4.0 s)"
    # The same figures against other limits: the verdicts follow the limits, not the code.
    looser = load_targets(
        None, ["rate_vs_floor=0.4", "first_records=1.5", "health_p99=75", "rss_flat=1.05", "jobs_cost_vs_history=3"]
    )
    results = {r["id"]: r for r in evaluate(doc, looser)}
    assert results["rate_vs_floor"]["met"] is True and results["first_records"]["met"] is True
    assert results["health_p99"]["met"] is True and results["health_p99"]["target"].startswith("/health p99 ≤ 75 ms")
    assert results["rss_flat"]["met"] is False
    assert results["jobs_cost_vs_history"]["met"] is True
    # Nothing measured: said, not guessed.
    empty = {r["id"]: r for r in evaluate({}, declared_targets())}
    assert all(r["met"] is None and r["measured"].startswith("not measured") for r in empty.values())
