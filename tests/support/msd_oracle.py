"""An independent oracle of the mid-section-defect (MSD) aggregation, written from docs/msd.md alone.

It reads the whole warehouse file with plain SQL (each table once, into dicts) and computes every
number of the aggregation in straightforward Python: breadth-first search for the genealogy, sets
for exposures, plain sums for quantities. It imports nothing but the standard library (`sqlite3`,
`math`, ...) and nothing of `sanic_trace`, so that a test comparing the service with it compares
two computations that share no code.

    msd_oracle(db_path, seeds=[...], station="測試", direction="backward",
               start_date="2026-01-05", end_date="2026-06-03", loss_reasons=None) -> dict
    msd_detail_rows(db_path, <same arguments>) -> list[dict]

Date mode when both `start_date` and `end_date` are given (inclusive days), container mode when
neither is. The section numbers in the comments are those of docs/msd.md. Where the document is
ambiguous, the choice made here is marked `CHOICE:`.
"""

from __future__ import annotations

import math
import os
import sqlite3
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

UNKNOWN = "(未知)"  # a NULL loss reason; a machine without a DW_MES_RESOURCE row
OTHERS = "其他"  # the Pareto bucket after the top 10
TOP_N = 10
GENEALOGY_STEPS = 20
SUSPECT_ROUNDS = 50
SUSPECT_MIN_LOTS = 3
KIND_ORDER = {"machine": 0, "material": 1, "wafer_root": 2}
ATTRIBUTION_ROW_CAP = 1000
REJECT_COLUMNS = ("REJECTQTY", "STANDBYQTY", "QTYTOPROCESS", "INPROCESSQTY", "PROCESSEDQTY", "DEFECTQTY")


# --- reading the warehouse ------------------------------------------------------------------------


@dataclass(frozen=True)
class HistoryRow:
    history_id: int
    container_id: str
    workcenter: str | None
    spec: str | None
    equipment_id: str | None
    equipment_name: str | None
    track_in: datetime | None
    track_in_qty: int  # NULL read as 0


@dataclass(frozen=True)
class MaterialRow:
    container_id: str
    part: str | None
    lot: str | None
    spec: str | None


@dataclass(frozen=True)
class RejectRow:
    container_id: str
    workcenter: str | None
    spec: str | None
    equipment_name: str | None
    reason: str  # NULL read as (未知)
    qty: int  # the six quantity columns, NULL read as 0
    txn: datetime | None


@dataclass(frozen=True)
class SpecRow:
    workcenter: str
    group: str
    order: int


@dataclass(frozen=True)
class ContainerRow:
    name: str
    split_from: str | None
    pj_type: str | None
    product_line: str | None
    workflow: str | None


@dataclass
class Warehouse:
    specs: dict[str, SpecRow] = field(default_factory=dict)
    families: dict[str, str | None] = field(default_factory=dict)  # RESOURCEID -> RESOURCEFAMILYNAME
    containers: dict[str, ContainerRow] = field(default_factory=dict)
    parents: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    children: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    history: dict[str, list[HistoryRow]] = field(default_factory=lambda: defaultdict(list))
    materials: dict[str, list[MaterialRow]] = field(default_factory=lambda: defaultdict(list))
    rejects: dict[str, list[RejectRow]] = field(default_factory=lambda: defaultdict(list))


def _time(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


def read_warehouse(db_path: str | os.PathLike[str]) -> Warehouse:
    """Every table the analysis needs, read once with plain SQL."""
    wh = Warehouse()
    conn = sqlite3.connect(f"file:{os.fspath(db_path)}?mode=ro", uri=True)
    try:
        q = conn.execute
        for spec, wc, group, order in q(
            "SELECT SPECNAME, WORKCENTERNAME, WORKCENTER_GROUP, WORKCENTERSEQUENCE_GROUP FROM DW_MES_SPEC_WORKCENTER_V"
        ):
            wh.specs[spec] = SpecRow(wc, group, int(order))
        for resource_id, family in q("SELECT RESOURCEID, RESOURCEFAMILYNAME FROM DW_MES_RESOURCE"):
            wh.families[resource_id] = family
        for cid, name, split_from, pj_type, line, workflow in q(
            "SELECT CONTAINERID, CONTAINERNAME, SPLITFROMID, PJ_TYPE, PRODUCTLINENAME, WORKFLOWNAME"
            " FROM DW_MES_CONTAINER"
        ):
            wh.containers[cid] = ContainerRow(name if name is not None else cid, split_from, pj_type, line, workflow)
            if split_from is not None:
                wh.parents[cid].add(split_from)
                wh.children[split_from].add(cid)
        # §3: a finished lot (LOTID) has its source CONTAINERIDs as parents.
        for source, finished in q("SELECT CONTAINERID, LOTID FROM DW_MES_PJ_COMBINEDASSYLOTS"):
            wh.parents[finished].add(source)
            wh.children[source].add(finished)
        for hid, cid, wc, spec, eq_id, eq_name, track_in, qty_in in q(
            "SELECT HISTORYID, CONTAINERID, WORKCENTERNAME, SPECNAME, EQUIPMENTID, EQUIPMENTNAME, TRACKINTIMESTAMP,"
            " TRACKINQTY FROM DW_MES_LOTWIPHISTORY"
        ):
            wh.history[cid].append(HistoryRow(hid, cid, wc, spec, eq_id, eq_name, _time(track_in), qty_in or 0))
        for cid, part, lot, spec in q(
            "SELECT CONTAINERID, MATERIALPARTNAME, MATERIALLOTNAME, SPECNAME FROM DW_MES_LOTMATERIALSHISTORY"
        ):
            wh.materials[cid].append(MaterialRow(cid, part, lot, spec))
        columns = ", ".join(REJECT_COLUMNS)
        for cid, wc, spec, eq_name, reason, txn, *quantities in q(
            "SELECT CONTAINERID, WORKCENTERNAME, SPECNAME, EQUIPMENTNAME, LOSSREASONNAME, TXNDATE, "
            f"{columns} FROM DW_MES_LOTREJECTHISTORY"
        ):
            qty = sum(v or 0 for v in quantities)
            wh.rejects[cid].append(
                RejectRow(cid, wc, spec, eq_name, reason if reason is not None else UNKNOWN, qty, _time(txn))
            )
    finally:
        conn.close()
    return wh


_CACHE: dict[tuple[str, int, int], Warehouse] = {}


def _warehouse(db_path: str | os.PathLike[str]) -> Warehouse:
    """read_warehouse, remembered for the last file read (keyed by path, size and modification time)."""
    path = os.path.realpath(os.fspath(db_path))
    stat = os.stat(path)
    key = (path, stat.st_size, stat.st_mtime_ns)
    if key not in _CACHE:
        _CACHE.clear()
        _CACHE[key] = read_warehouse(path)
    return _CACHE[key]


# --- small helpers --------------------------------------------------------------------------------


def rate(numerator: float, denominator: float, digits: int = 4) -> float:
    """round(numerator / denominator × 100, digits), 0 when the denominator is 0."""
    if not denominator:
        return 0
    return round(numerator / denominator * 100, digits)


def _text(value: Any) -> str:
    """A sort key for a value that may be NULL."""
    return "" if value is None else str(value)


def _parse_reasons(loss_reasons: list[str] | str | None) -> set[str] | None:
    """§1: a list, or one string of ','-separated names; blanks dropped; empty = no filter (None)."""
    if loss_reasons is None:
        return None
    items = loss_reasons.split(",") if isinstance(loss_reasons, str) else list(loss_reasons)
    names = {str(item).strip() for item in items}
    names.discard("")
    return names or None


def reach(start: str, edges: dict[str, set[str]], steps: int = GENEALOGY_STEPS) -> set[str]:
    """`start` and every container reachable from it through `edges` within `steps` steps (BFS)."""
    seen = {start}
    frontier = [start]
    for _ in range(steps):
        following = []
        for node in frontier:
            for other in edges.get(node, ()):
                if other not in seen:
                    seen.add(other)
                    following.append(other)
        frontier = following
    return seen


def pareto(items: list[dict[str, Any]], top: int | None = TOP_N) -> list[dict[str, Any]]:
    """§4 Charts: items {name, input_qty, defect_qty, lot_count} -> the Pareto list.

    Sorted by defect_qty descending then name; the top `top` items then, when more remain, one 其他
    item of the rest's sums (rate from the sums); each item gets defect_rate and cumulative_pct.
    """
    ordered = sorted(items, key=lambda item: (-item["defect_qty"], _text(item["name"])))
    if top is not None and len(ordered) > top:
        rest = ordered[top:]
        ordered = ordered[:top] + [
            {
                "name": OTHERS,
                "input_qty": sum(item["input_qty"] for item in rest),
                "defect_qty": sum(item["defect_qty"] for item in rest),
                "lot_count": sum(item["lot_count"] for item in rest),
            }
        ]
    total = sum(item["defect_qty"] for item in ordered)
    out, running = [], 0
    for item in ordered:
        running += item["defect_qty"]
        out.append(
            {
                "name": item["name"],
                "input_qty": item["input_qty"],
                "defect_qty": item["defect_qty"],
                "defect_rate": rate(item["defect_qty"], item["input_qty"]),
                "lot_count": item["lot_count"],
                "cumulative_pct": rate(running, total, 2),
            }
        )
    return out


def reason_pareto(quantities: dict[str, int], total_input: int, top: int | None) -> list[dict[str, Any]]:
    """A loss-reason chart: {name, defect_qty, defect_rate = qty / total_input × 100, cumulative_pct}."""
    ordered = sorted(quantities.items(), key=lambda kv: (-kv[1], kv[0]))
    if top is not None and len(ordered) > top:
        ordered = ordered[:top] + [(OTHERS, sum(qty for _, qty in ordered[top:]))]
    total = sum(qty for _, qty in ordered)
    out, running = [], 0
    for name, qty in ordered:
        running += qty
        out.append(
            {
                "name": name,
                "defect_qty": qty,
                "defect_rate": rate(qty, total_input),
                "cumulative_pct": rate(running, total, 2),
            }
        )
    return out


# --- §1 inputs ------------------------------------------------------------------------------------


@dataclass
class Stations:
    workcenters: set[str]  # W
    o_min: int
    o_max: int


def resolve_stations(wh: Warehouse, station: str) -> Stations:
    names = [name.strip() for name in station.split(",") if name.strip()]
    if not names:
        raise ValueError("no detection station")
    groups = {row.group for row in wh.specs.values()}
    workcenters_known = {row.workcenter for row in wh.specs.values()}
    workcenters: set[str] = set()
    detection_groups: set[str] = set()
    for name in names:
        if name not in groups and name not in workcenters_known:
            raise ValueError(f"unknown station {name!r}")
        # CHOICE: a name that is both a group and a work center (測試 in the demo) counts as both.
        if name in groups:
            detection_groups.add(name)
            workcenters |= {row.workcenter for row in wh.specs.values() if row.group == name}
        if name in workcenters_known:
            workcenters.add(name)
            detection_groups |= {row.group for row in wh.specs.values() if row.workcenter == name}
    orders = {row.order for row in wh.specs.values() if row.group in detection_groups}
    return Stations(workcenters, min(orders), max(orders))


def _window(start_date: str | date | None, end_date: str | date | None) -> tuple[datetime, datetime] | None:
    if start_date is None and end_date is None:
        return None
    if start_date is None or end_date is None:
        raise ValueError("date mode needs both start_date and end_date")
    start = start_date if isinstance(start_date, date) else date.fromisoformat(start_date)
    end = end_date if isinstance(end_date, date) else date.fromisoformat(end_date)
    return datetime.combine(start, datetime.min.time()), datetime.combine(end + timedelta(days=1), datetime.min.time())


def _in_window(moment: datetime | None, window: tuple[datetime, datetime] | None) -> bool:
    if window is None:
        return True
    return moment is not None and window[0] <= moment < window[1]


# --- the analysis ---------------------------------------------------------------------------------


@dataclass
class Lot:
    """A population lot (§2) with its genealogy (§3)."""

    container_id: str
    name: str
    pj_type: str | None
    product_line: str | None
    workflow: str
    detection_machine: str | None
    detection_day: str
    input: int
    defects_by_reason: dict[str, int]  # every reason, unfiltered
    d: int = 0  # the (filtered) defect quantity
    closure: set[str] = field(default_factory=set)
    tracked: set[str] = field(default_factory=set)
    wafer_root: str = ""


@dataclass
class Factor:
    kind: str  # machine | material | wafer_root
    name: Any
    tie: tuple[str, ...]  # what orders two factors of one kind and name
    keys: dict[str, Any]  # the key fields, as in the attribution row
    lots: set[int] = field(default_factory=set)  # E: indices of the exposed population lots


def _analyse(
    db_path: str | os.PathLike[str],
    seeds: list[str],
    station: str,
    direction: str,
    start_date: str | date | None,
    end_date: str | date | None,
    loss_reasons: list[str] | str | None,
    genealogy_error: str | None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    if direction not in ("backward", "forward"):
        raise ValueError(f"unknown direction {direction!r}")
    wh = _warehouse(db_path)
    st = resolve_stations(wh, station)
    window = _window(start_date, end_date)
    reasons_filter = _parse_reasons(loss_reasons)

    def container_name(cid: str) -> str:
        row = wh.containers.get(cid)
        return row.name if row is not None else cid

    def spec_order(spec: str | None) -> int | None:
        row = wh.specs.get(spec) if spec is not None else None
        return row.order if row is not None else None

    def is_upstream(spec: str | None) -> bool:
        order = spec_order(spec)
        return order is not None and order < st.o_min

    def is_downstream(spec: str | None) -> bool:
        order = spec_order(spec)
        return order is not None and order > st.o_max

    # §2 the detection population.
    lots: list[Lot] = []
    missing: list[str] = []
    for cid in dict.fromkeys(seeds):  # distinct, first occurrence order
        track_ins = [
            row
            for row in wh.history.get(cid, ())
            if row.equipment_id is not None
            and row.track_in is not None
            and row.workcenter in st.workcenters
            and _in_window(row.track_in, window)
        ]
        if not track_ins:
            missing.append(cid)
            continue
        detection = max(track_ins, key=lambda row: (row.track_in, row.history_id))
        lot_input = max(
            row.track_in_qty
            for row in track_ins
            if row.equipment_id == detection.equipment_id and row.track_in == detection.track_in
        )
        defects: dict[str, int] = defaultdict(int)
        for rej in wh.rejects.get(cid, ()):
            # docs/msd.md §2: a reject row is placed by its SPECNAME's work center.
            spec = wh.specs.get(rej.spec)
            if spec is not None and spec.workcenter in st.workcenters and _in_window(rej.txn, window):
                defects[rej.reason] += rej.qty
        facts = wh.containers.get(cid)
        lots.append(
            Lot(
                container_id=cid,
                name=container_name(cid),
                # docs/msd.md §2: PJ_TYPE / PRODUCTLINENAME / WORKFLOW are "" for NULL or a missing row.
                pj_type=(facts.pj_type or "") if facts is not None else "",
                product_line=(facts.product_line or "") if facts is not None else "",
                workflow=(facts.workflow or "") if facts is not None else "",
                detection_machine=detection.equipment_name or "",
                detection_day=detection.track_in.date().isoformat(),
                input=lot_input,
                defects_by_reason=dict(defects),
            )
        )

    reason_totals: dict[str, int] = defaultdict(int)
    for lot in lots:
        for reason, qty in lot.defects_by_reason.items():
            reason_totals[reason] += qty
    available_loss_reasons = sorted(reason for reason, qty in reason_totals.items() if qty > 0)

    def kept(reason: str) -> bool:
        return reasons_filter is None or reason in reasons_filter

    for lot in lots:
        lot.d = sum(qty for reason, qty in lot.defects_by_reason.items() if kept(reason))
    filtered_reason_qty = {
        reason: qty for reason, qty in reason_totals.items() if kept(reason) and qty > 0
    }  # over the population, > 0

    # §3 genealogy.
    for lot in lots:
        if genealogy_error is None:
            lot.closure = reach(lot.container_id, wh.parents)
            lot.tracked = reach(lot.container_id, wh.children)
        else:
            lot.closure = {lot.container_id}
            lot.tracked = {lot.container_id}
        # docs/msd.md §3: root-most = no parent inside the lot's own closure (a chain cut by the
        # 20-step limit has its last container as root; a cycle has none).
        roots = [container_name(c) for c in lot.closure if not (wh.parents.get(c, set()) & lot.closure)]
        lot.wafer_root = min(roots) if roots else lot.name

    total_input = sum(lot.input for lot in lots)
    total_defect = sum(lot.d for lot in lots)
    by_detection_machine = _group_lots(lots, lambda lot: [lot.detection_machine])
    detection_chart = pareto(
        [_chart_item(name, members, lots) for name, members in by_detection_machine.items()]
    )
    daily_trend: list[dict[str, Any]] = []
    if window is not None:
        days: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for lot in lots:
            days[lot.detection_day][0] += lot.input
            days[lot.detection_day][1] += lot.d
        daily_trend = [
            {"date": day, "input_qty": inp, "defect_qty": dq, "defect_rate": rate(dq, inp)}
            for day, (inp, dq) in sorted(days.items())
        ]
    container_mode_hint = None
    if window is None and missing:
        # docs/msd.md §2: {missing_count, missing_lots}: the names sorted, the first 20.
        container_mode_hint = {
            "missing_count": len(missing),
            "missing_lots": sorted(container_name(c) for c in missing)[:20],
        }
    common: dict[str, Any] = {
        "daily_trend": daily_trend,
        "available_loss_reasons": available_loss_reasons,
        "genealogy_status": "ready" if genealogy_error is None else "error",
        "container_mode_hint": container_mode_hint,
    }
    if genealogy_error is not None:
        common["genealogy_error"] = genealogy_error

    if direction == "backward":
        aggregation, details = _backward(wh, lots, is_upstream, filtered_reason_qty, total_input, total_defect, kept)
    else:
        aggregation, details = _forward(wh, lots, is_downstream, total_defect, kept)
    aggregation["charts"]["by_detection_machine"] = detection_chart
    aggregation.update(common)
    details.sort(key=lambda row: (-row["DEFECT_RATE"], row["CONTAINERNAME"], row["LOSS_REASON"]))
    aggregation["detail_total_count"] = len(details)
    return aggregation, details


def _group_lots(lots: list[Lot], keys_of: Any) -> dict[Any, set[int]]:
    """key -> indices of the lots having it (a lot once per key)."""
    groups: dict[Any, set[int]] = defaultdict(set)
    for index, lot in enumerate(lots):
        for key in keys_of(lot):
            groups[key].add(index)
    return groups


def _chart_item(name: Any, members: set[int], lots: list[Lot]) -> dict[str, Any]:
    return {
        "name": name,
        "input_qty": sum(lots[i].input for i in members),
        "defect_qty": sum(lots[i].d for i in members),
        "lot_count": len(members),
    }


def _detail_base(lot: Lot, reason: str, qty: int) -> dict[str, Any]:
    return {
        "CONTAINERNAME": lot.name,
        "PJ_TYPE": lot.pj_type,
        "PRODUCTLINENAME": lot.product_line,
        "WORKFLOW": lot.workflow,
        "DETECTION_EQUIPMENTNAME": lot.detection_machine,
        "INPUT_QTY": lot.input,
        "LOSS_REASON": reason,
        "DEFECT_QTY": qty,
        "DEFECT_RATE": rate(qty, lot.input),
        "ANCESTOR_COUNT": len(lot.closure) - 1,
    }


def _detail_reasons(lot: Lot, kept: Any) -> list[tuple[str, int]]:
    """§6: the lot's filtered reasons with quantity > 0, or one ("", 0)."""
    pairs = [(reason, qty) for reason, qty in lot.defects_by_reason.items() if kept(reason) and qty > 0]
    return pairs or [("", 0)]


def _joined(values: Any) -> str:
    return ", ".join(sorted({v for v in values if v is not None and v != ""}))


# --- §4 the score ---------------------------------------------------------------------------------


class Universe:
    """A set U of lots with input > 0 and what every z over it needs: |U|, Σr, s², the rates."""

    def __init__(self, members: set[int], rates: dict[int, float]) -> None:
        self.members = members
        self.rates = rates
        values = [rates[i] for i in members]
        self.n = len(values)
        self.total = math.fsum(values)
        # s² > 0 exactly when two rates differ (a two-pass sum of equal values could leave dust).
        if self.n >= 2 and len(set(values)) > 1:
            mean = self.total / self.n
            self.variance = math.fsum((v - mean) ** 2 for v in values) / (self.n - 1)
        else:
            self.variance = 0.0

    def exposed(self, lots: set[int]) -> set[int]:
        """E' = E ∩ U."""
        return lots & self.members

    def z(self, lots: set[int]) -> float:
        """z of the exposed lots E ∩ U against the rest U \\ E, with the pooled variance of U."""
        return self.z_of(self.exposed(lots))

    def z_of(self, e: set[int]) -> float:
        """z of E' = e (lots of U) against R' = U \\ E'."""
        n_e, n_r = len(e), self.n - len(e)
        if n_e < 1 or n_r < 1 or self.variance <= 0:
            return 0.0
        sum_e = math.fsum(self.rates[i] for i in e)
        mean_e = sum_e / n_e
        mean_r = (self.total - sum_e) / n_r
        return (mean_e - mean_r) / math.sqrt(self.variance * (1 / n_e + 1 / n_r))


def _factor_order(factor: Factor) -> tuple[Any, ...]:
    return (KIND_ORDER[factor.kind], _text(factor.name), *factor.tie)


def select_suspects(factors: list[Factor], universe0: set[int], rates: dict[int, float]) -> list[tuple[Factor, float]]:
    """§4 Suspects: forward selection; returns (factor, z over the U it was chosen in)."""
    chosen: list[tuple[Factor, float]] = []
    chosen_ids: set[int] = set()
    members = set(universe0)
    # U only shrinks: a factor with fewer than 3 lots in U0 can never be a candidate (this only saves time).
    possible = [p for p, f in enumerate(factors) if len(f.lots & members) >= SUSPECT_MIN_LOTS]
    for _ in range(SUSPECT_ROUNDS):
        universe = Universe(members, rates)
        best: tuple[Any, ...] | None = None
        for position in possible:
            factor = factors[position]
            e = universe.exposed(factor.lots)
            if position in chosen_ids or len(e) < SUSPECT_MIN_LOTS:
                continue
            # docs/msd.md §4: z compared to 9 decimals, so that equal lot sets tie exactly.
            z = universe.z_of(e)
            candidate = (-round(z, 9), *_factor_order(factor), position, z)
            if best is None or candidate < best:
                best = candidate
        if best is None or best[-1] <= 0:
            break
        position = best[-2]
        chosen_ids.add(position)
        chosen.append((factors[position], best[-1]))
        members = members - factors[position].lots
    return chosen


# --- §4 backward ----------------------------------------------------------------------------------


def _backward(
    wh: Warehouse,
    lots: list[Lot],
    is_upstream: Any,
    filtered_reason_qty: dict[str, int],
    total_input: int,
    total_defect: int,
    kept: Any,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    # Exposure keys of each container (its own rows at upstream groups), then of each lot's closure.
    machine_keys: dict[str, set[tuple[Any, Any, Any]]] = {}
    material_keys: dict[str, set[tuple[Any, Any]]] = {}
    machine_order: dict[tuple[Any, Any, Any], int] = {}  # key -> its group's route order (detail sort)

    def machines_of(cid: str) -> set[tuple[Any, Any, Any]]:
        if cid not in machine_keys:
            keys = set()
            for row in wh.history.get(cid, ()):
                if row.equipment_id is not None and row.track_in is not None and is_upstream(row.spec):
                    spec = wh.specs[row.spec]
                    key = (spec.group, row.equipment_name, row.equipment_id)
                    keys.add(key)
                    machine_order[key] = min(spec.order, machine_order.get(key, spec.order))
            machine_keys[cid] = keys
        return machine_keys[cid]

    def materials_of(cid: str) -> set[tuple[Any, Any]]:
        if cid not in material_keys:
            material_keys[cid] = {(m.part, m.lot) for m in wh.materials.get(cid, ()) if is_upstream(m.spec)}
        return material_keys[cid]

    lot_machines: list[set[tuple[Any, Any, Any]]] = []
    lot_materials: list[set[tuple[Any, Any]]] = []
    for lot in lots:
        lot_machines.append(set().union(*(machines_of(c) for c in lot.closure)))
        lot_materials.append(set().union(*(materials_of(c) for c in lot.closure)))

    machine_factors: dict[tuple[Any, Any, Any], Factor] = {}
    material_factors: dict[tuple[Any, Any], Factor] = {}
    root_factors: dict[str, Factor] = {}
    for index, lot in enumerate(lots):
        for key in lot_machines[index]:
            if key not in machine_factors:
                group, name, eq_id = key
                machine_factors[key] = Factor(
                    "machine", name, (_text(group), _text(eq_id)),
                    {"WORKCENTER_GROUP": group, "EQUIPMENT_NAME": name, "EQUIPMENT_ID": eq_id},
                )
            machine_factors[key].lots.add(index)
        for key in lot_materials[index]:
            if key not in material_factors:
                part, lot_name = key
                material_key = f"{_text(part)} ({lot_name})" if lot_name is not None else _text(part)
                material_factors[key] = Factor(
                    "material", material_key, (_text(part), _text(lot_name)),
                    {"MATERIAL_PART_NAME": part, "MATERIAL_LOT_NAME": lot_name, "MATERIAL_KEY": material_key},
                )
            material_factors[key].lots.add(index)
        if lot.wafer_root not in root_factors:
            root_factors[lot.wafer_root] = Factor(
                "wafer_root", lot.wafer_root, (), {"ROOT_CONTAINER_NAME": lot.wafer_root}
            )
        root_factors[lot.wafer_root].lots.add(index)
    factors = [*machine_factors.values(), *material_factors.values(), *root_factors.values()]

    # The score of every factor: z over U0 = the population lots with input > 0.
    # CHOICE: attribution rows (and suspects) carry it as lower-case `score`.
    rates = {i: lot.d / lot.input for i, lot in enumerate(lots) if lot.input > 0}
    universe0 = Universe(set(rates), rates)
    score = {id(f): round(universe0.z(f.lots), 4) for f in factors}

    def numbers(factor: Factor) -> dict[str, Any]:
        inp = sum(lots[i].input for i in factor.lots)
        dq = sum(lots[i].d for i in factor.lots)
        return {
            "INPUT_QTY": inp,
            "DEFECT_QTY": dq,
            "DEFECT_RATE": rate(dq, inp),
            "DETECTION_LOT_COUNT": len(factor.lots),
        }

    def attribution_row(factor: Factor) -> dict[str, Any]:
        row = {**factor.keys, **numbers(factor)}
        if factor.kind == "machine":
            members = [lots[i] for i in factor.lots]
            # CHOICE: a resource row whose RESOURCEFAMILYNAME is NULL also gives (未知).
            family = wh.families.get(factor.keys["EQUIPMENT_ID"])
            row["RESOURCEFAMILYNAME"] = family if family is not None else UNKNOWN
            row["WORKFLOW"] = _joined(lot.workflow for lot in members)
            row["PRODUCTLINENAME"] = _joined(lot.product_line for lot in members)
            row["PJ_TYPE"] = _joined(lot.pj_type for lot in members)
            row["DETECTION_EQUIPMENTNAME"] = _joined(lot.detection_machine for lot in members)
        row["score"] = score[id(factor)]
        return row

    def attribution(kind_factors: list[Factor]) -> list[dict[str, Any]]:
        ordered = sorted(
            kind_factors,
            key=lambda f: (-score[id(f)], -numbers(f)["DEFECT_RATE"], _text(f.name), *f.tie),
        )
        return [attribution_row(f) for f in ordered]

    machine_rows = attribution(list(machine_factors.values()))
    material_rows = attribution(list(material_factors.values()))
    root_rows = attribution(list(root_factors.values()))

    suspects = []
    chosen = select_suspects(factors, set(rates), rates)
    for rank, (factor, z) in enumerate(chosen):
        explained_by = None
        best_shared = 0
        # CHOICE: shared lots are counted over the whole exposed sets E (not E ∩ U0); a tie goes to the
        # earlier-ranked suspect.
        for earlier, _ in chosen[:rank]:
            shared = len(factor.lots & earlier.lots)
            if shared > best_shared:
                best_shared = shared
                explained_by = {"kind": earlier.kind, "name": earlier.name, "shared_lots": shared}
        n = numbers(factor)
        suspects.append(
            {
                "kind": factor.kind,
                "name": factor.name,
                **factor.keys,
                "lot_count": n["DETECTION_LOT_COUNT"],
                "input_qty": n["INPUT_QTY"],
                "defect_qty": n["DEFECT_QTY"],
                "defect_rate": n["DEFECT_RATE"],
                "score": score[id(factor)],
                "conditional_score": round(z, 4),
                "explained_by": explained_by,
            }
        )

    # Charts: by name (machines merged over groups), by material key, by root.
    by_machine_name: dict[Any, set[int]] = defaultdict(set)
    for f in machine_factors.values():
        by_machine_name[f.name] |= f.lots
    by_material_key: dict[Any, set[int]] = defaultdict(set)
    for f in material_factors.values():
        by_material_key[f.name] |= f.lots
    charts = {
        "by_machine": pareto([_chart_item(name, m, lots) for name, m in by_machine_name.items()]),
        "by_material": pareto([_chart_item(name, m, lots) for name, m in by_material_key.items()]),
        "by_wafer_root": pareto([_chart_item(f.name, f.lots, lots) for f in root_factors.values()]),
        "by_loss_reason": reason_pareto(filtered_reason_qty, total_input, top=None),
    }
    # CHOICE: top_loss_reason is chosen among the reasons with quantity > 0 (those of by_loss_reason).
    top_reason = ""
    if filtered_reason_qty:
        top_reason = min(filtered_reason_qty.items(), key=lambda kv: (-kv[1], kv[0]))[0]
    kpi = {
        "total_input": total_input,
        "lot_count": len(lots),
        "defective_lot_count": sum(1 for lot in lots if lot.d > 0),
        "total_defect_qty": total_defect,
        "total_defect_rate": rate(total_defect, total_input),
        "top_loss_reason": top_reason,
        "affected_machine_count": sum(1 for row in machine_rows if row["DEFECT_QTY"] > 0),
    }

    details = []
    for index, lot in enumerate(lots):
        pairs: dict[tuple[Any, Any], int] = {}  # (station, machine) -> group order
        for key in lot_machines[index]:
            pair = (key[0], key[1])
            pairs[pair] = min(machine_order[key], pairs.get(pair, machine_order[key]))
        upstream_machines = sorted(pairs, key=lambda gm: (pairs[gm], _text(gm[1]), _text(gm[0])))
        materials = sorted(lot_materials[index], key=lambda pl: (_text(pl[0]), _text(pl[1])))
        extra = {
            "UPSTREAM_MACHINES": [{"station": group, "machine": name} for group, name in upstream_machines],
            "UPSTREAM_MACHINE_COUNT": len(upstream_machines),
            "UPSTREAM_MATERIALS": [{"part": part, "lot": lot_name} for part, lot_name in materials],
            "WAFER_ROOT": lot.wafer_root,
        }
        for reason, qty in _detail_reasons(lot, kept):
            details.append({**_detail_base(lot, reason, qty), **extra})

    aggregation = {
        "kpi": kpi,
        "attribution": machine_rows,
        # docs/msd.md §4: material and wafer-root lists hold their first 1,000 rows, with totals.
        "material_attribution": material_rows[:ATTRIBUTION_ROW_CAP],
        "material_attribution_total": len(material_rows),
        "wafer_root_attribution": root_rows[:ATTRIBUTION_ROW_CAP],
        "wafer_root_attribution_total": len(root_rows),
        "suspects": suspects,
        "charts": charts,
    }
    return aggregation, details


# --- §5 forward -----------------------------------------------------------------------------------


def _first_input(rows: list[HistoryRow]) -> int:
    """The largest TRACKINQTY over `rows` with the EQUIPMENTID and TRACKINTIMESTAMP of the first of them."""
    first = min(rows, key=lambda row: (row.track_in, row.history_id))
    return max(row.track_in_qty for row in rows if row.equipment_id == first.equipment_id
               and row.track_in == first.track_in)


def _forward(
    wh: Warehouse, lots: list[Lot], is_downstream: Any, total_defect: int, kept: Any
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    # The downstream groups, in route order.
    group_order: dict[str, int] = {}
    for spec, row in wh.specs.items():
        if is_downstream(spec):
            group_order[row.group] = min(row.order, group_order.get(row.group, row.order))
    groups = sorted(group_order, key=lambda g: (group_order[g], g))

    # Per container: input at each downstream group, per machine, and its rejects there.
    reach_input: dict[str, dict[str, int]] = {}  # cid -> group -> input at G
    machine_input: dict[str, dict[tuple[str, Any], int]] = {}  # cid -> (group, machine) -> input
    rejects: dict[str, list[tuple[str, RejectRow]]] = {}  # cid -> (group, row)

    def facts(cid: str) -> None:
        if cid in reach_input:
            return
        at_group: dict[str, list[HistoryRow]] = defaultdict(list)
        for row in wh.history.get(cid, ()):
            if row.equipment_id is not None and row.track_in is not None and is_downstream(row.spec):
                at_group[wh.specs[row.spec].group].append(row)
        reach_input[cid] = {g: _first_input(rows) for g, rows in at_group.items()}
        per_machine: dict[tuple[str, Any], int] = {}
        for g, rows in at_group.items():
            for name in {row.equipment_name for row in rows}:
                per_machine[(g, name)] = _first_input([row for row in rows if row.equipment_name == name])
        machine_input[cid] = per_machine
        rejects[cid] = [(wh.specs[r.spec].group, r) for r in wh.rejects.get(cid, ()) if is_downstream(r.spec)]

    tracked_all: set[str] = set()
    for lot in lots:
        tracked_all |= lot.tracked
    for cid in tracked_all:
        facts(cid)

    stations = []
    machine_chart: dict[Any, dict[str, Any]] = {}
    reason_chart: dict[str, int] = defaultdict(int)
    for g in groups:
        reached = [c for c in tracked_all if g in reach_input[c]]
        g_input = sum(reach_input[c][g] for c in reached)
        g_rejects = [r for c in tracked_all for group, r in rejects[c] if group == g]
        g_reject = sum(r.qty for r in g_rejects)
        machines: dict[Any, dict[str, Any]] = {}
        for c in tracked_all:
            for (group, name), qty in machine_input[c].items():
                if group == g:
                    m = machines.setdefault(name, {"name": name, "input_qty": 0, "reject_qty": 0})
                    m["input_qty"] += qty
                    # CHOICE: a machine's chart lot_count = the tracked containers with a track-in on it at a
                    # downstream group (a machine seen only on reject rows has 0).
                    chart = machine_chart.setdefault(name, {"name": name, "input_qty": 0, "defect_qty": 0,
                                                            "lots": set()})
                    chart["input_qty"] += qty
                    chart["lots"].add(c)
        # CHOICE: downstream loss reasons keep every reason of the reject rows, even at quantity 0
        # (§5 has no "> 0" as §4's by_loss_reason has); NULL is (未知) as in §2.
        reasons: dict[str, int] = defaultdict(int)
        for r in g_rejects:
            m = machines.setdefault(r.equipment_name, {"name": r.equipment_name, "input_qty": 0, "reject_qty": 0})
            m["reject_qty"] += r.qty
            chart = machine_chart.setdefault(r.equipment_name, {"name": r.equipment_name, "input_qty": 0,
                                                                "defect_qty": 0, "lots": set()})
            chart["defect_qty"] += r.qty
            reasons[r.reason] += r.qty
            reason_chart[r.reason] += r.qty
        stations.append(
            {
                "station": g,
                "order": group_order[g],
                "lots_reached": len(reached),
                "input_qty": g_input,
                "reject_qty": g_reject,
                "reject_rate": rate(g_reject, g_input),
                "machines": sorted(machines.values(), key=lambda m: _text(m["name"])),
                "loss_reasons": [
                    {"name": name, "qty": qty} for name, qty in sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))
                ],
            }
        )
    downstream_input = sum(s["input_qty"] for s in stations)
    downstream_reject = sum(s["reject_qty"] for s in stations)
    kpi = {
        "detection_lot_count": len(lots),
        "detection_defect_qty": total_defect,
        "tracked_lot_count": len(tracked_all),
        "downstream_stations_reached": sum(1 for s in stations if s["lots_reached"] > 0),
        "downstream_total_reject": downstream_reject,
        "downstream_reject_rate": rate(downstream_reject, downstream_input),
    }
    # CHOICE: by_downstream_station is sorted like every Pareto list (defect_qty descending, then name),
    # not in route order (downstream_stations is in route order).
    charts = {
        "by_downstream_station": pareto(
            [
                {"name": s["station"], "input_qty": s["input_qty"], "defect_qty": s["reject_qty"],
                 "lot_count": s["lots_reached"]}
                for s in stations
            ],
            top=None,
        ),
        "by_downstream_machine": pareto(
            [{"name": m["name"], "input_qty": m["input_qty"], "defect_qty": m["defect_qty"],
              "lot_count": len(m["lots"])} for m in machine_chart.values()]
        ),
        "by_downstream_loss_reason": reason_pareto(dict(reason_chart), downstream_input, top=TOP_N),
    }

    details = []
    for lot in lots:
        reached_groups = {g for c in lot.tracked for g in reach_input[c]}
        lot_input = sum(qty for c in lot.tracked for qty in reach_input[c].values())
        per_group: dict[str, int] = defaultdict(int)
        for c in lot.tracked:
            for g, r in rejects[c]:
                per_group[g] += r.qty
        lot_reject = sum(per_group.values())
        # CHOICE: WORST_DOWNSTREAM is "" when no downstream reject quantity is > 0; a tie goes to the
        # earlier group in route order. DOWNSTREAM_STATIONS is the list of group names, in route order.
        worst = ""
        positive = [g for g, qty in per_group.items() if qty > 0]
        if positive:
            worst = min(positive, key=lambda g: (-per_group[g], group_order[g], g))
        extra = {
            "DOWNSTREAM_STATIONS": sorted(reached_groups, key=lambda g: (group_order[g], g)),
            "DOWNSTREAM_REJECTS": lot_reject,
            "DOWNSTREAM_REJECT_RATE": rate(lot_reject, lot_input),
            "WORST_DOWNSTREAM": worst,
        }
        for reason, qty in _detail_reasons(lot, kept):
            details.append({**_detail_base(lot, reason, qty), **extra})

    aggregation = {
        "kpi": kpi,
        "attribution": [],
        "material_attribution": [],
        "material_attribution_total": 0,
        "wafer_root_attribution": [],
        "wafer_root_attribution_total": 0,
        "suspects": [],
        "charts": charts,
        "downstream_stations": stations,
    }
    return aggregation, details


# --- the public functions -------------------------------------------------------------------------


def msd_oracle(
    db_path: str | os.PathLike[str],
    *,
    seeds: list[str],
    station: str = "測試",
    direction: str = "backward",
    start_date: str | None = None,
    end_date: str | None = None,
    loss_reasons: list[str] | str | None = None,
    genealogy_error: str | None = None,
) -> dict[str, Any]:
    """The MSD aggregation of docs/msd.md over the warehouse file at db_path.

    `genealogy_error` (a reason) computes the `error` case of §3: every closure and tracked set is
    the lot alone, `genealogy_status` is `error` and `genealogy_error` carries the reason.
    """
    aggregation, _ = _analyse(
        db_path, seeds, station, direction, start_date, end_date, loss_reasons, genealogy_error
    )
    return aggregation


def msd_detail_rows(
    db_path: str | os.PathLike[str],
    *,
    seeds: list[str],
    station: str = "測試",
    direction: str = "backward",
    start_date: str | None = None,
    end_date: str | None = None,
    loss_reasons: list[str] | str | None = None,
    genealogy_error: str | None = None,
) -> list[dict[str, Any]]:
    """The detail rows of §6, all of them, sorted by DEFECT_RATE descending, CONTAINERNAME, LOSS_REASON."""
    _, details = _analyse(db_path, seeds, station, direction, start_date, end_date, loss_reasons, genealogy_error)
    return details
