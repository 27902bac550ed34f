"""The MSD aggregator: fed the domain records on their way to the chunks, it builds the MsdIndex.

One pass over the records of `upstream_history` and `materials` (backward) or
`upstream_history` and `downstream_rejects` (forward), in any order of containers: a record is
attributed through the genealogy index (container -> the lots whose closure holds it), never by
the order rows arrive in. What it keeps grows with containers and distinct factors:
- backward: (container, factor) pairs as int64 keys, each once (a container's records are
  contiguous within a domain, so duplicates are dropped as they come);
- forward: per container and downstream group, the first track-in quantity and the reject sum.
The same code serves the inline path and the job child.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable
from typing import Any

import numpy as np

from sanic_trace.msd.genealogy import BACKWARD, Genealogy
from sanic_trace.msd.index import MACHINE, MATERIAL, WAFER_ROOT, MsdIndex
from sanic_trace.msd.population import Population
from sanic_trace.trace.stations import Detection

UNKNOWN_FAMILY = "(未知)"
# The domains each direction reads; other domains of the request pass by untouched.
DOMAINS = {BACKWARD: ("upstream_history", "materials"), "forward": ("upstream_history", "downstream_rejects")}
_SHIFT = 32
# Lots per slice when exposures are expanded from containers to lots (bounds the temporaries).
_LOT_SLICE = 8192


class MsdAggregator:
    def __init__(
        self,
        population: Population,
        genealogy: Genealogy,
        detection: Detection,
        direction: str,
        mode: str,
        ancestor_count: np.ndarray | None = None,
    ) -> None:
        self.population = population
        self.genealogy = genealogy
        # Per lot |closure| - 1: the backward genealogy's own, or (forward) counted by the caller.
        self.ancestor_count = (
            np.diff(genealogy.member_offsets).astype(np.int32) - 1 if ancestor_count is None else ancestor_count
        )
        self.detection = detection
        self.direction = direction
        self.mode = mode
        self._index = genealogy.index
        # The containers of the detection lots' closures (tracked sets): records of any other
        # container (a seed without a detection track-in, its relatives) pass by.
        self._in_analysis = np.zeros(len(genealogy.containers), dtype=bool)
        self._in_analysis[genealogy.members] = True
        # Backward.
        self._factor_codes: dict[tuple, int] = {}
        self.factors: list[list[Any]] = []
        self._pairs = array("q")
        # The factors already paired with the container being read (its records are contiguous).
        self._seen_container: int | None = None
        self._seen_factors: set[int] = set()
        # Forward: downstream groups in route order, and per (container, group) state.
        groups = sorted({g for g in detection.spec_groups.values() if g[1] > detection.last_order}, key=lambda g: g[1])
        self.downstream = groups
        self._group_column = {name: i for i, (name, _order) in enumerate(groups)}
        n = len(genealogy.containers)
        self._reached = np.zeros((n, len(groups)), dtype=bool)
        self._input_at = np.zeros((n, len(groups)), dtype=np.float64)
        self._reject_at = np.zeros((n, len(groups)), dtype=np.float64)
        self._machine_input: dict[tuple[int, str], float] = {}
        self._machine_lots: dict[tuple[int, str], int] = {}
        self._machine_reject: dict[tuple[int, str], float] = {}
        self._reason_reject: dict[tuple[int, str], float] = {}
        # The first track-in of the container being read, per group and per (group, machine).
        self._current: int | None = None
        self._first: dict[Any, tuple] = {}

    # -- feeding -------------------------------------------------------------------------------

    def feed(self, domain: str, records: Iterable[dict[str, Any]]) -> None:
        if domain not in DOMAINS[self.direction]:
            return
        if self.direction == BACKWARD:
            self._feed_backward(domain, records)
        elif domain == "upstream_history":
            self._feed_forward_history(records)
        else:
            self._feed_forward_rejects(records)

    def _factor(self, key: tuple, row: list[Any]) -> int:
        code = self._factor_codes.get(key)
        if code is None:
            code = self._factor_codes[key] = len(self.factors)
            self.factors.append(row)
        return code

    def _feed_backward(self, domain: str, records: Iterable[dict[str, Any]]) -> None:
        first_order = self.detection.first_order
        spec_groups = self.detection.spec_groups
        pairs = self._pairs
        for record in records:
            container = self._index.get(record["CONTAINERID"])
            if container is None or not self._in_analysis[container]:
                continue
            if domain == "upstream_history":
                order = record["WORKCENTERSEQUENCE_GROUP"]
                if order is None or order >= first_order:
                    continue
                name, group, machine_id = record["EQUIPMENTNAME"], record["WORKCENTER_GROUP"], record["EQUIPMENTID"]
                family = record.get("RESOURCEFAMILYNAME") or UNKNOWN_FAMILY
                factor = self._factor(
                    (MACHINE, group, name, machine_id), [MACHINE, name or "", group, order, machine_id, family]
                )
            else:
                placed = spec_groups.get(record["SPECNAME"])
                if placed is None or placed[1] >= first_order:
                    continue
                part, lot = record["MATERIALPARTNAME"] or "", record["MATERIALLOTNAME"]
                key = f"{part} ({lot})" if lot is not None else part
                factor = self._factor((MATERIAL, part, lot), [MATERIAL, key, part, lot])
            if container != self._seen_container:
                self._seen_container, self._seen_factors = container, set()
            if factor not in self._seen_factors:
                self._seen_factors.add(factor)
                pairs.append((container << _SHIFT) | factor)

    def _feed_forward_history(self, records: Iterable[dict[str, Any]]) -> None:
        last_order = self.detection.last_order
        for record in records:
            container = self._index.get(record["CONTAINERID"])
            if container is None or not self._in_analysis[container]:
                continue
            if container != self._current:
                self._close_container()
                self._current = container
            order = record["WORKCENTERSEQUENCE_GROUP"]
            if order is None or order <= last_order:
                continue
            column = self._group_column.get(record["WORKCENTER_GROUP"])
            if column is None:
                continue
            key = (record["FIRST_TRACKINTIMESTAMP"] or "", record["FIRST_HISTORYID"] or 0)
            entry = (key, float(record.get("FIRST_TRACKINQTY") or 0))
            for slot in (column, (column, record["EQUIPMENTNAME"] or "")):
                known = self._first.get(slot)
                if known is None or entry[0] < known[0]:
                    self._first[slot] = entry

    def _close_container(self) -> None:
        """A container's records are contiguous in a domain: its first track-ins are final now."""
        if self._current is None:
            return
        for slot, (_key, qty) in self._first.items():
            if isinstance(slot, int):
                self._reached[self._current, slot] = True
                self._input_at[self._current, slot] = qty
            else:
                self._machine_input[slot] = self._machine_input.get(slot, 0.0) + qty
                self._machine_lots[slot] = self._machine_lots.get(slot, 0) + 1
        self._first.clear()
        self._current = None

    def _feed_forward_rejects(self, records: Iterable[dict[str, Any]]) -> None:
        self._close_container()
        last_order = self.detection.last_order
        for record in records:
            container = self._index.get(record["CONTAINERID"])
            order = record["WORKCENTERSEQUENCE_GROUP"]
            if container is None or not self._in_analysis[container] or order is None or order <= last_order:
                continue
            column = self._group_column.get(record["WORKCENTER_GROUP"])
            if column is None:
                continue
            qty = float(record["REJECT_TOTAL_QTY"] or 0) + float(record["DEFECTQTY"] or 0)
            self._reject_at[container, column] += qty
            machine = (column, record["EQUIPMENTNAME"] or "")
            self._machine_reject[machine] = self._machine_reject.get(machine, 0.0) + qty
            reason = (column, record["LOSSREASONNAME"] or "(未知)")
            self._reason_reject[reason] = self._reason_reject.get(reason, 0.0) + qty

    # -- the index -----------------------------------------------------------------------------

    def finish(self) -> MsdIndex:
        population, genealogy = self.population, self.genealogy
        index = MsdIndex(
            direction=self.direction,
            mode=self.mode,
            stations=list(self.detection.stations),
            genealogy_status=genealogy.status,
            genealogy_source=genealogy.source,
            genealogy_error=genealogy.error,
            lot_ids=population.lot_ids,
            names=population.names,
            input=population.input,
            det_machine=population.det_machine,
            det_machines=population.det_machines,
            day=population.day,
            days=population.days,
            pj_type=population.pj_type,
            productline=population.productline,
            workflow=population.workflow,
            facts=population.facts,
            defect_lot=population.defect_lot,
            defect_reason=population.defect_reason,
            defect_qty=population.defect_qty,
            reasons=population.reasons,
            missing_count=population.missing_count,
            missing_names=population.missing_names,
            ancestor_count=self.ancestor_count,
        )
        if self.direction == BACKWARD:
            self._finish_backward(index)
        else:
            self._finish_forward(index)
        return index

    def _finish_backward(self, index: MsdIndex) -> None:
        genealogy = self.genealogy
        # Unique already (a factor belongs to one domain; per container each is kept once); sorted
        # here so that each container's factors are one run.
        keys = np.frombuffer(self._pairs, dtype=np.int64)
        keys.sort()  # in place, in the array's own buffer
        # Container -> factors (CSR), from the sorted unique (container << 32 | factor) keys.
        n_containers = len(genealogy.containers)
        per_container = np.zeros(n_containers, dtype=np.int64)
        for start in range(0, len(keys), 1 << 20):  # slices: no int64 copy of every key
            per_container += np.bincount(keys[start : start + (1 << 20)] >> _SHIFT, minlength=n_containers)
        container_offsets = np.concatenate([[0], np.cumsum(per_container)]).astype(np.int64)
        pair_factor = (keys & ((1 << _SHIFT) - 1)).astype(np.int32)
        del keys, per_container
        self._pairs = array("q")
        # Wafer roots are factors too: one per distinct root name.
        root_codes = np.asarray(
            [self._factor((WAFER_ROOT, name), [WAFER_ROOT, name]) for name in genealogy.root_names], dtype=np.int32
        )
        n_lots = len(genealogy.root_names)
        member_counts = (
            container_offsets[genealogy.members.astype(np.int64) + 1]
            - container_offsets[genealogy.members.astype(np.int64)]
        )
        # At most this many exposures (before a lot's duplicates are dropped): filled in place.
        exposures = np.empty(int(member_counts.sum()) + n_lots, dtype=np.int32)
        del member_counts
        offsets = np.zeros(n_lots + 1, dtype=np.int64)
        total = 0
        # Lot -> factors: the union over the lot's closure, de-duplicated, in slices of lots.
        for start in range(0, n_lots, _LOT_SLICE):
            stop = min(start + _LOT_SLICE, n_lots)
            lo, hi = genealogy.member_offsets[start], genealogy.member_offsets[stop]
            members = genealogy.members[lo:hi].astype(np.int64)
            member_lot = np.repeat(np.arange(start, stop), np.diff(genealogy.member_offsets[start : stop + 1]))
            counts = container_offsets[members + 1] - container_offsets[members]
            pair_lot = np.repeat(member_lot, counts)
            # The factor positions of every member, concatenated: a range per member.
            starts = np.repeat(container_offsets[members] - np.cumsum(counts) + counts, counts)
            positions = starts + np.arange(int(counts.sum()))
            factors = pair_factor[positions].astype(np.int64)
            lots = np.concatenate([pair_lot, np.arange(start, stop)])
            factors = np.concatenate([factors, root_codes[start:stop]])
            unique = np.unique((lots.astype(np.int64) << _SHIFT) | factors)
            kept = (unique & ((1 << _SHIFT) - 1)).astype(np.int32)
            exposures[total : total + len(kept)] = kept
            per_lot = np.bincount((unique >> _SHIFT) - start, minlength=stop - start)
            offsets[start + 1 : stop + 1] = total + np.cumsum(per_lot)
            total += len(kept)
        index.factors = self.factors
        index.exposure_offsets = offsets
        index.exposure_factors = exposures[:total]

    def _finish_forward(self, index: MsdIndex) -> None:
        self._close_container()
        genealogy = self.genealogy
        groups = self.downstream
        stations = []
        for column, (name, order) in enumerate(groups):
            machines = sorted(
                {m for (c, m) in self._machine_input if c == column}
                | {m for (c, m) in self._machine_reject if c == column}
            )
            reasons = sorted(
                ((r, q) for (c, r), q in self._reason_reject.items() if c == column), key=lambda rq: (-rq[1], rq[0])
            )
            input_qty = float(self._input_at[:, column].sum())
            reject_qty = float(self._reject_at[:, column].sum())
            stations.append(
                {
                    "station": name,
                    "order": order,
                    "lots_reached": int(self._reached[:, column].sum()),
                    "input_qty": input_qty,
                    "reject_qty": reject_qty,
                    "machines": [
                        {
                            "name": m,
                            "input_qty": self._machine_input.get((column, m), 0.0),
                            "reject_qty": self._machine_reject.get((column, m), 0.0),
                            "lot_count": self._machine_lots.get((column, m), 0),
                        }
                        for m in machines
                    ],
                    "loss_reasons": [{"name": r, "qty": q} for r, q in reasons],
                }
            )
        index.forward = {"stations": stations, "tracked_lot_count": int(self._in_analysis.sum())}
        # Per lot, over its tracked set: the groups reached (a bit per group, in route order), the
        # rejects and inputs there, and the worst group (the earlier one on a tie).
        n_lots = len(genealogy.member_offsets) - 1
        lot_downstream = np.zeros((n_lots, 3), dtype=np.float64)
        worst: list[str] = []
        for lot in range(n_lots):
            members = genealogy.lot_members(lot)
            reached = self._reached[members].any(axis=0)
            rejects = self._reject_at[members].sum(axis=0)
            bits = sum(1 << column for column in np.flatnonzero(reached).tolist())
            lot_downstream[lot] = (bits, rejects.sum(), self._input_at[members].sum())
            worst.append(groups[int(np.argmax(rejects))][0] if groups and rejects.max() > 0 else "")
        index.lot_downstream = lot_downstream
        index.lot_worst = worst
