"""trace_tools without a run: the one percentile of the tools, and the service surface they import.

The runs themselves are in test_bench_smoke.py and test_loadtest.py.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import trace_tools
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
