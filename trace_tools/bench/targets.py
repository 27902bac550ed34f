"""The targets a bench result is judged against, and the judging.

The bounds are not written here: they are declared in targets.toml beside this module (each
with the issue it comes from) and may be overridden by a file of the same shape (--targets)
and by --target ID=LIMIT. This module reads them, computes the measured value each one is
about from a bench result document, and says target, measured and verdict.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, replace
from fractions import Fraction
from importlib.resources import files
from pathlib import Path
from typing import Any

DECLARED = "trace_tools/bench/targets.toml"
# What evaluate() measures: targets.toml declares exactly these.
MSD_TARGETS = ("msd_wall_vs_plain", "msd_rss_vs_plain", "msd_rss_vs_baseline", "msd_reaggregation_s")
MEASURED = (
    "rss_vs_baseline",
    "rss_flat",
    "rate_vs_floor",
    "first_records",
    "stream_read",
    "health_p99",
    "jobs_cost_vs_history",
    *MSD_TARGETS,
)
COMPARES = {"<=": "≤", ">=": "≥"}
KEYS = {"limit", "compare", "measure", "source"}


@dataclass(frozen=True)
class Target:
    id: str
    limit: float
    compare: str  # "<=" or ">="
    measure: str
    source: str  # the issue the target comes from
    overridden_by: str | None = None  # a --targets file or "--target"; None: as declared

    @property
    def symbol(self) -> str:
        return COMPARES[self.compare]

    def met(self, value: float) -> bool:
        return value <= self.limit if self.compare == "<=" else value >= self.limit

    def worst(self, values: list[float]) -> float:
        """The value the verdict is on: the highest for an upper bound, the lowest for a lower one."""
        return max(values) if self.compare == "<=" else min(values)


def _number(text: str) -> float:
    """ "0.05", "50" or "1/20" → a float; ValueError otherwise."""
    try:
        return float(Fraction(text.strip()))
    except (ValueError, ZeroDivisionError):
        raise ValueError(f"a target limit must be a number or a fraction such as 1/20; got {text!r}") from None


def _merge(targets: dict[str, Target], tables: dict[str, Any], origin: str | None) -> dict[str, Target]:
    merged = dict(targets)
    for key, table in tables.items():
        if not isinstance(table, dict):
            raise ValueError(f"{origin or DECLARED}: [{key}] must be a table")
        unknown = set(table) - KEYS
        if unknown:
            raise ValueError(f"{origin or DECLARED}: [{key}] has unknown keys {sorted(unknown)}; known: {sorted(KEYS)}")
        if origin is not None and key not in merged:
            raise ValueError(f"{origin}: no target {key!r}; the targets are {', '.join(merged)}")
        fields = {k: table[k] for k in KEYS & set(table)}
        if "limit" in fields:
            if isinstance(fields["limit"], bool) or not isinstance(fields["limit"], (int, float)):
                raise ValueError(f"{origin or DECLARED}: [{key}] limit must be a number")
            fields["limit"] = float(fields["limit"])
        if fields.get("compare", "<=") not in COMPARES:
            raise ValueError(f"{origin or DECLARED}: [{key}] compare must be one of {', '.join(COMPARES)}")
        if origin is None:
            missing = KEYS - set(fields)
            if missing:
                raise ValueError(f"{DECLARED}: [{key}] lacks {sorted(missing)}")
            merged[key] = Target(id=key, **fields)
        else:
            merged[key] = replace(merged[key], **fields, overridden_by=origin)
    return merged


def declared_targets() -> dict[str, Target]:
    """The targets as declared in targets.toml."""
    text = files("trace_tools.bench").joinpath("targets.toml").read_text(encoding="utf-8")
    targets = _merge({}, tomllib.loads(text), None)
    if set(targets) != set(MEASURED):
        raise ValueError(f"{DECLARED} declares {sorted(targets)}; the bench measures {sorted(MEASURED)}")
    return targets


def load_targets(path: Path | None = None, overrides: list[str] | tuple[str, ...] = ()) -> dict[str, Target]:
    """targets.toml, then the file at `path`, then each "ID=LIMIT"; ValueError on anything unknown."""
    targets = declared_targets()
    if path is not None:
        try:
            tables = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ValueError(f"--targets {path}: {exc}") from None
        targets = _merge(targets, tables, str(path))
    for item in overrides:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or key not in targets:
            raise ValueError(f"--target expects ID=LIMIT with ID one of {', '.join(targets)}; got {item!r}")
        targets[key] = replace(targets[key], limit=_number(value), overridden_by="--target")
    return targets


def fraction(ratio: float) -> str:
    """0.0507 → "1/19.7": one decimal where rounding could hide which side of a bound it falls."""
    inverse = 1 / ratio
    return f"1/{inverse:,.1f}" if inverse < 100 else f"1/{inverse:,.0f}"


def _result(target: Target, text: str, value: float | None, measured: str, detail: str = "") -> dict[str, Any]:
    return {
        "id": target.id,
        "target": text,
        "measured": measured,
        "value": value,
        "met": None if value is None else target.met(value),
        "detail": detail,
        "limit": target.limit,
        "compare": target.compare,
        "source": target.source,
        "overridden_by": target.overridden_by,
    }


def _by_set(cases: list[dict[str, Any]], size: int) -> dict[str, dict[str, Any]]:
    return {"+".join(c["domains"]): c for c in cases if c["cids"] == size}


def _memory_and_rate(cases: list[dict[str, Any]], targets: dict[str, Target]) -> list[dict[str, Any]]:
    sizes = sorted({c["cids"] for c in cases})
    if not sizes:
        return [
            _result(targets[key], targets[key].measure, None, "not measured")
            for key in ("rss_vs_baseline", "rss_flat", "rate_vs_floor")
        ]
    largest, smallest = sizes[-1], sizes[0]
    big, small = _by_set(cases, largest), _by_set(cases, smallest)
    results = []

    t = targets["rss_vs_baseline"]
    parts, ratios = [], []
    for name, case in big.items():
        variants = case["variants"]
        ours, base = variants["ours"]["peak_rss_mb"], variants["baseline"]["peak_rss_mb"]
        floor = variants["floor"]["peak_rss_mb"]
        ratios.append(ours / base)
        # The floor holds the same interpreter, imports and one fetch batch: above it is what each design adds.
        parts.append(
            f"{name}: {ours:,.0f} MB vs {base:,.0f} MB ({fraction(ours / base)}); above the floor's "
            f"{floor:,.0f} MB: +{ours - floor:,.0f} vs +{base - floor:,.0f} MB"
        )
    worst = t.worst(ratios)
    results.append(
        _result(
            t,
            f"ours peak RSS {t.symbol} 1/{1 / t.limit:g} of baseline at {largest:,} ids",
            worst,
            f"worst {fraction(worst)}",
            "; ".join(parts),
        )
    )

    t = targets["rss_flat"]
    if largest == smallest:
        text = f"ours peak RSS at the largest size {t.symbol} {t.limit:g} × at the smallest"
        results.append(_result(t, text, None, f"not measured (one size only: {largest:,} ids)"))
    else:
        parts, growth = [], []
        for name, case in big.items():
            low = small[name]["variants"]["ours"]["peak_rss_mb"]
            high = case["variants"]["ours"]["peak_rss_mb"]
            growth.append(high / low)
            parts.append(f"{name}: {high:,.0f} MB vs {low:,.0f} MB (×{high / low:.2f})")
        text = f"ours peak RSS at {largest:,} ids {t.symbol} {t.limit:g} × at {smallest:,}"
        worst = t.worst(growth)
        results.append(_result(t, text, worst, f"worst ×{worst:.2f}", "; ".join(parts)))

    t = targets["rate_vs_floor"]
    parts, rates = [], []
    for name, case in big.items():
        ours, floor = case["variants"]["ours"]["records_per_s"], case["variants"]["floor"]["records_per_s"]
        rates.append(ours / floor)
        cpu = case["ratios"].get("cpu_rate_ours_over_floor")
        per_cpu = f"; per CPU-second ×{cpu:.2f}" if cpu else ""
        parts.append(f"{name}: {ours:,.0f} vs {floor:,.0f} records/s (×{ours / floor:.2f}{per_cpu})")
    worst = t.worst(rates)
    results.append(
        _result(
            t,
            f"ours records/s {t.symbol} {t.limit:g} × floor at {largest:,} ids",
            worst,
            f"worst ×{worst:.2f}",
            "; ".join(parts),
        )
    )
    return results


def _domain_costs(costs: dict[str, Any] | None, targets: dict[str, Target]) -> list[dict[str, Any]]:
    t = targets["jobs_cost_vs_history"]
    text = f"jobs domain per id {t.symbol} {t.limit:g} × the history domain's"
    if not costs:
        return [_result(t, text, None, "not measured")]
    jobs, history = costs["domains"]["jobs"], costs["domains"]["history"]
    ratio = jobs["s"] / history["s"]
    return [
        _result(
            t,
            f"{text} at {costs['cids']:,} ids",
            ratio,
            f"×{ratio:.2f}",
            f"{jobs['ms_per_id']:.3f} vs {history['ms_per_id']:.3f} ms per id "
            f"({jobs['s']:.1f} vs {history['s']:.1f} s)",
        )
    ]


def _server(http: dict[str, Any], targets: dict[str, Target]) -> list[dict[str, Any]]:
    results = []
    t = targets["first_records"]
    text = f"first live records {t.symbol} {t.limit:g} s after the job starts"
    first = http.get("first_records") or {}
    runs = first.get("runs", [])
    delays = [r["first_records_after_start_s"] for r in runs if r["first_records_after_start_s"] is not None]
    if delays:
        worst = t.worst(delays)
        which = "max" if t.compare == "<=" else "min"
        measured = f"{which} {worst:.2f} s (median {first['median_s']:.2f} s, {len(runs)} runs)"
        results.append(_result(t, text, worst, measured))
    else:
        results.append(_result(t, text, None, "not measured"))

    t = targets["stream_read"]
    text = f"stream read {t.symbol} {t.limit:g} × bare Redis GET loop"
    read = http.get("stream_read")
    if read:
        measured = f"×{read['stream_over_get']:.2f} ({read['stream_mb_s']:.0f} vs {read['get_loop_mb_s']:.0f} MB/s)"
        results.append(_result(t, text, read["stream_over_get"], measured))
    else:
        results.append(_result(t, text, None, "not measured"))

    # Judged on clients that accept gzip, as browsers do; the identity run is the diagnostic beside it.
    t = targets["health_p99"]
    health = http.get("health") or {}
    gzip_run = health.get("gzip") or {}
    gzip = gzip_run.get("under_load") or {}
    identity = (health.get("identity") or {}).get("under_load") or {}
    if gzip.get("p99_ms") is not None:
        text = (
            f"/health p99 {t.symbol} {t.limit:g} ms with {gzip_run['jobs']} jobs running and "
            f"{gzip_run['clients']} clients streaming (gzip, as browsers)"
        )
        detail = f"identity streams: p99 {identity['p99_ms']:.1f} ms" if identity.get("p99_ms") is not None else ""
        measured = f"p99 {gzip['p99_ms']:.1f} ms (p50 {gzip['p50_ms']:.1f} ms, {gzip['samples']} samples)"
        results.append(_result(t, text, gzip["p99_ms"], measured, detail))
    else:
        results.append(_result(t, f"/health p99 {t.symbol} {t.limit:g} ms under load", None, "not measured"))
    return results


def _msd(msd: dict[str, Any] | None, targets: dict[str, Target]) -> list[dict[str, Any]]:
    """The MSD case's four targets (docs/benchmarks.md, "The MSD case")."""
    texts = {
        "msd_wall_vs_plain": "MSD job wall {symbol} {limit:g} × the same job without the analysis",
        "msd_rss_vs_plain": "MSD job child's peak RSS {symbol} {limit:g} × the same job without the analysis",
        "msd_rss_vs_baseline": "MSD job child's peak RSS {symbol} 1/{inverse:g} of the seed's baseline",
        "msd_reaggregation_s": "re-aggregation with a new loss-reason filter {symbol} {limit:g} s",
    }

    def text(key: str) -> str:
        t = targets[key]
        return texts[key].format(symbol=t.symbol, limit=t.limit, inverse=round(1 / t.limit, 2) if t.limit else 0)

    if not msd:
        return [_result(targets[key], text(key), None, "not measured") for key in MSD_TARGETS]
    size = f" at {msd['seeds']:,} seeds / {msd['closure_containers']:,} containers"
    msd_job, plain, base = msd["jobs"]["msd"], msd["jobs"]["plain"], msd["baseline"]
    r = msd["ratios"]
    cpu = (
        f"; CPU {msd_job['cpu_s']:.1f} vs {plain['cpu_s']:.1f} s (×{r['cpu_msd_over_plain']:.2f})"
        if r.get("cpu_msd_over_plain")
        else ""
    )
    reagg = msd["http"]["reaggregation"]
    return [
        _result(
            targets["msd_wall_vs_plain"],
            text("msd_wall_vs_plain") + size,
            r["wall_msd_over_plain"],
            f"×{r['wall_msd_over_plain']:.2f}",
            f"{msd_job['wall_s']:.1f} vs {plain['wall_s']:.1f} s{cpu}",
        ),
        _result(
            targets["msd_rss_vs_plain"],
            text("msd_rss_vs_plain") + size,
            r["rss_msd_over_plain"],
            f"×{r['rss_msd_over_plain']:.2f}",
            f"{msd_job['peak_rss_mb']:,.0f} vs {plain['peak_rss_mb']:,.0f} MB",
        ),
        _result(
            targets["msd_rss_vs_baseline"],
            text("msd_rss_vs_baseline") + size,
            r["rss_msd_over_baseline"],
            fraction(r["rss_msd_over_baseline"]),
            f"{msd_job['peak_rss_mb']:,.0f} vs {base['peak_rss_mb']:,.0f} MB",
        ),
        _result(
            targets["msd_reaggregation_s"],
            text("msd_reaggregation_s") + f" ({reagg['filter']})",
            reagg["median_s"],
            f"median {reagg['median_s']:.2f} s of {reagg['runs']}",
            f"first (reads and parses the stored index) {reagg['first_s']:.2f} s, slowest {reagg['max_s']:.2f} s",
        ),
    ]


def evaluate(doc: dict[str, Any], targets: dict[str, Target]) -> list[dict[str, Any]]:
    """One result per target: target text, measured text and value, verdict (met: True/False/None)."""
    return (
        _memory_and_rate(doc.get("cases", []), targets)
        + _server(doc.get("http") or {}, targets)
        + _domain_costs(doc.get("domain_costs"), targets)
        + _msd(doc.get("msd"), targets)
    )
