"""From an MsdIndex and a loss-reason filter to the `aggregation` object the MSD page renders.

docs/msd.md defines every number; this module computes them with numpy over the index's arrays
(sums per factor are bincounts over the lot -> factor exposures), so that a new filter is
answered in a fraction of a second at the incident's size, without the database. The suspect
ranking is the forward selection of docs/msd.md §4, kept incremental: choosing a suspect
subtracts its lots from the sums of every factor they touch, instead of recomputing them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from sanic_trace.msd.index import KIND_NAMES, MACHINE, MATERIAL, WAFER_ROOT, MsdIndex

OTHER = "其他"
TOP_N = 10
MAX_SUSPECTS = 50
MIN_SUSPECT_LOTS = 3
# Material and wafer-root attribution lists hold the first this many rows (their totals say how
# many there are): tens of thousands at the incident's size, which no page lists (*ours*).
ATTRIBUTION_ROW_CAP = 1000
# Exposures summed at a time (sum_by_factor): bounds the weights' temporary array to a few MB.
SUM_SLICE = 1 << 18


def number(value: float) -> int | float:
    """Quantities as the warehouse has them: integers when integral."""
    value = float(value)
    return int(value) if value.is_integer() else value


def rate(part: float, whole: float) -> float:
    return round(float(part) / float(whole) * 100, 4) if whole else 0.0


def pareto(
    items: list[dict[str, Any]], top: int | None = TOP_N, rate_base: float | None = None
) -> list[dict[str, Any]]:
    """Sorted by defect_qty (then name), the top N plus one 其他 of the rest, with cumulative_pct.

    Items without an input (loss reasons) take their rate over `rate_base`; so does their 其他.
    """
    items = sorted(items, key=lambda item: (-item["defect_qty"], item["name"]))
    if top is not None and len(items) > top:
        rest = items[top:]
        items = items[:top]
        other: dict[str, Any] = {"name": OTHER}
        for field in ("input_qty", "defect_qty", "lot_count"):
            if field in rest[0]:
                other[field] = number(sum(item[field] for item in rest))
        if "input_qty" in other:
            other["defect_rate"] = rate(other["defect_qty"], other["input_qty"])
        elif rate_base is not None:
            other["defect_rate"] = rate(other["defect_qty"], rate_base)
        items.append(other)
    return _cumulated(items)


def _cumulated(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    total = sum(item["defect_qty"] for item in items)
    running = 0.0
    for item in items:
        running += item["defect_qty"]
        item["cumulative_pct"] = round(running / total * 100, 2) if total else 0.0
    return items


def filtered_defects(index: MsdIndex, loss_reasons: Sequence[str]) -> np.ndarray:
    """d per lot: its defect quantity over the filtered reasons (all reasons without a filter)."""
    keep = _reason_mask(index, loss_reasons)
    weights = index.defect_qty * keep[index.defect_reason] if len(index.defect_qty) else index.defect_qty
    return np.bincount(index.defect_lot, weights=weights, minlength=index.size).astype(np.float64)


def _reason_mask(index: MsdIndex, loss_reasons: Sequence[str]) -> np.ndarray:
    if not loss_reasons:
        return np.ones(len(index.reasons), dtype=bool)
    wanted = set(loss_reasons)
    return np.asarray([reason in wanted for reason in index.reasons], dtype=bool)


def reason_totals(index: MsdIndex, loss_reasons: Sequence[str] = ()) -> dict[str, float]:
    """Quantity per reason over the population (filtered when a filter is given), reasons with qty > 0."""
    totals = np.bincount(index.defect_reason, weights=index.defect_qty, minlength=len(index.reasons))
    keep = _reason_mask(index, loss_reasons)
    return {index.reasons[i]: float(totals[i]) for i in range(len(index.reasons)) if keep[i] and totals[i] > 0}


def aggregate(index: MsdIndex, loss_reasons: Sequence[str] = ()) -> dict[str, Any]:
    """The aggregation object (docs/msd.md §2-§6), for one loss-reason filter."""
    d = filtered_defects(index, loss_reasons)
    available = sorted(reason_totals(index))
    filtered = reason_totals(index, loss_reasons)
    common: dict[str, Any] = {
        "direction": index.direction,
        "mode": index.mode,
        "stations": index.stations,
        "loss_reasons": list(loss_reasons),
        "available_loss_reasons": available,
        "genealogy_status": index.genealogy_status,
        "genealogy_source": index.genealogy_source,
        "genealogy_error": index.genealogy_error,
        "container_mode_hint": _container_mode_hint(index),
        "daily_trend": _daily_trend(index, d),
        "detail_total_count": detail_count(index, loss_reasons),
    }
    total_input = float(index.input.sum())
    detection_chart = pareto(_by_detection_machine(index, d))
    if index.direction == "forward":
        return {**common, **_forward(index, d, total_input, detection_chart)}
    factors = _Factors(index, d)
    machines = _attribution_rows(index, factors, MACHINE)
    materials = _attribution_rows(index, factors, MATERIAL, ATTRIBUTION_ROW_CAP)
    roots = _attribution_rows(index, factors, WAFER_ROOT, ATTRIBUTION_ROW_CAP)
    reasons_chart = pareto(
        [
            {"name": name, "defect_qty": number(qty), "defect_rate": rate(qty, total_input)}
            for name, qty in filtered.items()
        ],
        top=None,
    )
    return {
        **common,
        "kpi": {
            "total_input": number(total_input),
            "lot_count": index.size,
            "defective_lot_count": int((d > 0).sum()),
            "total_defect_qty": number(d.sum()),
            "total_defect_rate": rate(d.sum(), total_input),
            "top_loss_reason": min(filtered, key=lambda r: (-filtered[r], r)) if filtered else "",
            "affected_machine_count": sum(1 for row in machines if row["DEFECT_QTY"] > 0),
        },
        "attribution": machines,
        "material_attribution": materials,
        "material_attribution_total": int((factors.kinds == MATERIAL).sum()),
        "wafer_root_attribution": roots,
        "wafer_root_attribution_total": int((factors.kinds == WAFER_ROOT).sum()),
        "suspects": _suspects(index, factors),
        "charts": {
            "by_machine": pareto(_by_machine_name(index, factors)),
            "by_material": _factor_chart(factors, MATERIAL),
            "by_wafer_root": _factor_chart(factors, WAFER_ROOT),
            "by_loss_reason": reasons_chart,
            "by_detection_machine": detection_chart,
        },
    }


# -- common parts --------------------------------------------------------------------------------


def _container_mode_hint(index: MsdIndex) -> dict[str, Any] | None:
    if index.mode != "container" or not index.missing_count:
        return None
    return {"missing_count": index.missing_count, "missing_lots": index.missing_names}


def _daily_trend(index: MsdIndex, d: np.ndarray) -> list[dict[str, Any]]:
    if index.mode == "container" or not index.size:
        return []
    inputs = np.bincount(index.day, weights=index.input, minlength=len(index.days))
    defects = np.bincount(index.day, weights=d, minlength=len(index.days))
    return [
        {
            "date": day,
            "input_qty": number(inputs[i]),
            "defect_qty": number(defects[i]),
            "defect_rate": rate(defects[i], inputs[i]),
        }
        for i, day in sorted(enumerate(index.days), key=lambda pair: pair[1])
    ]


def _by_detection_machine(index: MsdIndex, d: np.ndarray) -> list[dict[str, Any]]:
    n = len(index.det_machines)
    inputs = np.bincount(index.det_machine, weights=index.input, minlength=n)
    defects = np.bincount(index.det_machine, weights=d, minlength=n)
    lots = np.bincount(index.det_machine, minlength=n)
    return [
        {
            "name": name,
            "input_qty": number(inputs[i]),
            "defect_qty": number(defects[i]),
            "defect_rate": rate(defects[i], inputs[i]),
            "lot_count": int(lots[i]),
        }
        for i, name in enumerate(index.det_machines)
        if lots[i]
    ]


# -- backward --------------------------------------------------------------------------------------


class _Factors:
    """Per factor: exposed lots, Σ input, Σ d, and its score; the lot <-> factor exposures."""

    def __init__(self, index: MsdIndex, d: np.ndarray) -> None:
        n_factors = len(index.factors)
        self.n = n_factors
        self.d = d
        self.pair_factor = index.exposure_factors
        self.pair_lot = np.repeat(np.arange(index.size, dtype=np.int32), np.diff(index.exposure_offsets))
        self.lots = np.bincount(self.pair_factor, minlength=n_factors)
        self.input = self.sum_by_factor(index.input)
        self.defect = self.sum_by_factor(d)
        self.evaluated = index.input > 0  # U0
        self.rate = np.where(self.evaluated, d / np.where(self.evaluated, index.input, 1.0), 0.0)
        self.in_u = self.evaluated.copy()  # U: the lots still to explain
        u = self.evaluated.astype(np.float64)
        self.u_count = self.sum_by_factor(u)
        self.u_sum = self.sum_by_factor(self.rate * u)
        self.n_u = float(u.sum())
        self.s1 = float((self.rate * u).sum())
        self.s2 = float((self.rate * self.rate * u).sum())
        self.score = np.round(self.z(), 4)
        self.kinds = np.asarray([f[0] for f in index.factors], dtype=np.int8)
        self.names = [str(f[1]) for f in index.factors]

    def sum_by_factor(self, per_lot: np.ndarray) -> np.ndarray:
        """Σ over each factor's exposed lots of a per-lot value; in slices of the exposures, so that
        the per-exposure weights are never one array of millions at once."""
        total = np.zeros(self.n, dtype=np.float64)
        for start in range(0, len(self.pair_factor), SUM_SLICE):
            stop = start + SUM_SLICE
            total += np.bincount(
                self.pair_factor[start:stop], weights=per_lot[self.pair_lot[start:stop]], minlength=self.n
            )
        return total

    def z(self) -> np.ndarray:
        """docs/msd.md §4: the pooled-variance lot-level z of every factor over the current U."""
        n, e = self.n_u, self.u_count
        rest = n - e
        with np.errstate(divide="ignore", invalid="ignore"):
            variance = (self.s2 - self.s1 * self.s1 / n) / (n - 1) if n > 1 else 0.0
            mean_e = self.u_sum / e
            mean_r = (self.s1 - self.u_sum) / rest
            z = (mean_e - mean_r) / np.sqrt(variance * (1 / e + 1 / rest))
        # "The rates are not all equal" decided exactly, not by a float variance that cancels to ~0.
        valid = (e >= 1) & (rest >= 1) & self.rates_differ()
        return np.where(valid, z, 0.0)

    def rates_differ(self) -> bool:
        rates = self.rate[self.in_u]
        return bool(len(rates) > 1 and rates.min() != rates.max())

    def lots_of(self, factor: int) -> np.ndarray:
        return self.pair_lot[self.pair_factor == factor]


def _joined(values: list[str], present: np.ndarray) -> str:
    """The distinct non-empty values whose codes are present, sorted, joined with ", "."""
    return ", ".join(sorted({values[c] for c in np.flatnonzero(present).tolist()} - {""}))


def _codes_seen(factors: _Factors, wanted: np.ndarray, codes: np.ndarray, n_codes: int) -> np.ndarray:
    """[wanted factor, code] -> whether a lot exposed to that factor has that code, by bincounts over
    slices of the exposures (one small table, no per-factor lot lists)."""
    local = np.full(factors.n, -1, dtype=np.int64)
    local[wanted] = np.arange(len(wanted))
    counts = np.zeros(len(wanted) * n_codes, dtype=np.int64)
    for start in range(0, len(factors.pair_factor), SUM_SLICE):
        stop = start + SUM_SLICE
        mine = local[factors.pair_factor[start:stop]]
        keep = mine >= 0
        cells = mine[keep] * n_codes + codes[factors.pair_lot[start:stop][keep]]
        counts += np.bincount(cells, minlength=len(counts))
    return counts.reshape(len(wanted), n_codes) > 0


def _attribution_rows(index: MsdIndex, factors: _Factors, kind: int, cap: int | None = None) -> list[dict[str, Any]]:
    """The attribution rows of one kind in their documented order; with `cap`, only the first `cap`
    of them are built (materials and wafer roots run to tens of thousands)."""
    rows = []
    wanted = np.flatnonzero(factors.kinds == kind)
    with np.errstate(divide="ignore", invalid="ignore"):
        rates = np.where(
            factors.input > 0, np.round(factors.defect / np.where(factors.input > 0, factors.input, 1) * 100, 4), 0.0
        )

    def order_key(f: int) -> tuple:
        key = index.factors[f]
        return (
            -factors.score[f],
            -rates[f],
            key[1],
            str(key[2]) if len(key) > 2 else "",
            str(key[4]) if kind == MACHINE else "",
        )

    if kind == MACHINE:
        wanted = np.asarray(sorted(wanted.tolist(), key=order_key)[:cap], dtype=np.int64)
    else:
        # Tens of thousands: the same order by numpy (no key field beyond the name and the part).
        names = np.asarray([str(index.factors[f][1]) for f in wanted.tolist()])
        parts = np.asarray([str(index.factors[f][2]) if kind == MATERIAL else "" for f in wanted.tolist()])
        order = np.lexsort((parts, names, -rates[wanted], -factors.score[wanted]))
        wanted = wanted[order[:cap]]
    if kind == MACHINE and len(wanted):
        # The joined lot facts of each machine (which workflows, lines, ... its lots have).
        n_facts, n_machines = max(1, len(index.facts)), max(1, len(index.det_machines))
        seen = {
            "WORKFLOW": (index.facts, _codes_seen(factors, wanted, index.workflow, n_facts)),
            "PRODUCTLINENAME": (index.facts, _codes_seen(factors, wanted, index.productline, n_facts)),
            "PJ_TYPE": (index.facts, _codes_seen(factors, wanted, index.pj_type, n_facts)),
            "DETECTION_EQUIPMENTNAME": (
                index.det_machines,
                _codes_seen(factors, wanted, index.det_machine, n_machines),
            ),
        }
        row_of = {int(f): i for i, f in enumerate(wanted.tolist())}
    for f in wanted.tolist():
        key = index.factors[f]
        numbers = {
            "INPUT_QTY": number(factors.input[f]),
            "DEFECT_QTY": number(factors.defect[f]),
            "DEFECT_RATE": rate(factors.defect[f], factors.input[f]),
            "DETECTION_LOT_COUNT": int(factors.lots[f]),
            "score": float(factors.score[f]),
        }
        if kind == MACHINE:
            row = {
                "WORKCENTER_GROUP": key[2],
                "EQUIPMENT_NAME": key[1],
                "EQUIPMENT_ID": key[4],
                "RESOURCEFAMILYNAME": key[5],
                **numbers,
                **{name: _joined(values, table[row_of[f]]) for name, (values, table) in seen.items()},
            }
        elif kind == MATERIAL:
            row = {"MATERIAL_KEY": key[1], "MATERIAL_PART_NAME": key[2], "MATERIAL_LOT_NAME": key[3], **numbers}
        else:
            row = {"ROOT_CONTAINER_NAME": key[1], **numbers}
        rows.append(row)
    return rows


def _chart_items(factors: _Factors, kind: int) -> list[dict[str, Any]]:
    return [_chart_item(factors, f) for f in np.flatnonzero(factors.kinds == kind).tolist()]


def _chart_item(factors: _Factors, f: int) -> dict[str, Any]:
    return {
        "name": factors.names[f],
        "input_qty": number(factors.input[f]),
        "defect_qty": number(factors.defect[f]),
        "defect_rate": rate(factors.defect[f], factors.input[f]),
        "lot_count": int(factors.lots[f]),
    }


def _factor_chart(factors: _Factors, kind: int) -> list[dict[str, Any]]:
    """pareto() of one kind's factors, the top N found with numpy: tens of thousands of wafer roots
    or material lots become N items and one 其他 of sums, never a dict each."""
    idx = np.flatnonzero(factors.kinds == kind)
    if len(idx) <= TOP_N:
        return pareto(_chart_items(factors, kind))
    names = np.asarray([factors.names[f] for f in idx.tolist()])
    order = np.lexsort((names, -factors.defect[idx]))
    top, rest = idx[order[:TOP_N]], idx[order[TOP_N:]]
    other = {
        "name": OTHER,
        "input_qty": number(factors.input[rest].sum()),
        "defect_qty": number(factors.defect[rest].sum()),
        "lot_count": int(factors.lots[rest].sum()),
    }
    other["defect_rate"] = rate(other["defect_qty"], other["input_qty"])
    return _cumulated([*(_chart_item(factors, f) for f in top.tolist()), other])


def _by_machine_name(index: MsdIndex, factors: _Factors) -> list[dict[str, Any]]:
    """By EQUIPMENT_NAME, merged over groups: a lot counts once per name."""
    machines = np.flatnonzero(factors.kinds == MACHINE)
    names = sorted({factors.names[f] for f in machines.tolist()})
    if len(names) == len(machines):
        return _chart_items(factors, MACHINE)
    code_of = {name: i for i, name in enumerate(names)}
    name_code = np.full(factors.n, -1, dtype=np.int64)
    for f in machines.tolist():
        name_code[f] = code_of[factors.names[f]]
    codes = name_code[factors.pair_factor]
    keep = codes >= 0
    pairs = np.unique((factors.pair_lot[keep].astype(np.int64) << 20) | codes[keep])
    lots, codes = pairs >> 20, pairs & ((1 << 20) - 1)
    inputs = np.bincount(codes, weights=index.input[lots], minlength=len(names))
    defects = np.bincount(codes, weights=factors.d[lots], minlength=len(names))
    counts = np.bincount(codes, minlength=len(names))
    return [
        {
            "name": name,
            "input_qty": number(inputs[i]),
            "defect_qty": number(defects[i]),
            "defect_rate": rate(defects[i], inputs[i]),
            "lot_count": int(counts[i]),
        }
        for i, name in enumerate(names)
    ]


def _suspects(index: MsdIndex, factors: _Factors) -> list[dict[str, Any]]:
    """docs/msd.md §4: forward selection over all factors, on the lots earlier suspects leave."""

    def tie_order(f: int) -> tuple:
        # Ties: kind, then name, then the key fields (docs/msd.md §4).
        return (index.factors[f][0], [str(v) for v in index.factors[f][1:]])

    eligible = factors.lots >= MIN_SUSPECT_LOTS
    chosen: list[int] = []
    scores: list[float] = []
    u = factors.in_u
    by_lot_offsets = index.exposure_offsets
    while len(chosen) < MAX_SUSPECTS:
        z = factors.z()
        candidates = eligible & (factors.u_count >= MIN_SUSPECT_LOTS)
        candidates[chosen] = False
        if not candidates.any():
            break
        idx = np.flatnonzero(candidates)
        # Compared to 9 decimals: sums kept incrementally differ from fresh ones in the last bits,
        # and two factors with the same lots in U must tie exactly (docs/msd.md §4).
        compared = np.round(z[idx], 9)
        tied = idx[compared == compared.max()]
        best = min(tied.tolist(), key=tie_order)
        if z[best] <= 0:
            break
        chosen.append(best)
        scores.append(round(float(z[best]), 4))
        # Remove its lots still in U: every factor they touch loses them.
        lots = factors.lots_of(best)
        lots = lots[u[lots]]
        u[lots] = False
        starts, stops = by_lot_offsets[lots], by_lot_offsets[lots + 1]
        counts = stops - starts
        positions = np.repeat(starts - np.cumsum(counts) + counts, counts) + np.arange(int(counts.sum()))
        touched = index.exposure_factors[positions]
        weights = np.repeat(factors.rate[lots], counts)
        factors.u_count -= np.bincount(touched, minlength=factors.n)
        factors.u_sum -= np.bincount(touched, weights=weights, minlength=factors.n)
        factors.n_u -= len(lots)
        factors.s1 -= float(factors.rate[lots].sum())
        factors.s2 -= float((factors.rate[lots] ** 2).sum())
    exposed = {f: set(factors.lots_of(f).tolist()) for f in chosen}
    suspects = []
    for position, (f, conditional) in enumerate(zip(chosen, scores, strict=True)):
        key = index.factors[f]
        explained = None
        for earlier in chosen[:position]:
            shared = len(exposed[f] & exposed[earlier])
            if shared and (explained is None or shared > explained["shared_lots"]):
                explained = {
                    "kind": KIND_NAMES[index.factors[earlier][0]],
                    "name": factors.names[earlier],
                    "shared_lots": shared,
                }
        suspect: dict[str, Any] = {"kind": KIND_NAMES[key[0]], "name": factors.names[f]}
        if key[0] == MACHINE:
            suspect.update({"WORKCENTER_GROUP": key[2], "EQUIPMENT_NAME": key[1], "EQUIPMENT_ID": key[4]})
        elif key[0] == MATERIAL:
            suspect.update({"MATERIAL_KEY": key[1], "MATERIAL_PART_NAME": key[2], "MATERIAL_LOT_NAME": key[3]})
        else:
            suspect["ROOT_CONTAINER_NAME"] = key[1]
        suspect.update(
            {
                "lot_count": int(factors.lots[f]),
                "input_qty": number(factors.input[f]),
                "defect_qty": number(factors.defect[f]),
                "defect_rate": rate(factors.defect[f], factors.input[f]),
                "score": float(factors.score[f]),
                "conditional_score": conditional,
                "explained_by": explained,
            }
        )
        suspects.append(suspect)
    return suspects


# -- forward ---------------------------------------------------------------------------------------


def _forward(index: MsdIndex, d: np.ndarray, total_input: float, detection_chart: list) -> dict[str, Any]:
    stations = []
    for station in index.forward.get("stations", []):
        stations.append(
            {
                **station,
                "input_qty": number(station["input_qty"]),
                "reject_qty": number(station["reject_qty"]),
                "reject_rate": rate(station["reject_qty"], station["input_qty"]),
                "machines": [
                    {"name": m["name"], "input_qty": number(m["input_qty"]), "reject_qty": number(m["reject_qty"])}
                    for m in station["machines"]
                ],
                "_machine_lots": {m["name"]: m["lot_count"] for m in station["machines"]},
                "loss_reasons": [{"name": r["name"], "qty": number(r["qty"])} for r in station["loss_reasons"]],
            }
        )
    downstream_input = sum(s["input_qty"] for s in stations)
    downstream_reject = sum(s["reject_qty"] for s in stations)
    machines: dict[str, list[float]] = {}
    reasons: dict[str, float] = {}
    for station in stations:
        lots_on = station.pop("_machine_lots")
        for m in station["machines"]:
            totals = machines.setdefault(m["name"], [0.0, 0.0, 0])
            totals[0] += m["input_qty"]
            totals[1] += m["reject_qty"]
            totals[2] += lots_on[m["name"]]
        for r in station["loss_reasons"]:
            reasons[r["name"]] = reasons.get(r["name"], 0.0) + r["qty"]
    return {
        "kpi": {
            "detection_lot_count": index.size,
            "detection_defect_qty": number(d.sum()),
            "tracked_lot_count": index.forward.get("tracked_lot_count", index.size),
            "downstream_stations_reached": sum(1 for s in stations if s["lots_reached"] > 0),
            "downstream_total_reject": number(downstream_reject),
            "downstream_reject_rate": rate(downstream_reject, downstream_input),
        },
        "attribution": [],
        "material_attribution": [],
        "material_attribution_total": 0,
        "wafer_root_attribution": [],
        "wafer_root_attribution_total": 0,
        "suspects": [],
        "downstream_stations": stations,
        "charts": {
            "by_downstream_station": pareto(
                [
                    {
                        "name": s["station"],
                        "input_qty": s["input_qty"],
                        "defect_qty": s["reject_qty"],
                        "defect_rate": s["reject_rate"],
                        "lot_count": s["lots_reached"],
                    }
                    for s in stations
                ],
                top=None,
            ),
            "by_downstream_machine": pareto(
                [
                    {
                        "name": name,
                        "input_qty": number(i),
                        "defect_qty": number(r),
                        "defect_rate": rate(r, i),
                        "lot_count": lots,
                    }
                    for name, (i, r, lots) in machines.items()
                ]
            ),
            "by_downstream_loss_reason": pareto(
                [
                    {"name": name, "defect_qty": number(q), "defect_rate": rate(q, downstream_input)}
                    for name, q in reasons.items()
                ],
                rate_base=downstream_input,
            ),
            "by_detection_machine": detection_chart,
        },
    }


def detail_count(index: MsdIndex, loss_reasons: Sequence[str]) -> int:
    """Detail rows: one per (lot, filtered reason with qty > 0), or one for a lot with none."""
    keep = _reason_mask(index, loss_reasons)
    rows = (index.defect_qty > 0) & keep[index.defect_reason] if len(index.defect_qty) else np.zeros(0, dtype=bool)
    per_lot = np.bincount(index.defect_lot[rows], minlength=index.size)
    return int(np.maximum(per_lot, 1).sum())
