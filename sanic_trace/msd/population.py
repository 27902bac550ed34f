"""The detection population (docs/msd.md §2): which seed lots were tested, with what input and defects.

Three IN-batched queries over the seeds (track-ins at the detection work centers, defects per
loss reason there, the lots' facts). What is kept is per lot — arrays, and interned codes for
the low-cardinality facts — never per history row.
"""

from __future__ import annotations

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
    """The seeds that have a detection track-in, in seed order, with their input, facts and defects."""
    windowed, start, end = window(start_date, end_date)
    binds = {"windowed": windowed, "start_time": start, "end_time": end}
    # Per seed: [latest TRACKINTIMESTAMP, EQUIPMENTID and EQUIPMENTNAME of its latest row,
    # {(EQUIPMENTID, TRACKINTIMESTAMP): largest TRACKINQTY} over the rows of that time].
    detected: dict[str, list] = {}
    facts_by_id: dict[str, tuple] = {}
    for batch in in_batches(list(seeds), source.in_batch_size):
        for columns, rows in _stream(source, TRACKINS_SQL, batch, detection, binds):
            i_id, i_eq, i_name, i_in, i_qty, i_hid = column_index(
                columns, "CONTAINERID", "EQUIPMENTID", "EQUIPMENTNAME", "TRACKINTIMESTAMP", "TRACKINQTY", "HISTORYID"
            )
            for row in rows:
                # Rows come by (TRACKINTIMESTAMP, HISTORYID): the last one of a lot is its detection row.
                track_in = (row[i_eq], row[i_in])
                qty = row[i_qty] or 0
                current = detected.get(row[i_id])
                if current is None or current[0] != row[i_in]:
                    # A later track-in time: only its rows count from here.
                    detected[row[i_id]] = [row[i_in], row[i_eq], row[i_name], {track_in: qty}]
                else:
                    current[1], current[2] = row[i_eq], row[i_name]
                    current[3][track_in] = max(current[3].get(track_in, 0), qty)
        for columns, rows in _stream(source, FACTS_SQL, batch, None, {}):
            i_id, i_name, i_pj, i_line, i_wf = column_index(
                columns, "CONTAINERID", "CONTAINERNAME", "PJ_TYPE", "PRODUCTLINENAME", "WORKFLOW"
            )
            for row in rows:
                facts_by_id[row[i_id]] = (row[i_name], row[i_pj], row[i_line], row[i_wf])

    lot_ids = [s for s in seeds if s in detected]
    index = {cid: i for i, cid in enumerate(lot_ids)}
    missing = [s for s in seeds if s not in detected]
    machines, days, facts, reasons = Interned(), Interned(), Interned(), Interned()
    n = len(lot_ids)
    population = Population(
        lot_ids=lot_ids,
        names=[],
        input=np.zeros(n, dtype=np.float64),
        det_machine=np.zeros(n, dtype=np.int32),
        det_machines=machines.values,
        day=np.full(n, -1, dtype=np.int32),
        days=days.values,
        pj_type=np.zeros(n, dtype=np.int32),
        productline=np.zeros(n, dtype=np.int32),
        workflow=np.zeros(n, dtype=np.int32),
        facts=facts.values,
        defect_lot=np.zeros(0, dtype=np.int32),
        defect_reason=np.zeros(0, dtype=np.int32),
        defect_qty=np.zeros(0, dtype=np.float64),
        reasons=reasons.values,
        missing_count=len(missing),
        missing_names=sorted((facts_by_id.get(s) or (None,))[0] or s for s in missing)[:HINT_NAMES],
    )
    facts.code("")
    for i, cid in enumerate(lot_ids):
        tracked_in, eq_id, eq_name, inputs = detected[cid]
        qty = inputs[(eq_id, tracked_in)]
        name, pj, line, workflow = facts_by_id.get(cid, (None, None, None, None))
        population.names.append(name or cid)
        population.input[i] = qty
        population.det_machine[i] = machines.code(eq_name or "")
        if windowed:
            population.day[i] = days.code(tracked_in.date().isoformat())
        population.pj_type[i] = facts.code(pj or "")
        population.productline[i] = facts.code(line or "")
        population.workflow[i] = facts.code(workflow or "")

    lots, codes, quantities = [], [], []
    for batch in in_batches(lot_ids, source.in_batch_size):
        for columns, rows in _stream(source, DEFECTS_SQL, batch, detection, binds):
            i_id, i_reason, i_qty = column_index(columns, "CONTAINERID", "LOSSREASONNAME", "QTY")
            for row in rows:
                lots.append(index[row[i_id]])
                codes.append(reasons.code(row[i_reason] or UNKNOWN_REASON))
                quantities.append(float(row[i_qty] or 0))
    population.defect_lot = np.asarray(lots, dtype=np.int32)
    population.defect_reason = np.asarray(codes, dtype=np.int32)
    population.defect_qty = np.asarray(quantities, dtype=np.float64)
    return population
