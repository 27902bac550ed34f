"""The embedded demo MES warehouse: a believable packaging line, generated fast and deterministically.

The service is built for the production warehouse (Oracle); everywhere else it reads a SQLite file
with the same tables (``schema.sql``) that this module fills. The data is shaped like the plant's:

* wafer lots (FIRSTNAME) are released as 1-3 assembly lots each, grouped into work orders;
* every assembly lot walks an ordered route of 13 steps over the station groups 切割 .. 測試, one
  machine per step, with queue and process times, partial track-outs, rejects, materials and holds;
* lots split (children continue the route from the split point, and sometimes split again), and
  tested lots are combined into finished lots (OBJECTTYPE 'FINISHED') that run TMTT;
* maintenance jobs list the lots that were on a machine around the time of the job;
* a planted defect signal: lots whose genealogy went through ``BAD_MACHINES`` or consumed
  ``BAD_MATERIAL_LOTS`` fail final test (work center 測試) far more often. The signal is carried
  from parent to split child, so an attribution that drops ancestors loses part of it.

Everything is drawn from one ``random.Random(seed)`` in a fixed order and rows are inserted in
generation order, so the same seed gives the same table contents. Rows are streamed to SQLite in
batches; only the assembly lots waiting to be combined are held in memory.

See ``docs/demo-warehouse.md`` for the schema and the model in prose.
"""

from __future__ import annotations

import math
import os
import random
import re
import sqlite3
import sys
import time
from collections import deque
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

SCHEMA_PATH = Path(__file__).with_name("schema.sql")
TIMESTAMP_FORMAT = "%Y-%m-%d %H:%M:%S"

# Route order of the station groups; WORKCENTERSEQUENCE_GROUP is the 1-based position here.
STATION_GROUPS: list[str] = ["切割", "焊接_DB", "焊接_WB", "成型", "去膠", "電鍍", "移印", "切彎腳", "測試"]

# Work centers (WORKCENTERNAME) of each group. Assembly lots are final-tested at 測試; finished lots
# (the result of a merge) run TMTT. Both belong to the 測試 group.
WORK_CENTERS: dict[str, tuple[str, ...]] = {
    "切割": ("切割",),
    "焊接_DB": ("焊接_DB",),
    "焊接_WB": ("焊接_WB",),
    "成型": ("成型", "烘烤"),
    "去膠": ("去膠",),
    "電鍍": ("電鍍",),
    "移印": ("移印",),
    "切彎腳": ("切彎腳",),
    "測試": ("測試", "TMTT"),
}
DETECTION_GROUP = "測試"
FINAL_TEST_WORKCENTER = "測試"
TMTT_WORKCENTER = "TMTT"

# The planted signal. Machines are EQUIPMENTNAMEs; material lots are MATERIALLOTNAMEs. Material lots
# are numbered by supply period counted from the first day of history (start_date - LEAD_DAYS) and
# by machine slot (see Material), so these two are in use only when the generated span reaches
# them: EMC-0015 on days 35-42 of history at presses MD-01/MD-04, AUW-0046 on days 60-64 at
# bonders WB-02/05/08/11/14 (days >= 58 covers both). Neither shares machines with BAD_MACHINES,
# so the two kinds of signal do not mask each other.
BAD_MACHINES: tuple[str, ...] = ("WB-07", "MD-03")
BAD_MATERIAL_LOTS: tuple[str, ...] = ("EMC-0015", "AUW-0046")

# History starts this many days before start_date: lots already in WIP when the window opens, so
# that test track-ins cover the whole window [start_date, start_date + days).
LEAD_DAYS = 7

# Containers (assembly lots, split children and finished lots) per root assembly lot, measured on
# this generator; used to turn `lots` into a number of root lots. Re-measure if the model changes.
CONTAINERS_PER_ROOT = 1.91


@dataclass(frozen=True)
class Step:
    """One step of the assembly route: a spec run on one machine of a pool."""

    group: str
    workcenter: str
    specs: tuple[str, ...]  # SPECNAME variants; a product's family picks one
    prefix: str  # machine names are PREFIX-NN
    machines: int
    hours: float  # mean process time
    partial: float  # probability that the lot is tracked out in several parts
    reject: float  # probability of a reject row (final test and TMTT have their own model)


STEPS: tuple[Step, ...] = (
    Step("切割", "切割", ("DC-MOUNT",), "MT", 4, 1.0, 0.02, 0.0),
    Step("切割", "切割", ("DC-SAW",), "DS", 8, 3.0, 0.06, 0.02),
    Step("焊接_DB", "焊接_DB", ("DB-EPOXY", "DB-EUTECTIC"), "DB", 10, 4.0, 0.10, 0.02),
    Step("焊接_DB", "焊接_DB", ("DB-CURE",), "CO", 4, 2.0, 0.0, 0.0),
    Step("焊接_WB", "焊接_WB", ("WB-AU", "WB-CU"), "WB", 14, 6.0, 0.14, 0.03),
    Step("焊接_WB", "焊接_WB", ("WB-3OI",), "AOI", 4, 1.0, 0.0, 0.01),
    Step("成型", "成型", ("MD-MOLD",), "MD", 6, 2.5, 0.06, 0.02),
    Step("成型", "烘烤", ("MD-PMC",), "PMC", 4, 6.0, 0.0, 0.0),
    Step("去膠", "去膠", ("DF-DEFLASH",), "DF", 3, 1.0, 0.0, 0.01),
    Step("電鍍", "電鍍", ("PL-SN",), "PL", 4, 4.0, 0.12, 0.02),
    Step("移印", "移印", ("MK-LASER",), "LM", 5, 1.0, 0.0, 0.01),
    Step("切彎腳", "切彎腳", ("TF-TRIMFORM",), "TF", 6, 1.5, 0.06, 0.02),
    Step("測試", "測試", ("FT-DIODE", "FT-TRANSISTOR"), "FT", 12, 6.0, 0.30, 0.0),
)
FINAL_TEST = len(STEPS) - 1  # index of the final-test step: the last step of an assembly lot
TMTT_STEP = Step("測試", "TMTT", ("TMTT-REEL",), "TT", 8, 4.0, 0.25, 0.0)
ALL_STEPS: tuple[Step, ...] = (*STEPS, TMTT_STEP)

LOSS_REASONS: dict[str, tuple[str, ...]] = {
    "切割": ("CHIPPING 崩角", "DIE CRACK 晶粒破裂"),
    "焊接_DB": ("DIE TILT 晶粒傾斜", "EPOXY VOID 銀膠空洞", "MISSING DIE 缺晶"),
    "焊接_WB": ("BALL LIFT 球脫", "WIRE BROKEN 斷線", "NSOP 焊不黏"),
    "成型": ("INCOMPLETE FILL 填充不足", "MOLD VOID 氣孔", "WIRE SWEEP 沖線"),
    "去膠": ("RESIDUE 殘膠",),
    "電鍍": ("PLATING THICKNESS 鍍層厚度", "DISCOLOR 變色"),
    "移印": ("MARKING NG 印字不良",),
    "切彎腳": ("BENT LEAD 彎腳", "COPLANARITY 共面度"),
    "測試": ("OPEN 開路", "SHORT 短路", "VF FAIL 順向電壓", "IR LEAKAGE 漏電", "VISUAL 外觀"),
    "TMTT": ("TAPING NG 編帶不良", "MARK NG 印字不良", "ORIENTATION 方向錯誤"),
}
# What a genuinely bad bond or mold does at test: opens and leakage, not cosmetic fails.
_SIGNAL_LOSSES = ("OPEN 開路", "IR LEAKAGE 漏電", "OPEN 開路", "SHORT 短路")
_REJECT_COMMENTS = (None, None, None, "AOI 複判", "MRB 判退", "工程確認", "重測後報廢")


@dataclass(frozen=True)
class Product:
    name: str
    line: str  # PRODUCTLINENAME: the package line
    bop: str
    family: int  # 0 diodes (gold wire, diode test program), 1 transistors (copper wire)
    wafer_part: str
    weight: float


PRODUCTS: tuple[Product, ...] = (
    Product("1N4148WS", "SOD-323", "BOP-SOD323-01", 0, "WF-SW75V", 3.0),
    Product("BAT54C", "SOT-23", "BOP-SOT23-02", 0, "WF-SBD30V", 2.0),
    Product("MMBT3904", "SOT-23", "BOP-SOT23-01", 1, "WF-NPN40V", 2.5),
    Product("2N7002K", "SOT-23", "BOP-SOT23-03", 1, "WF-NMOS60V", 2.0),
    Product("SMBJ15A", "SMB", "BOP-SMB-01", 0, "WF-TVS15V", 1.0),
    Product("SS34", "SMA", "BOP-SMA-02", 0, "WF-SBD40V", 1.5),
    Product("DMP4NA60", "TO-252", "BOP-TO252-01", 1, "WF-NMOS600V", 0.7),
    Product("BZT52C5V1", "SOD-123", "BOP-SOD123-01", 0, "WF-ZEN5V1", 1.3),
)
_PRODUCT_WEIGHTS = [p.weight for p in PRODUCTS]


@dataclass(frozen=True)
class Material:
    """A material consumed at a step.

    Each machine of the step loads its own material lot, and the lots change every `period_days`.
    `slots` lots are in use at the same time: machine k of the step uses slot k % slots, and the
    lot is CODE-NNNN with NNNN = period * slots + slot. Several concurrent lots keep a material lot
    from being a mere alias of "the lots processed that week".
    """

    part: str  # MATERIALPARTNAME; '{line}' is replaced by the product's package line
    code: str  # MATERIALLOTNAME prefix
    period_days: float
    per_unit: float  # QTYCONSUMED per unit of the lot
    slots: int = 1
    family: int | None = None  # only products of this family consume it


# Step index -> materials. The wafer itself (FIRSTNAME) is also recorded at die bond.
MATERIALS: dict[int, tuple[Material, ...]] = {
    2: (Material("LEADFRAME {line}", "LF", 3, 1 / 120, 2), Material("DIE ATTACH EPOXY 84-1", "DAE", 5, 0.0004, 2)),
    4: (Material("AU WIRE 1.0MIL", "AUW", 4, 0.0035, 3, family=0), Material("CU WIRE 1.0MIL", "CUW", 4, 0.0035, 3, 1)),
    6: (Material("EMC G700", "EMC", 7, 0.021, 3),),
    9: (Material("TIN ANODE 99.99", "SN", 7, 0.00006),),
}
TMTT_MATERIALS: tuple[Material, ...] = (
    Material("CARRIER TAPE 8MM", "CT", 3, 0.004, 2),
    Material("COVER TAPE 5.4MM", "CVT", 3, 0.004, 2),
)

# (HOLDREASONNAME, needs an NCR, HOLDCOMMENTS)
_HOLD_REASONS = (
    ("QC HOLD 品質異常", True, "外觀抽檢不良"),
    ("ENG HOLD 工程驗證", False, "工程實驗批"),
    ("EQUIPMENT ABNORMAL 設備異常", False, "機台異常待確認"),
    ("MATERIAL ISSUE 物料異常", True, "物料批號待確認"),
    ("CUSTOMER HOLD 客戶要求", False, None),
)
_JOB_MODELS = (
    ("PM 定期保養", ("PM DUE 保養到期",), ("SCHEDULED 計畫保養",), ("CLEAN 清潔", "REPLACE PARTS 更換零件")),
    ("BREAKDOWN 故障", ("ALARM 異常警報", "JAM 卡料", "NO POWER 斷電"),
     ("WEAR 磨耗", "SENSOR 感測器", "OPERATOR 人為"), ("REPLACE PARTS 更換零件", "ADJUST 調整", "RESET 重置")),
    ("CALIBRATION 校正", ("DRIFT 偏移",), ("AGING 老化",), ("CALIBRATE 校正",)),
    ("SETUP 換線", ("PRODUCT CHANGE 換產品",), ("PLANNED 計畫",), ("CONVERSION KIT 換治具",)),
)
_TABLES = (
    "DW_MES_CONTAINER",
    "DW_MES_LOTWIPHISTORY",
    "DW_MES_LOTMATERIALSHISTORY",
    "DW_MES_LOTREJECTHISTORY",
    "DW_MES_HOLDRELEASEHISTORY",
    "DW_MES_JOB",
    "DW_MES_PJ_COMBINEDASSYLOTS",
    "DW_MES_SPEC_WORKCENTER_V",
)
# Columns written, in the order of the generated tuples. Naming them keeps the inserts valid if
# schema.sql gains columns later (they are left NULL).
_COLUMNS: dict[str, tuple[str, ...]] = {
    "DW_MES_CONTAINER": (
        "CONTAINERID", "CONTAINERNAME", "SPLITFROMID", "ORIGINALCONTAINERID", "FIRSTNAME", "MFGORDERNAME", "PJ_TYPE",
        "PJ_BOP", "PRODUCTNAME", "PRODUCTLINENAME", "QTY", "SPECNAME", "OBJECTTYPE", "CREATETIMESTAMP",
    ),
    "DW_MES_LOTWIPHISTORY": (
        "HISTORYID", "CONTAINERID", "WORKCENTERNAME", "SPECNAME", "EQUIPMENTID", "EQUIPMENTNAME", "TRACKINTIMESTAMP",
        "TRACKOUTTIMESTAMP", "TRACKINQTY", "TRACKOUTQTY", "FINISHEDRUNCARD", "PJ_WORKORDER",
    ),
    "DW_MES_LOTMATERIALSHISTORY": (
        "MATERIALHISTORYID", "CONTAINERID", "MATERIALPARTNAME", "MATERIALLOTNAME", "QTYCONSUMED", "WORKCENTERNAME",
        "SPECNAME", "EQUIPMENTNAME", "TXNDATE",
    ),
    "DW_MES_LOTREJECTHISTORY": (
        "REJECTHISTORYID", "CONTAINERID", "WORKCENTERNAME", "SPECNAME", "EQUIPMENTNAME", "LOSSREASONNAME", "REJECTQTY",
        "STANDBYQTY", "QTYTOPROCESS", "INPROCESSQTY", "PROCESSEDQTY", "DEFECTQTY", "REJECTCOMMENT", "TXNDATE",
    ),
    "DW_MES_HOLDRELEASEHISTORY": (
        "HOLDHISTORYID", "CONTAINERID", "WORKCENTERNAME", "HOLDTXNDATE", "HOLDEMPNAME", "HOLDREASONNAME",
        "HOLDCOMMENTS", "RELEASETXNDATE", "RELEASEEMPNAME", "RELEASECOMMENTS", "NCRID",
    ),
    "DW_MES_JOB": (
        "JOBID", "RESOURCENAME", "JOBMODELNAME", "JOBSTATUS", "CREATEDATE", "COMPLETEDATE", "SYMPTOMCODENAME",
        "CAUSECODENAME", "REPAIRCODENAME", "CONTAINERIDS", "CONTAINERNAMES",
    ),
    "DW_MES_PJ_COMBINEDASSYLOTS": (
        "COMBINEID", "CONTAINERID", "CONTAINERNAME", "LOTID", "FINISHEDNAME", "COMBINEDQTY", "TXNDATE",
    ),
    "DW_MES_SPEC_WORKCENTER_V": ("SPECNAME", "WORKCENTERNAME", "WORKCENTER_GROUP", "WORKCENTERSEQUENCE_GROUP"),
}
_BATCH = 20_000
_HOUR = 3600
_DAY = 86400
_MASK64 = (1 << 64) - 1
# An odd multiplier makes i -> i * K mod 2**64 a bijection: unique, random-looking ids from a counter.
_ID_MULTIPLIER = 0x9E3779B97F4A7C15


def machine_names(step: Step) -> list[str]:
    """EQUIPMENTNAMEs of a step's machine pool."""
    return [f"{step.prefix}-{k:02d}" for k in range(1, step.machines + 1)]


def spec_workcenter_rows() -> list[tuple[str, str, str, int]]:
    """The rows of DW_MES_SPEC_WORKCENTER_V: spec -> work center, group, group's route order."""
    rows = []
    for step in ALL_STEPS:
        for spec in step.specs:
            rows.append((spec, step.workcenter, step.group, STATION_GROUPS.index(step.group) + 1))
    return rows


def schema_statements() -> tuple[list[str], list[str]]:
    """schema.sql split into (CREATE TABLE statements, CREATE INDEX statements)."""
    text = SCHEMA_PATH.read_text(encoding="utf-8")
    # The schema has no string literals, so '--' always starts a comment (comments contain ';').
    text = "\n".join(line.split("--", 1)[0] for line in text.splitlines())
    tables, indexes = [], []
    for statement in (s.strip() for s in text.split(";")):
        if not statement:
            continue
        (indexes if re.match(r"CREATE\s+(UNIQUE\s+)?INDEX", statement, re.I) else tables).append(statement)
    return tables, indexes


class _Progress:
    """`\\r[#####     ] 45% history` on a stream, redrawn at most four times a second."""

    def __init__(self, enabled: bool, stream: TextIO | None = None) -> None:
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self._last = 0.0
        self._shown = ""

    def update(self, fraction: float, label: str, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self._last < 0.25:
            return
        self._last = now
        fraction = min(max(fraction, 0.0), 1.0)
        filled = int(fraction * 30)
        text = f"\r[{'#' * filled}{' ' * (30 - filled)}] {fraction * 100:3.0f}% {label:<12}"
        if text != self._shown:
            self.stream.write(text)
            self.stream.flush()
            self._shown = text

    def done(self) -> None:
        if self.enabled:
            self.update(1.0, "done", force=True)
            self.stream.write("\n")
            self.stream.flush()


class _Lot:
    """A container being generated. Ids and names are fixed when the container is created."""

    __slots__ = ("cid", "name", "product", "order", "wafer", "base", "sub", "depth", "chain", "parent", "original",
                 "kind")

    def __init__(self, cid: str, name: str, product: int, order: str, wafer: str, base: str, sub: int,
                 depth: int, chain: list[int], parent: str | None, original: str, kind: str = "PROD") -> None:
        self.cid = cid
        self.name = name
        self.product = product
        self.order = order
        self.wafer = wafer
        self.base = base
        self.sub = sub
        self.depth = depth
        self.chain = chain  # split counter shared by a root lot and all its descendants
        self.parent = parent
        self.original = original
        self.kind = kind  # PJ_TYPE: production, engineering or qualification lot


class _Generator:
    def __init__(self, conn: sqlite3.Connection, lots: int, seed: int, start_date: date, days: int,
                 bar: _Progress) -> None:
        self.conn = conn
        self.lots = lots
        self.rng = random.Random(seed)
        self.bar = bar
        self.origin = datetime.combine(start_date - timedelta(days=LEAD_DAYS), datetime.min.time())
        self.end = (LEAD_DAYS + days) * _DAY  # seconds since origin; nothing happens at or after it
        self.span_days = LEAD_DAYS + days
        # Formatting a timestamp is a list lookup and a concatenation: strftime would dominate the build.
        self._day_text = [(self.origin + timedelta(days=d)).strftime("%Y-%m-%d ") for d in range(self.span_days + 2)]
        self._day_ym = [(self.origin + timedelta(days=d)).strftime("%y%m") for d in range(self.span_days + 2)]
        self._day_ymd = [(self.origin + timedelta(days=d)).strftime("%y%m%d") for d in range(self.span_days + 2)]
        self._tod = [f"{h:02d}:{m:02d}:{s:02d}" for h in range(24) for m in range(60) for s in range(60)]
        self._id_offset = self.rng.getrandbits(64)
        self._next_id = 0
        self.buffers: dict[str, list[tuple[Any, ...]]] = {t: [] for t in _TABLES}
        self.counts: dict[str, int] = {t: 0 for t in _TABLES}
        self._sql = {
            table: f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
            for table, cols in _COLUMNS.items()
        }
        self.machines = [machine_names(s) for s in ALL_STEPS]
        self.machine_ids = [[f"EQ{si + 1:02d}{k:03d}" for k in range(1, s.machines + 1)]
                            for si, s in enumerate(ALL_STEPS)]
        self.bad_machine = [[name in BAD_MACHINES for name in names] for names in self.machines]
        self.materials = self._materials_by_product()
        self.completed: list[tuple[int, int, int, str, str, int, int, str]] = []
        self.jobs: dict[str, list[list[Any]]] = {}  # machine -> open jobs still collecting lots
        self.job_count = 0
        self.month_seq: dict[str, int] = {}
        self.finished_seq: dict[str, int] = {}

    # -- helpers -----------------------------------------------------------------------------------

    def ts(self, t: int) -> str:
        return self._day_text[t // _DAY] + self._tod[t % _DAY]

    def new_id(self) -> str:
        value = (self._next_id * _ID_MULTIPLIER + self._id_offset) & _MASK64
        self._next_id += 1
        return f"{value:016x}"

    def emit(self, table: str, row: tuple[Any, ...]) -> None:
        buffer = self.buffers[table]
        buffer.append(row)
        if len(buffer) >= _BATCH:
            self.flush(table)

    def flush(self, table: str) -> None:
        buffer = self.buffers[table]
        if buffer:
            self.conn.executemany(self._sql[table], buffer)
            self.counts[table] += len(buffer)
            buffer.clear()

    def _materials_by_product(self) -> list[dict[int, list[tuple[str, str, int, float, int]]]]:
        """Per product, step index -> (MATERIALPARTNAME, lot code, supply period in s, qty per unit, slots)."""
        table = []
        for product in PRODUCTS:
            by_step: dict[int, list[tuple[str, str, int, float, int]]] = {}
            for si, mats in (*MATERIALS.items(), (len(STEPS), TMTT_MATERIALS)):
                for m in mats:
                    if m.family is None or m.family == product.family:
                        code = m.code + (product.line.replace("-", "") if m.code == "LF" else "")
                        by_step.setdefault(si, []).append(
                            (m.part.format(line=product.line), code, int(m.period_days * _DAY), m.per_unit, m.slots)
                        )
            table.append(by_step)
        return table

    # -- the plan: wafer lots, release times, work orders ---------------------------------------------

    def run(self) -> dict[str, int]:
        rng = self.rng
        for row in spec_workcenter_rows():
            self.emit("DW_MES_SPEC_WORKCENTER_V", row)

        roots_wanted = max(1, round(self.lots / CONTAINERS_PER_ROOT))
        sizes: list[int] = []  # root assembly lots per wafer lot
        planned = 0
        while planned < roots_wanted:
            sizes.append(min(rng.choices((1, 2, 3), (0.5, 0.35, 0.15))[0], roots_wanted - planned))
            planned += sizes[-1]
        # Releases run from the first day of history to two days before the end, evenly with jitter,
        # so that test track-ins cover the whole window and the last lots are still in WIP at the end.
        release_span = max(self.end - 2 * _DAY, _DAY)
        spacing = release_span / len(sizes)
        orders: dict[int, list[Any]] = {}  # product -> [order name, wafer lots left]
        order_seq = 0
        for w, size in enumerate(sizes):
            t_release = int((w + rng.random()) * spacing)
            product = rng.choices(range(len(PRODUCTS)), _PRODUCT_WEIGHTS)[0]
            current = orders.get(product)
            if current is None or current[1] == 0:
                order_seq += 1
                current = orders[product] = [f"MO{self._day_ym[t_release // _DAY]}{order_seq:05d}",
                                             rng.randint(3, 8)]
            current[1] -= 1
            self._wafer_lot(t_release, product, current[0], size)
            if w % 64 == 0:
                self._close_jobs(t_release)
                self.bar.update(0.8 * w / len(sizes), "lots")
        self._close_jobs(None)
        self._finished_lots()
        self._close_jobs(None)
        for table in _TABLES:
            self.flush(table)
        return dict(self.counts)

    def _wafer_lot(self, t_release: int, product: int, order: str, size: int) -> None:
        rng = self.rng
        ym = self._day_ym[t_release // _DAY]
        seq = self.month_seq.get(ym, 0) + 1
        self.month_seq[ym] = seq
        # GA23100020-A00-011: line letter, yymm, sequence in the month; the letter moves on past 9999.
        base = f"G{chr(65 + seq // 10000)}{ym}{seq % 10000:04d}"
        wafer = f"T{'ABX'[seq % 3]}{ym}{seq:05d}.1"
        kind = rng.choices(("PROD", "ENG", "QUAL"), (0.96, 0.03, 0.01))[0]
        for k in range(size):
            cid = self.new_id()
            sub = 11 + k
            root = _Lot(cid, f"{base}-A00-{sub:03d}", product, order, wafer, base, sub, 0, [0], None, cid, kind)
            qty = 100 * rng.randint(40, 150)
            self._family(root, t_release + k * rng.randint(300, 1800), qty)

    # -- one root lot and every lot split from it ---------------------------------------------------

    def _family(self, root: _Lot, t_created: int, qty: int) -> None:
        pending = deque([(root, 0, t_created, qty, 0)])
        while pending:
            lot, first, t0, q, exposure = pending.popleft()
            spec, q_end, splits = self._route(lot, first, t0, q, exposure)
            self.emit("DW_MES_CONTAINER", (
                lot.cid, lot.name, lot.parent, lot.original, lot.wafer, lot.order, lot.kind, PRODUCTS[lot.product].bop,
                PRODUCTS[lot.product].name, PRODUCTS[lot.product].line, q_end, spec, "LOT", self.ts(t0),
            ))
            for step_index, t_split, child_qty, child_exposure in splits:
                lot.chain[0] += 1
                cid = self.new_id()
                depth = lot.depth + 1
                child = _Lot(cid, f"{lot.base}-{chr(65 + depth)}{lot.chain[0]:02d}-{lot.sub:03d}", lot.product,
                             lot.order, lot.wafer, lot.base, lot.sub, depth, lot.chain, lot.cid, lot.original,
                             lot.kind)
                pending.append((child, step_index + 1, t_split, child_qty, child_exposure))

    def _route(self, lot: _Lot, first: int, t: int, qty: int, exposure: int) -> tuple[str, int, list[Any]]:
        """Walk `lot` from step `first`; emit its rows. Returns (current spec, qty, splits to create)."""
        rng = self.rng
        rand = rng.random
        end = self.end
        ts = self.ts
        emit = self.emit
        product = PRODUCTS[lot.product]
        family = product.family
        mats = self.materials[lot.product]
        cid = lot.cid
        splits: list[Any] = []
        if first > FINAL_TEST:
            # Split off after final test: nothing left to run, the lot waits to be combined.
            self.completed.append((t, lot.product, len(self.completed), cid, lot.name, qty, exposure, lot.order))
            return STEPS[FINAL_TEST].specs[family % len(STEPS[FINAL_TEST].specs)], qty, splits
        # One split per lot at most, more often for original lots; a split can even come right after
        # final test (children then have no history of their own: only their ancestors do).
        split_at = -1
        if rand() < (0.32 if lot.depth == 0 else 0.18 if lot.depth < 3 else 0.0) and first < FINAL_TEST:
            split_at = rng.randint(first, FINAL_TEST)
            if split_at == FINAL_TEST and rand() < 0.7:
                split_at = rng.randint(first, FINAL_TEST - 1)
        hold_at = rng.randint(first, FINAL_TEST) if rand() < 0.035 else -1
        job_at = rng.randint(first, FINAL_TEST) if rand() < 0.02 else -1
        spec = ""
        for si in range(first, FINAL_TEST + 1):
            step = STEPS[si]
            spec = step.specs[family % len(step.specs)]
            t += int(-math.log(1.0 - rand()) * 3 * _HOUR) + 300  # queue time before the step
            if t >= end:
                return spec, qty, splits
            k = int(rand() * step.machines)
            machine = self.machines[si][k]
            machine_id = self.machine_ids[si][k]
            if self.bad_machine[si][k]:
                exposure += 1
            t_in = t
            t_out = t_in + int(step.hours * _HOUR * (0.6 + 0.8 * rand()))
            q_in = qty
            # Materials are issued at track-in.
            for part, code, period, per_unit, slots in mats.get(si, ()):
                lot_name = f"{code}-{t_in // period * slots + k % slots:04d}"
                if lot_name in BAD_MATERIAL_LOTS:
                    exposure += 1
                emit("DW_MES_LOTMATERIALSHISTORY", (
                    self._bump("DW_MES_LOTMATERIALSHISTORY"), cid, part, lot_name, round(q_in * per_unit, 3),
                    step.workcenter, spec, machine, ts(t_in + 60 + int(rand() * 600)),
                ))
            if si == 2:  # the dies themselves: the wafer lot is a material of die bond
                emit("DW_MES_LOTMATERIALSHISTORY", (
                    self._bump("DW_MES_LOTMATERIALSHISTORY"), cid, product.wafer_part, lot.wafer, float(q_in),
                    step.workcenter, spec, machine, ts(t_in + 30),
                ))
            # Rejects: final test follows the planted signal, the other steps a small background rate.
            defects = 0
            loss = None
            if si == FINAL_TEST:
                e = min(exposure, 2)
                if e == 0:
                    if rand() < 0.25:
                        defects = 1 + int(q_in * (0.001 + 0.004 * rand()))
                        loss = LOSS_REASONS["測試"][int(rand() * 5)]
                elif rand() < 0.92:
                    defects = 1 + int(q_in * e * (0.02 + 0.03 * rand()))
                    loss = _SIGNAL_LOSSES[int(rand() * 4)]
            elif rand() < (step.reject * 3 if self.bad_machine[si][k] else step.reject):
                defects = 1 + int(q_in * 0.003 * rand())
                reasons = LOSS_REASONS[step.group]
                loss = reasons[int(rand() * len(reasons))]
            if t_out >= end:
                # Still on the machine when the data ends: tracked in, not out.
                emit("DW_MES_LOTWIPHISTORY", (
                    self._bump("DW_MES_LOTWIPHISTORY"), cid, step.workcenter, spec, machine_id, machine, ts(t_in),
                    None, q_in, None, None, lot.order,
                ))
                self._job_check(si, machine, t_in, lot, si == job_at)
                return spec, qty, splits
            defects = min(defects, q_in // 4)
            qty = q_in
            if defects:
                qty -= self._reject(cid, step.workcenter, spec, machine, loss, q_in, defects, t_out - 120,
                                    si == FINAL_TEST)
            self._track(cid, step.workcenter, spec, machine_id, machine, t_in, t_out, q_in, qty, lot.order,
                        step.partial)
            self._job_check(si, machine, t_in, lot, si == job_at)
            t = t_out
            if si == FINAL_TEST and defects > q_in * 0.03 and rand() < 0.12:
                # A bad test yield puts the lot on an MRB hold before it can be combined.
                t = self._hold(cid, step.workcenter, t, True)
                if t < 0:
                    return spec, qty, splits
            elif si == hold_at:
                t = self._hold(cid, step.workcenter, t, False)
                if t < 0:
                    return spec, qty, splits
            if si == split_at and qty >= 800:
                children = rng.choices((1, 2, 3), (0.65, 0.27, 0.08))[0]
                t_split = t + 120 + int(rand() * 1800)
                if t_split >= end:
                    continue
                for _ in range(children):
                    part = int(qty * (0.15 + 0.2 * rand())) // 10 * 10
                    if part <= 0 or qty - part < 200:
                        break
                    qty -= part
                    splits.append((si, t_split, part, exposure))
                    t_split += 30
        self.completed.append((t, lot.product, len(self.completed), cid, lot.name, qty, exposure, lot.order))
        return spec, qty, splits

    def _bump(self, table: str) -> int:
        # Primary keys follow insertion order: rows already flushed plus rows waiting in the buffer.
        return self.counts[table] + len(self.buffers[table]) + 1

    def _track(self, cid: str, workcenter: str, spec: str, machine_id: str, machine: str, t_in: int, t_out: int,
               q_in: int, q_out: int, order: str, partial: float, runcard: str | None = None) -> None:
        """History rows of one track-in: usually one row, sometimes partial track-outs, rarely noise."""
        rand = self.rng.random
        emit = self.emit
        ts = self.ts
        table = "DW_MES_LOTWIPHISTORY"
        if partial and rand() < partial:
            # Several track-outs for one track-in: same lot, machine, spec and track-in time.
            parts = 2 + int(rand() * 3)
            t_first = t_in + (t_out - t_in) // 3
            left = q_out
            for j in range(parts):
                t_part = t_first + (t_out - t_first) * j // (parts - 1)
                share = left if j == parts - 1 else min(left, int(q_out / parts * (0.7 + 0.6 * rand())))
                left -= share
                emit(table, (self._bump(table), cid, workcenter, spec, machine_id, machine, ts(t_in), ts(t_part),
                             q_in, share, runcard, order))
        else:
            emit(table, (self._bump(table), cid, workcenter, spec, machine_id, machine, ts(t_in), ts(t_out),
                         q_in, q_out, runcard, order))
        noise = rand()
        if noise < 0.002:
            # A move recorded without a machine (the service must skip it).
            emit(table, (self._bump(table), cid, workcenter, spec, None, None, ts(t_in), ts(t_in + 60),
                         q_in, q_in, runcard, order))
        elif noise < 0.003:
            # A track-out whose track-in was never recorded.
            emit(table, (self._bump(table), cid, workcenter, spec, machine_id, machine, None, ts(t_out),
                         None, q_out, runcard, order))

    def _reject(self, cid: str, workcenter: str, spec: str, machine: str, loss: str | None, q_in: int,
                defects: int, t: int, tested: bool) -> int:
        """One reject row; returns the units taken out of the lot.

        DEFECTQTY counts the defective units found. Some are recovered (retest, rework); the rest are
        rejected, and the five reject columns split them by the state the units were in: REJECTQTY,
        STANDBYQTY, QTYTOPROCESS, INPROCESSQTY, PROCESSEDQTY (the service adds them up as the reject
        total). At test the failures are processed units; elsewhere mostly plain rejects. Columns that
        do not apply are 0 or sometimes NULL, which readers must count as 0.
        """
        rand = self.rng.random
        recovered = int(defects * 0.25 * rand()) if rand() < 0.3 else 0
        total = defects - recovered
        buckets: list[int | None] = [0, 0, 0, 0, 0]
        side = int(total * 0.3 * rand()) if rand() < 0.25 else 0
        buckets[1 if rand() < 0.5 else 3] = side  # on standby or still in process
        if rand() < 0.05:
            before = int((total - side) * 0.5 * rand())
            buckets[2] = before  # found at incoming inspection, before processing
            side += before
        buckets[4 if tested else 0] = total - side
        for i in range(5):
            if buckets[i] == 0 and rand() < 0.3:
                buckets[i] = None
        self.emit("DW_MES_LOTREJECTHISTORY", (
            self._bump("DW_MES_LOTREJECTHISTORY"), cid, workcenter, spec, machine, loss, *buckets, defects,
            _REJECT_COMMENTS[int(rand() * len(_REJECT_COMMENTS))], self.ts(t),
        ))
        return total

    def _hold(self, cid: str, workcenter: str, t: int, mrb: bool) -> int:
        """A hold after a track-out. Returns the release time, or -1 if the lot is still on hold."""
        rng = self.rng
        rand = rng.random
        t_hold = t + 60 + int(rand() * 1800)
        if t_hold >= self.end:
            return -1
        if mrb:
            reason, ncr, comment = "QC HOLD 品質異常", True, "yield below limit 良率低於管制"
            duration = int((12 + 96 * rand()) * _HOUR)
        else:
            reason, ncr, comment = _HOLD_REASONS[int(rand() * len(_HOLD_REASONS))]
            duration = int(-math.log(1.0 - rand()) * 20 * _HOUR) + 1800
        stuck = rand() < 0.1
        t_release = t_hold + duration
        released = not stuck and t_release < self.end
        ncr_id = f"NCR-{self._day_ym[t_hold // _DAY]}-{int(rand() * 10000):04d}" if ncr else None
        self.emit("DW_MES_HOLDRELEASEHISTORY", (
            self._bump("DW_MES_HOLDRELEASEHISTORY"), cid, workcenter, self.ts(t_hold),
            f"E{10000 + int(rand() * 900):05d}", reason, comment,
            self.ts(t_release) if released else None,
            f"E{10000 + int(rand() * 900):05d}" if released else None,
            ("MRB 放行" if mrb else "確認後放行") if released else None, ncr_id,
        ))
        return t_release if released else -1

    # -- maintenance jobs -----------------------------------------------------------------------------

    def _job_check(self, si: int, machine: str, t_in: int, lot: _Lot, anchor: bool) -> None:
        """Add the lot to open jobs of its machine whose window covers its track-in; maybe open a job."""
        open_jobs = self.jobs.get(machine)
        if open_jobs:
            for job in open_jobs:
                if job[2] <= t_in <= job[3] and len(job[4]) < 30 and job[4][-1] != lot.cid:
                    job[4].append(lot.cid)
                    job[5].append(lot.name)
        if anchor:
            rand = self.rng.random
            self.job_count += 1
            t_job = t_in + int(rand() * 4 * _HOUR)
            # Lots tracked in from 8 h before to 2 h after the job's start count as "on the machine then".
            job = [self.job_count, t_job, t_job - 8 * _HOUR, t_job + 2 * _HOUR, [lot.cid], [lot.name], machine]
            self.jobs.setdefault(machine, []).append(job)

    def _close_jobs(self, now: int | None) -> None:
        """Write jobs whose window closed before `now` (every later lot starts after it); all if None."""
        rand = self.rng.random
        for machine, open_jobs in self.jobs.items():
            keep = []
            for job in open_jobs:
                if now is not None and job[3] >= now:
                    keep.append(job)
                    continue
                jobno, t_job, _, _, ids, names, _ = job
                model, symptoms, causes, repairs = _JOB_MODELS[int(rand() * len(_JOB_MODELS))]
                t_done = t_job + int((1 + 7 * rand()) * _HOUR)
                done = t_done < self.end
                self.emit("DW_MES_JOB", (
                    f"JOB{self._day_ym[t_job // _DAY]}{jobno:06d}", machine, model, "COMPLETE" if done else "OPEN",
                    self.ts(t_job), self.ts(t_done) if done else None, symptoms[int(rand() * len(symptoms))],
                    causes[int(rand() * len(causes))] if done else None,
                    repairs[int(rand() * len(repairs))] if done else None, ",".join(ids), ",".join(names),
                ))
            open_jobs[:] = keep

    # -- merges: finished lots --------------------------------------------------------------------------

    def _finished_lots(self) -> None:
        rng = self.rng
        rand = rng.random
        completed = self.completed
        self.completed = []
        assembly = self._next_id
        wanted = max(1, self.lots - assembly)
        mean_size = min(max(len(completed) / wanted, 1.5), 8.0)
        # Lots of one product that finished test close together are combined, oldest first.
        completed.sort(key=lambda c: (c[1], c[0], c[2]))
        groups: list[tuple[int, int, list[Any]]] = []
        i = 0
        while i < len(completed):
            size = max(1, round(mean_size * (0.4 + 1.2 * rand())))
            first = completed[i]
            members = [first]
            i += 1
            while len(members) < size and i < len(completed):
                nxt = completed[i]
                if nxt[1] != first[1] or nxt[0] - first[0] > 3 * _DAY:
                    break
                members.append(nxt)
                i += 1
            t_combine = members[-1][0] + int((1 + 9 * rand()) * _HOUR)
            if t_combine < self.end:
                groups.append((t_combine, len(groups), members))
        groups.sort(key=lambda g: (g[0], g[1]))
        del completed
        step = TMTT_STEP
        si = len(STEPS)
        spec = step.specs[0]
        for n, (t_combine, _, members) in enumerate(groups):
            product = members[0][1]
            cid = self.new_id()
            ymd = self._day_ymd[t_combine // _DAY]
            seq = self.finished_seq.get(ymd, 0) + 1
            self.finished_seq[ymd] = seq
            name = f"GF{ymd}{seq:04d}"
            serial = f"SN{ymd}{seq:04d}"
            qty = 0
            for _, _, _, source_cid, source_name, source_qty, _, _ in members:
                qty += source_qty
                self.emit("DW_MES_PJ_COMBINEDASSYLOTS", (
                    self._bump("DW_MES_PJ_COMBINEDASSYLOTS"), source_cid, source_name, cid, serial, source_qty,
                    self.ts(t_combine),
                ))
            exposed = sum(1 for m in members if m[6]) / len(members)
            order = members[0][7]
            lot = _Lot(cid, name, product, order, "", "", 0, 0, [0], None, cid)
            t_in = t_combine + int(-math.log(1.0 - rand()) * 4 * _HOUR) + 300
            q_end = qty
            if t_in < self.end:
                k = int(rand() * step.machines)
                machine, machine_id = self.machines[si][k], self.machine_ids[si][k]
                t_out = t_in + int(step.hours * _HOUR * (0.6 + 0.8 * rand()))
                for part, code, period, per_unit, slots in self.materials[product][si]:
                    self.emit("DW_MES_LOTMATERIALSHISTORY", (
                        self._bump("DW_MES_LOTMATERIALSHISTORY"), cid, part,
                        f"{code}-{t_in // period * slots + k % slots:04d}",
                        round(qty * per_unit, 3), step.workcenter, spec, machine, self.ts(t_in + 60),
                    ))
                if t_out >= self.end:
                    self.emit("DW_MES_LOTWIPHISTORY", (
                        self._bump("DW_MES_LOTWIPHISTORY"), cid, step.workcenter, spec, machine_id, machine,
                        self.ts(t_in), None, qty, None, serial, order,
                    ))
                else:
                    defects = 0
                    if rand() < 0.25 + 0.6 * exposed:
                        defects = 1 + int(qty * (0.0005 + 0.004 * exposed) * rand())
                        loss = LOSS_REASONS["TMTT"][int(rand() * 3)] if rand() > exposed else _SIGNAL_LOSSES[0]
                        q_end -= self._reject(cid, step.workcenter, spec, machine, loss, qty, defects, t_out - 120,
                                              True)
                    self._track(cid, step.workcenter, spec, machine_id, machine, t_in, t_out, qty, q_end, order,
                                step.partial, serial)
                self._job_check(si, machine, t_in, lot, rand() < 0.02)
            self.emit("DW_MES_CONTAINER", (
                cid, name, None, cid, None, order, "PROD", PRODUCTS[product].bop, PRODUCTS[product].name,
                PRODUCTS[product].line, q_end, spec, "FINISHED", self.ts(t_combine),
            ))
            if n % 256 == 0:
                self._close_jobs(t_combine)
                self.bar.update(0.8 + 0.1 * n / max(1, len(groups)), "finished")


def build_demo_warehouse(
    path: str | os.PathLike[str],
    lots: int,
    seed: int = 1,
    progress: bool = True,
    start_date: date = date(2026, 1, 5),
    days: int = 150,
) -> dict[str, int]:
    """Build the SQLite file at path (replace an existing file atomically: write to path + '.tmp' then os.replace).

    `lots` is the number of containers to aim for (assembly lots, split children and finished lots;
    the result is within a few percent). Return row counts per table.
    """
    if lots < 1:
        raise ValueError("lots must be at least 1")
    if days < 1:
        raise ValueError("days must be at least 1")
    target = Path(path)
    tmp = Path(f"{target}.tmp")
    tmp.unlink(missing_ok=True)
    bar = _Progress(progress)
    tables, indexes = schema_statements()
    # isolation_level=None: the module must not open transactions behind our back; one explicit BEGIN.
    conn = sqlite3.connect(tmp, isolation_level=None)
    try:
        # The file is scratch until os.replace: no journal, no fsync; a crash just leaves a .tmp behind.
        conn.execute("PRAGMA journal_mode=OFF")
        conn.execute("PRAGMA synchronous=OFF")
        # 32 MB of page cache: a bigger cache bought no speed here, only resident memory.
        conn.execute("PRAGMA cache_size=-32768")
        conn.execute("BEGIN")
        for statement in tables:
            conn.execute(statement)
        bar.update(0.0, "lots", force=True)
        counts = _Generator(conn, lots, seed, start_date, days, bar).run()
        # Indexes after the load: one sort per index instead of a b-tree update per row.
        for n, statement in enumerate(indexes):
            bar.update(0.9 + 0.1 * n / len(indexes), "indexes")
            conn.execute(statement)
        conn.execute("COMMIT")
        conn.close()
    except BaseException:
        conn.close()
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, target)
    bar.done()
    return counts

