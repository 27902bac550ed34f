"""Detail rows of an analysis (docs/msd.md §6), built from the MsdIndex a page at a time.

The order of all rows is computed once as integer arrays (lot, reason, quantity per row, sorted
by rate, then name, then reason); a page or a CSV slice builds only its own row dicts. So a page
and the CSV download use memory ∝ their slice, not ∝ the lots.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from sanic_trace.msd.analysis import _reason_mask, number, rate
from sanic_trace.msd.index import MACHINE, MATERIAL, WAFER_ROOT, MsdIndex

MAX_PAGE_SIZE = 500
CSV_SLICE = 2000
BACKWARD_COLUMNS = ("UPSTREAM_MACHINES", "UPSTREAM_MACHINE_COUNT", "UPSTREAM_MATERIALS", "WAFER_ROOT")
FORWARD_COLUMNS = ("DOWNSTREAM_STATIONS", "DOWNSTREAM_REJECTS", "DOWNSTREAM_REJECT_RATE", "WORST_DOWNSTREAM")
COLUMNS = (
    "CONTAINERNAME",
    "PJ_TYPE",
    "PRODUCTLINENAME",
    "WORKFLOW",
    "DETECTION_EQUIPMENTNAME",
    "INPUT_QTY",
    "LOSS_REASON",
    "DEFECT_QTY",
    "DEFECT_RATE",
    "ANCESTOR_COUNT",
)


class DetailOrder:
    """Every detail row as (lot, reason code or -1, quantity), in the documented order."""

    def __init__(self, index: MsdIndex, loss_reasons: Sequence[str]) -> None:
        self.index = index
        keep = _reason_mask(index, loss_reasons)
        rows = (index.defect_qty > 0) & keep[index.defect_reason] if len(index.defect_qty) else np.zeros(0, bool)
        lots = index.defect_lot[rows].astype(np.int64)
        reasons = index.defect_reason[rows].astype(np.int64)
        qty = index.defect_qty[rows]
        # A lot without a filtered reason has one row with LOSS_REASON "".
        bare = np.setdiff1d(np.arange(index.size), lots)
        self.lot = np.concatenate([lots, bare])
        self.reason = np.concatenate([reasons, np.full(len(bare), -1)])
        self.qty = np.concatenate([qty, np.zeros(len(bare))])
        inputs = index.input[self.lot]
        with np.errstate(divide="ignore", invalid="ignore"):
            rates = np.where(inputs > 0, np.round(self.qty / np.where(inputs > 0, inputs, 1) * 100, 4), 0.0)
        name_rank = np.argsort(np.argsort(np.asarray(index.names, dtype=object).astype(str), kind="stable"))
        reason_names = ["", *index.reasons]
        reason_rank = np.argsort(np.argsort(np.asarray(reason_names, dtype=object).astype(str), kind="stable"))
        order = np.lexsort((reason_rank[self.reason + 1], name_rank[self.lot], -rates))
        self.lot, self.reason, self.qty, self.rates = self.lot[order], self.reason[order], self.qty[order], rates[order]

    def __len__(self) -> int:
        return len(self.lot)

    def rows(self, start: int, stop: int) -> list[dict[str, Any]]:
        index = self.index
        out = []
        for i in range(start, min(stop, len(self))):
            lot = int(self.lot[i])
            reason = int(self.reason[i])
            row: dict[str, Any] = {
                "CONTAINERNAME": index.names[lot],
                "PJ_TYPE": index.facts[index.pj_type[lot]],
                "PRODUCTLINENAME": index.facts[index.productline[lot]],
                "WORKFLOW": index.facts[index.workflow[lot]],
                "DETECTION_EQUIPMENTNAME": index.det_machines[index.det_machine[lot]],
                "INPUT_QTY": number(index.input[lot]),
                "LOSS_REASON": index.reasons[reason] if reason >= 0 else "",
                "DEFECT_QTY": number(self.qty[i]),
                "DEFECT_RATE": float(self.rates[i]),
                "ANCESTOR_COUNT": int(index.ancestor_count[lot]),
            }
            row.update(_backward_columns(index, lot) if index.direction == "backward" else _forward_columns(index, lot))
            out.append(row)
        return out


def _backward_columns(index: MsdIndex, lot: int) -> dict[str, Any]:
    machines, materials, root = [], [], ""
    for f in index.lot_factors(lot).tolist():
        key = index.factors[f]
        if key[0] == MACHINE:
            machines.append((key[3], key[1], key[2]))
        elif key[0] == MATERIAL:
            materials.append((key[2], key[3]))
        elif key[0] == WAFER_ROOT:
            root = key[1]
    upstream = [
        {"station": group, "machine": name}
        for _, name, group in sorted(set(machines), key=lambda m: (m[0], m[1], m[2]))
    ]
    # The same machine name in two groups is two entries; a name is not repeated within a group.
    return {
        "UPSTREAM_MACHINES": upstream,
        "UPSTREAM_MACHINE_COUNT": len(upstream),
        # A material issued without a lot has lot None (sorted as if it were "").
        "UPSTREAM_MATERIALS": [
            {"part": part, "lot": lot_name}
            for part, lot_name in sorted(set(materials), key=lambda m: (m[0], m[1] or ""))
        ],
        "WAFER_ROOT": root,
    }


def _forward_columns(index: MsdIndex, lot: int) -> dict[str, Any]:
    reached, rejects, inputs = index.lot_downstream[lot].tolist()
    stations = index.forward.get("stations", [])
    return {
        "DOWNSTREAM_STATIONS": [s["station"] for i, s in enumerate(stations) if int(reached) >> i & 1],
        "DOWNSTREAM_REJECTS": number(rejects),
        "DOWNSTREAM_REJECT_RATE": rate(rejects, inputs),
        "WORST_DOWNSTREAM": index.lot_worst[lot],
    }


def detail_page(index: MsdIndex, loss_reasons: Sequence[str], page: int, page_size: int) -> dict[str, Any]:
    """`{detail, pagination}`; `page` ≥ 1 is clamped to the last page."""
    order = DetailOrder(index, loss_reasons)
    total = len(order)
    pages = max(1, -(-total // page_size))
    page = min(max(1, page), pages)
    start = (page - 1) * page_size
    return {
        "detail": order.rows(start, start + page_size),
        "pagination": {"page": page, "page_size": page_size, "total_count": total, "total_pages": pages},
    }


def csv_pieces(index: MsdIndex, loss_reasons: Sequence[str]) -> Iterator[bytes]:
    """The detail rows as UTF-8 CSV with a BOM, CSV_SLICE rows at a time; machines as `station/machine, …`."""
    order = DetailOrder(index, loss_reasons)
    extra = BACKWARD_COLUMNS if index.direction == "backward" else FORWARD_COLUMNS
    header = [*COLUMNS, *extra]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    yield "\ufeff".encode() + buffer.getvalue().encode()
    for start in range(0, len(order), CSV_SLICE):
        buffer.seek(0)
        buffer.truncate()
        for row in order.rows(start, start + CSV_SLICE):
            if index.direction == "backward":
                row["UPSTREAM_MACHINES"] = ", ".join(f"{m['station']}/{m['machine']}" for m in row["UPSTREAM_MACHINES"])
                row["UPSTREAM_MATERIALS"] = ", ".join(
                    f"{m['part']} ({m['lot']})" if m["lot"] else m["part"] for m in row["UPSTREAM_MATERIALS"]
                )
            writer.writerow([row[column] for column in header])
        yield buffer.getvalue().encode()
