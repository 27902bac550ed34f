"""The hand-made warehouses of the MSD tests: every lot, track-in and defect chosen so the numbers can be
worked out by hand (the workings are in the comments; tests/test_msd_oracle.py checks the oracle
against them, tests/test_msd_analysis.py the product against the oracle).

* `build_small` — five detection lots (a split chain, a merge, partial track-outs, a track-in outside
  the window, NULL quantity columns, an upstream machine also used at a second group, machines after
  the detection station, materials at the detection station);
* `build_suspects` — ten lots built so that the forward selection can be followed by hand;
* `demo_seeds` — the detection lots of the generated demo warehouse's whole window.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from support.warehouses import WarehouseBuilder, cid


class MsdWarehouseBuilder(WarehouseBuilder):
    """WarehouseBuilder with the columns the MSD analysis reads (lot facts, reject work centers, ...)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.workcenter_of: dict[str, str] = {}

    def spec(self, spec: str, workcenter: str, group: str, sequence: int) -> None:
        super().spec(spec, workcenter, group, sequence)
        self.workcenter_of[spec] = workcenter

    def lot(
        self,
        container_id: str,
        name: str,
        *,
        split_from: str | None = None,
        pj_type: str | None = "PROD",
        line: str | None = "SOT-23",
        workflow: str | None = "WF-A",
        object_type: str = "LOT",
    ) -> str:
        self.container(container_id, name, split_from=split_from, object_type=object_type)
        self.db.execute(
            "UPDATE DW_MES_CONTAINER SET PJ_TYPE = ?, PRODUCTLINENAME = ?, WORKFLOWNAME = ? WHERE CONTAINERID = ?",
            (pj_type, line, workflow, container_id),
        )
        return container_id

    def track(self, container_id: str, spec: str, equipment: str | None, track_in: str | None, qty: int | None = 100,
              workcenter: str | None = None) -> int:
        """A history row (EQUIPMENTNAME = equipment + '-NAME')."""
        wc = workcenter if workcenter is not None else self.workcenter_of.get(spec, "LAB")
        return self.history(container_id, wc, spec, equipment, track_in, None, qty_in=qty, qty_out=qty)

    def defect(self, container_id: str, spec: str, reason: str | None, txn: str, equipment: str | None = None,
               **quantities: int | None) -> None:
        """A reject row at the spec's work center; quantity columns not given are NULL."""
        self._insert(
            "DW_MES_LOTREJECTHISTORY",
            REJECTHISTORYID=self._next_id("reject"),
            CONTAINERID=container_id,
            WORKCENTERNAME=self.workcenter_of.get(spec, "LAB"),
            SPECNAME=spec,
            EQUIPMENTNAME=equipment,
            LOSSREASONNAME=reason,
            REJECTQTY=quantities.get("REJECTQTY"),
            STANDBYQTY=quantities.get("STANDBYQTY"),
            QTYTOPROCESS=quantities.get("QTYTOPROCESS"),
            INPROCESSQTY=quantities.get("INPROCESSQTY"),
            PROCESSEDQTY=quantities.get("PROCESSEDQTY"),
            DEFECTQTY=quantities.get("DEFECTQTY"),
            TXNDATE=txn,
        )

    def issue(self, container_id: str, spec: str, part: str, lot: str | None) -> None:
        self._insert(
            "DW_MES_LOTMATERIALSHISTORY",
            MATERIALHISTORYID=self._next_id("material"),
            CONTAINERID=container_id,
            MATERIALPARTNAME=part,
            MATERIALLOTNAME=lot,
            QTYCONSUMED=1.0,
            WORKCENTERNAME=self.workcenter_of.get(spec, "LAB"),
            SPECNAME=spec,
            TXNDATE="2025-02-01 00:00:00",
        )

    def resource(self, resource_id: str, family: str | None) -> None:
        self._insert("DW_MES_RESOURCE", RESOURCEID=resource_id, RESOURCENAME=f"{resource_id}-NAME",
                     RESOURCEFAMILYNAME=family)


# --- the small warehouse --------------------------------------------------------------------------
#
# Route: 切割 (1) SP-CUT, 焊接_DB (2) SP-DB, 焊接_WB (3) SP-WB, 測試 (5) SP-FT at work center 測試 and
# SP-TMTT at TMTT, then downstream 包裝 (6) SP-PACK, 出貨 (7) SP-SHIP, 倉儲 (8) SP-STORE. SP-LAB is in no group.
#
# Genealogy: R (LA-R) splits into A1 (LA-1) and A2 (LA-2); F (GF-1) is the merge of A2 and C (LC);
# B (LB), C, E (LE), N (LN) are originals.        closure          ANCESTOR_COUNT  wafer root
#   A1 {A1, R}            1     LA-R
#   A2 {A2, R}            1     LA-R
#   B  {B}                0     LB
#   C  {C}                0     LC
#   F  {F, A2, C, R}      3     min(LA-R, LC) = LA-R   (R and C have no parent)
#
# Window 2025-03-01 .. 2025-03-02. Detection (date mode):
#   A1 測試 EQ-FT-1 03-01 10:00, two rows with TRACKINQTY 100 then 80 (the later row is the detection row,
#      the input is the max): input 100; defects OPEN 3 (PROCESSEDQTY), SHORT 2 (DEFECTQTY only) -> d 5
#   A2 測試 EQ-FT-2 03-02 09:00, input 50; OPEN 1 + 1 (REJECTQTY + STANDBYQTY) -> d 2 (OPEN 10 on 03-05 is
#      outside the window)
#   B  測試 EQ-FT-1 03-01 08:00 (200) and EQ-FT-2 03-02 14:00 (150): the latest, input 150; no defects
#   C  測試 EQ-FT-1 03-01 12:00, input 100 (a row without EQUIPMENTID and one without TRACKINTIMESTAMP are
#      skipped; its 03-04 track-in of 110 is outside the window); SHORT 6, NULL reason 1, VISUAL 0 -> d 7
#   F  TMTT EQ-TT-1 03-02 20:00, input 150; OPEN 3 (INPROCESSQTY) -> d 3
#   E  測試 02-20 only: outside the window, not in the population; N: never tested.
# Σinput = 100 + 50 + 150 + 100 + 150 = 550, Σd = 5 + 2 + 0 + 7 + 3 = 17.
#
# Upstream machines (group, machine):  R: 切割/EQ-D-1, 焊接_DB/EQ-DB-1;  A1: 焊接_DB/EQ-D-1 (EQ-D-1 at a second
# group), 焊接_WB/EQ-WB-1;  A2: 焊接_WB/EQ-WB-2;  B: 切割/EQ-D-1, 焊接_DB/EQ-DB-2, 焊接_WB/EQ-WB-1 (plus a row
# without EQUIPMENTID and a row at SP-LAB);  C: 切割/EQ-D-2, 焊接_DB/EQ-DB-1, 焊接_WB/EQ-WB-2.  F's TMTT and
# 包裝 machines and A1's 包裝 machine are at or after the detection station: not upstream.
# Materials (upstream): R EPOXY/EP-1, B and C EPOXY/EP-2, A1 WIRE (no lot). F's CARRIER (at TMTT) and A2's GLUE
# (SP-LAB) are not upstream.

R, A1, A2, B, C, F, E, N = (cid(n) for n in (0x10, 0x11, 0x12, 0x20, 0x30, 0x40, 0x50, 0x60))
SMALL_SEEDS = [A1, A2, B, C, F, E, N]
WINDOW = {"start_date": "2025-03-01", "end_date": "2025-03-02"}


def build_small(path: Path) -> Path:
    b = MsdWarehouseBuilder(path)
    for spec, wc, group, order in (
        ("SP-CUT", "CUT-WC", "切割", 1),
        ("SP-DB", "DB-WC", "焊接_DB", 2),
        ("SP-WB", "WB-WC", "焊接_WB", 3),
        ("SP-FT", "測試", "測試", 5),
        ("SP-TMTT", "TMTT", "測試", 5),
        ("SP-PACK", "PACK-WC", "包裝", 6),
        ("SP-SHIP", "SHIP-WC", "出貨", 7),
        ("SP-STORE", "STORE-WC", "倉儲", 8),
    ):
        b.spec(spec, wc, group, order)
    b.lot(R, "LA-R")
    b.lot(A1, "LA-1", split_from=R)
    b.lot(A2, "LA-2", split_from=R)
    b.lot(B, "LB", line="SOD-323", workflow="WF-B")
    b.lot(C, "LC", pj_type="ENG", workflow=None)
    b.lot(F, "GF-1", workflow="WF-F", object_type="FINISHED")
    b.lot(E, "LE")
    b.lot(N, "LN")
    b.combine(F, [A2, C], "SN-1")
    for resource_id, family in (("EQ-D-1", "SAW"), ("EQ-D-2", "SAW"), ("EQ-DB-1", "DIE BONDER"),
                                ("EQ-DB-2", None), ("EQ-WB-1", "WIRE BONDER")):
        b.resource(resource_id, family)

    b.track(R, "SP-CUT", "EQ-D-1", "2025-02-01 08:00:00")
    b.track(R, "SP-DB", "EQ-DB-1", "2025-02-02 08:00:00")

    b.track(A1, "SP-DB", "EQ-D-1", "2025-02-03 08:00:00")
    b.track(A1, "SP-WB", "EQ-WB-1", "2025-02-04 08:00:00")
    b.track(A1, "SP-FT", "EQ-FT-1", "2025-03-01 10:00:00", qty=100)
    b.track(A1, "SP-FT", "EQ-FT-1", "2025-03-01 10:00:00", qty=80)  # partial track-out: same track-in
    b.track(A1, "SP-PACK", "EQ-PK-1", "2025-03-02 08:00:00", qty=100)

    b.track(A2, "SP-WB", "EQ-WB-2", "2025-02-04 09:00:00")
    b.track(A2, "SP-FT", "EQ-FT-2", "2025-03-02 09:00:00", qty=50)

    b.track(B, "SP-CUT", "EQ-D-1", "2025-02-01 09:00:00")
    b.track(B, "SP-DB", "EQ-DB-2", "2025-02-02 09:00:00")
    b.track(B, "SP-DB", None, "2025-02-02 10:00:00")  # no EQUIPMENTID: no machine event
    b.track(B, "SP-WB", "EQ-WB-1", "2025-02-04 10:00:00")
    b.track(B, "SP-LAB", "EQ-LAB", "2025-02-05 10:00:00")  # a spec in no group
    b.track(B, "SP-FT", "EQ-FT-1", "2025-03-01 08:00:00", qty=200)
    b.track(B, "SP-FT", "EQ-FT-2", "2025-03-02 14:00:00", qty=150)
    b.track(B, "SP-SHIP", "EQ-SH-1", "2025-03-05 08:00:00", qty=150)

    b.track(C, "SP-CUT", "EQ-D-2", "2025-02-01 10:00:00")
    b.track(C, "SP-DB", "EQ-DB-1", "2025-02-02 11:00:00")
    b.track(C, "SP-WB", "EQ-WB-2", "2025-02-04 11:00:00")
    b.track(C, "SP-FT", "EQ-FT-1", "2025-03-01 12:00:00", qty=100)
    b.track(C, "SP-FT", None, "2025-03-02 23:00:00", qty=999)  # skipped: no EQUIPMENTID
    b.track(C, "SP-FT", "EQ-FT-2", None, qty=999)  # skipped: no TRACKINTIMESTAMP
    b.track(C, "SP-FT", "EQ-FT-2", "2025-03-04 08:00:00", qty=110)  # after the window

    b.track(F, "SP-TMTT", "EQ-TT-1", "2025-03-02 20:00:00", qty=150)
    b.track(F, "SP-PACK", "EQ-PK-1", "2025-03-03 08:00:00", qty=150)
    b.track(F, "SP-PACK", "EQ-PK-1", "2025-03-03 08:00:00", qty=140)
    b.track(F, "SP-PACK", "EQ-PK-2", "2025-03-04 08:00:00", qty=120)

    b.track(E, "SP-FT", "EQ-FT-1", "2025-02-20 08:00:00", qty=100)

    b.issue(R, "SP-DB", "EPOXY", "EP-1")
    b.issue(B, "SP-DB", "EPOXY", "EP-2")
    b.issue(C, "SP-DB", "EPOXY", "EP-2")
    b.issue(A1, "SP-WB", "WIRE", None)
    b.issue(F, "SP-TMTT", "CARRIER", "CT-1")
    b.issue(A2, "SP-LAB", "GLUE", "G-1")

    b.defect(A1, "SP-FT", "OPEN", "2025-03-01 11:00:00", "EQ-FT-1-NAME", PROCESSEDQTY=3)
    b.defect(A1, "SP-FT", "SHORT", "2025-03-01 11:05:00", "EQ-FT-1-NAME", DEFECTQTY=2)
    b.defect(A1, "SP-DB", "VOID", "2025-02-03 09:00:00", "EQ-D-1-NAME", REJECTQTY=9)  # not at the station
    b.defect(A2, "SP-FT", "OPEN", "2025-03-02 10:00:00", REJECTQTY=1, STANDBYQTY=1)
    b.defect(A2, "SP-FT", "OPEN", "2025-03-05 10:00:00", QTYTOPROCESS=10)  # after the window
    b.defect(C, "SP-FT", "SHORT", "2025-03-01 13:00:00", PROCESSEDQTY=6)
    b.defect(C, "SP-FT", None, "2025-03-01 13:10:00", INPROCESSQTY=1)
    b.defect(C, "SP-FT", "VISUAL", "2025-03-01 13:20:00")  # every quantity NULL: 0
    b.defect(F, "SP-TMTT", "OPEN", "2025-03-02 21:00:00", INPROCESSQTY=3)
    b.defect(E, "SP-FT", "OPEN", "2025-02-20 09:00:00", PROCESSEDQTY=50)
    # Downstream (any date counts there).
    b.defect(F, "SP-PACK", "DAMAGE", "2025-04-01 00:00:00", "EQ-PK-1-NAME", REJECTQTY=4)
    b.defect(F, "SP-PACK", "SCRATCH", "2025-03-04 09:00:00", "EQ-PK-2-NAME", REJECTQTY=1)
    b.defect(A1, "SP-PACK", "DAMAGE", "2025-03-02 09:00:00", "EQ-PK-1-NAME", DEFECTQTY=2)
    b.defect(B, "SP-SHIP", "LABEL", "2025-03-05 09:00:00", "EQ-SH-9-NAME", REJECTQTY=3)
    return b.close()



# --- forward selection by hand --------------------------------------------------------------------
#
# Ten original lots S01..S10, input 100 each, defects 10 10 10 10 0 5 5 5 0 0 → r = .1 .1 .1 .1 0 .05 .05 .05 0 0.
# Machines: X (切割) on S01-S04; Y (切割) on S01 S02 S03 S05 S09 S10; Z (焊接) on S04 S06 S07 S08;
# material RESIN (RS-1) on S01-S04 (the same lots as X). Every wafer root has one lot.
#
# Round 1, U = all ten: mean .055, Σ(r − mean)² = 4 × .045² + 3 × .055² + 3 × .005² = .01725, s² = .01725 / 9.
#   X:  (.1 − .15/6) / sqrt(s² × (1/4 + 1/6)) = .075 / .0282597 = 2.6540; RESIN the same: the machine wins.
#   Y:  (.3/6 − .25/4) / sqrt(s² × (1/6 + 1/4)) = −.0125 / .0282597 = −0.4423;  Z: +0.4423.
# Round 2, U = S05..S10 (r 0 .05 .05 .05 0 0): mean .025, s² = 6 × .025² / 5 = .00075.
#   Z ∩ U = S06 S07 S08 vs S05 S09 S10: .05 / sqrt(.00075 × 2/3) = .05 / .0223607 = 2.2361 (√5); Y: −2.2361;
#   RESIN has no lot left in U. Z wins; it shares S04 with X.
# Round 3, U = S05 S09 S10: only Y has ≥ 3 lots in U, and no lot is left outside it: z = 0 → stop.

S_LOTS = [cid(0x700 + k) for k in range(1, 11)]
S_DEFECTS = [10, 10, 10, 10, 0, 5, 5, 5, 0, 0]


def build_suspects(path: Path) -> Path:
    b = MsdWarehouseBuilder(path)
    b.spec("SP-CUT", "CUT-WC", "切割", 1)
    b.spec("SP-BOND", "BOND-WC", "焊接", 2)
    b.spec("SP-FT", "測試", "測試", 3)
    for k, (lot, defects) in enumerate(zip(S_LOTS, S_DEFECTS), start=1):
        b.lot(lot, f"S{k:02d}")
        b.track(lot, "SP-FT", "EQ-FT", f"2025-03-01 {k:02d}:00:00")
        if defects:
            b.defect(lot, "SP-FT", "OPEN", f"2025-03-01 {k:02d}:30:00", PROCESSEDQTY=defects)
    for k in (1, 2, 3, 4):
        b.track(S_LOTS[k - 1], "SP-CUT", "EQ-X", "2025-02-01 08:00:00")
        b.issue(S_LOTS[k - 1], "SP-CUT", "RESIN", "RS-1")
    for k in (1, 2, 3, 5, 9, 10):
        b.track(S_LOTS[k - 1], "SP-CUT", "EQ-Y", "2025-02-01 09:00:00")
    for k in (4, 6, 7, 8):
        b.track(S_LOTS[k - 1], "SP-BOND", "EQ-Z", "2025-02-02 08:00:00")
    return b.close()



def demo_seeds(path: Path) -> list[str]:
    """Every lot with a track-in (with a machine) at a work center of the 測試 group in the whole window."""
    with sqlite3.connect(path) as conn:
        return [row[0] for row in conn.execute(
            "SELECT DISTINCT h.CONTAINERID FROM DW_MES_LOTWIPHISTORY h"
            " WHERE h.EQUIPMENTID IS NOT NULL"
            "   AND h.TRACKINTIMESTAMP >= '2026-01-05 00:00:00' AND h.TRACKINTIMESTAMP < '2026-06-04 00:00:00'"
            "   AND h.WORKCENTERNAME IN (SELECT WORKCENTERNAME FROM DW_MES_SPEC_WORKCENTER_V"
            "                            WHERE WORKCENTER_GROUP = '測試')"
            " ORDER BY h.CONTAINERID"
        )]

