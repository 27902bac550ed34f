"""The detection population (docs/msd.md §2): which seed lots were tested, with what input and defects.

Three IN-batched queries over the seeds (track-ins at the detection work centers, defects per
loss reason there, the lots' facts). What is kept is per lot — arrays, and interned codes for
the low-cardinality facts — never per history row.
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

import numpy as np

from sanic_trace.db.batching import bind_in_list, in_batches
from sanic_trace.db.source import DataSource
from sanic_trace.trace.queries import IDS_BIND, WORKCENTERS_BIND, WORKCENTERS_PAD, column_index
from sanic_trace.trace.stations import Detection

TRACKINS_SQL = "msd_detection_trackins"
DEFECTS_SQL = "msd_detection_defects"
FACTS_SQL = "msd_lot_facts"
UNKNOWN_REASON = "(未知)"
HINT_NAMES = 20
# Container mode reads every date: the window is wide open (the SQL skips it with :windowed = 0).
_OPEN_START, _OPEN_END = datetime(1900, 1, 1), datetime(9999, 1, 1)


class Interned:
    """Strings to small integer codes, in first-seen order."""

    def __init__(self) -> None:
        self.values: list[str] = []
        self.codes: dict[str, int] = {}

    def code(self, value: str) -> int:
        code = self.codes.get(value)
        if code is None:
            code = self.codes[value] = len(self.values)
            self.values.append(value)
        return code


@dataclass
class Population:
    lot_ids: list[str]
    names: list[str]
    input: np.ndarray  # float64, per lot
    det_machine: np.ndarray  # int32 codes into det_machines
    det_machines: list[str]
    day: np.ndarray  # int32 codes into days, -1 in container mode
    days: list[str]
    pj_type: np.ndarray  # int32 codes into facts.values (shared table of short texts)
    productline: np.ndarray
    workflow: np.ndarray
    facts: list[str]
    defect_lot: np.ndarray  # int32: sparse (lot, reason, qty) defects
    defect_reason: np.ndarray
    defect_qty: np.ndarray  # float64
    reasons: list[str]
    missing_count: int = 0  # seeds without a detection track-in
    missing_names: list[str] = field(default_factory=list)

    @property
    def size(self) -> int:
        return len(self.lot_ids)


def window(start_date: date | None, end_date: date | None) -> tuple[int, datetime, datetime]:
    """(:windowed, :start_time, :end_time) of the detection queries; inclusive days, to the next midnight."""
    if start_date is None or end_date is None:
        return 0, _OPEN_START, _OPEN_END
    return 1, datetime.combine(start_date, time()), datetime.combine(end_date, time()) + timedelta(days=1)


def _stream(source: DataSource, name: str, batch: Sequence[str], detection: Detection | None, binds: dict):  # type: ignore[no-untyped-def]
    sql, params = bind_in_list(source.sql.load(name), IDS_BIND, batch, pad_to=source.in_batch_size)
    if detection is not None:
        sql, wcs = bind_in_list(sql, WORKCENTERS_BIND, detection.workcenters, pad_to=WORKCENTERS_PAD)
        params.update(wcs)
    params.update(binds)
    return source.stream(sql, params)


def read_population(
    source: DataSource,
    seeds: Sequence[str],
    detection: Detection,
    start_date: date | None,
    end_date: date | None,
) -> Population:
    """The seeds that have a detection track-in, in seed order, with their input, facts and defects.

    Batch by batch of seeds: its track-ins (a lot's rows are contiguous), then the facts and
    defects of the lots of that batch that were detected — so what is held across batches is the
    per-lot arrays, never a structure per seed or per row.
    """
    windowed, start, end = window(start_date, end_date)
    binds = {"windowed": windowed, "start_time": start, "end_time": end}
    machines, days, facts, reasons = Interned(), Interned(), Interned(), Interned()
    facts.code("")
    lot_ids: list[str] = []
    names: list[str] = []
    inputs, machine_codes, day_codes = array("d"), array("i"), array("i")
    pj_codes, line_codes, workflow_codes = array("i"), array("i"), array("i")
    defect_lot, defect_reason, defect_qty = array("i"), array("i"), array("d")
    missing: list[str] = []
    for batch in in_batches(list(seeds), source.in_batch_size):
        detected = _detections(source, batch, detection, binds)
        found = [cid for cid in batch if cid in detected]
        first = len(lot_ids)
        position = {cid: first + i for i, cid in enumerate(found)}
        facts_of: dict[str, tuple] = {}
        # Container mode names the seeds without a track-in (container_mode_hint): their facts too.
        asked = found if windowed else list(batch)
        if asked:
            for columns, rows in _stream(source, FACTS_SQL, asked, None, {}):
                i_id, i_name, i_pj, i_line, i_wf = column_index(
                    columns, "CONTAINERID", "CONTAINERNAME", "PJ_TYPE", "PRODUCTLINENAME", "WORKFLOW"
                )
                for row in rows:
                    facts_of[row[i_id]] = (row[i_name], row[i_pj], row[i_line], row[i_wf])
        for cid in batch:
            if cid not in detected:
                missing.append((facts_of.get(cid) or (None,))[0] or cid)
        for cid in found:
            eq_name, tracked_in, qty = detected[cid]
            name, pj, line, workflow = facts_of.get(cid, (None, None, None, None))
            lot_ids.append(cid)
            names.append(name or cid)
            inputs.append(float(qty))
            machine_codes.append(machines.code(eq_name or ""))
            day_codes.append(days.code(tracked_in.date().isoformat()) if windowed else -1)
            pj_codes.append(facts.code(pj or ""))
            line_codes.append(facts.code(line or ""))
            workflow_codes.append(facts.code(workflow or ""))
        if found:
            for columns, rows in _stream(source, DEFECTS_SQL, found, detection, binds):
                i_id, i_reason, i_qty = column_index(columns, "CONTAINERID", "LOSSREASONNAME", "QTY")
                for row in rows:
                    defect_lot.append(position[row[i_id]])
                    defect_reason.append(reasons.code(row[i_reason] or UNKNOWN_REASON))
                    defect_qty.append(float(row[i_qty] or 0))
    return Population(
        lot_ids=lot_ids,
        names=names,
        input=np.frombuffer(inputs, dtype=np.float64).copy(),
        det_machine=np.frombuffer(machine_codes, dtype=np.int32).copy(),
        det_machines=machines.values,
        day=np.frombuffer(day_codes, dtype=np.int32).copy(),
        days=days.values,
        pj_type=np.frombuffer(pj_codes, dtype=np.int32).copy(),
        productline=np.frombuffer(line_codes, dtype=np.int32).copy(),
        workflow=np.frombuffer(workflow_codes, dtype=np.int32).copy(),
        facts=facts.values,
        defect_lot=np.frombuffer(defect_lot, dtype=np.int32).copy(),
        defect_reason=np.frombuffer(defect_reason, dtype=np.int32).copy(),
        defect_qty=np.frombuffer(defect_qty, dtype=np.float64).copy(),
        reasons=reasons.values,
        missing_count=len(missing),
        missing_names=sorted(missing)[:HINT_NAMES],
    )


def _detections(
    source: DataSource, batch: Sequence[str], detection: Detection, binds: dict
) -> dict[str, tuple[str | None, datetime, float]]:
    """Per lot of the batch with a detection track-in: (EQUIPMENTNAME, TRACKINTIMESTAMP, input).

    Rows come by lot, then (TRACKINTIMESTAMP, HISTORYID): a lot's last row is its detection row,
    and its input is the largest TRACKINQTY among that lot's rows of the same machine and time.
    """
    found: dict[str, tuple[str | None, datetime, float]] = {}
    current: str | None = None
    rows_of_lot: list[tuple] = []

    def close() -> None:
        if current is not None and rows_of_lot:
            eq_id, eq_name, tracked_in, _ = rows_of_lot[-1]
            qty = max(r[3] for r in rows_of_lot if (r[0], r[2]) == (eq_id, tracked_in))
            found[current] = (eq_name, tracked_in, qty)

    for columns, rows in _stream(source, TRACKINS_SQL, batch, detection, binds):
        i_id, i_eq, i_name, i_in, i_qty = column_index(
            columns, "CONTAINERID", "EQUIPMENTID", "EQUIPMENTNAME", "TRACKINTIMESTAMP", "TRACKINQTY"
        )
        for row in rows:
            if row[i_id] != current:
                close()
                current, rows_of_lot = row[i_id], []
            rows_of_lot.append((row[i_eq], row[i_name], row[i_in], row[i_qty] or 0))
    close()
    return found
