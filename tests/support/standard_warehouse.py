"""The standard scenario: the tiny hand-made warehouse the trace and API tests share.

Built once per session (conftest's `standard_warehouse`); its containers are the constants below,
so a test names exactly the rows it expects.
"""

from __future__ import annotations

from pathlib import Path

from support.warehouses import WarehouseBuilder, cid

# Split chain of wafer lot WAF-A: R1 → S1 → S2 → S3.  Wafer lot WAF-B: R2 → T1.
R1, S1, S2, S3 = cid(0x101), cid(0x102), cid(0x103), cid(0x104)
R2, T1 = cid(0x201), cid(0x202)
# Finished lots: F1 = merge of S3 and T1 (serial SN-0001); F2 = merge of S2 (SN-0002);
# F3 = merge of R2 (SN-0003) whose container row is missing from DW_MES_CONTAINER.
F1, F2, F3 = cid(0x301), cid(0x302), cid(0x303)
# Cycles: X1 ⇄ X2 (splits) with X3 split from X2; M1 is a merge of M2, and M2 a split of M1.
X1, X2, X3 = cid(0x401), cid(0x402), cid(0x403)
M1, M2 = cid(0x501), cid(0x502)
# A split chain 25 deep: D0 → D1 → ... → D25.
DEEP = [cid(0x600 + k) for k in range(26)]
# A lot tracked at the test station that has no container row.
ORPHAN = cid(0x999)

NAMES = {
    R1: "GA0001-A00-001",
    S1: "GA0001-A00-002",
    S2: "GA0001-A00-003",
    S3: "GA0001-A00-004",
    R2: "GB0002-A00-001",
    T1: "GB0002-A00-002",
    F1: "GD0001-F00-001",
    F2: "GD0002-F00-001",
}
TEST_GROUP = "測試"


def build_standard_warehouse(path: str | Path) -> Path:
    b = WarehouseBuilder(path)
    b.container(R1, NAMES[R1], firstname="WAF-A", work_order="WO-1")
    b.container(S1, NAMES[S1], split_from=R1, firstname="WAF-A", work_order="WO-1")
    b.container(S2, NAMES[S2], split_from=S1, firstname="WAF-A", work_order="WO-1")
    b.container(S3, NAMES[S3], split_from=S2, firstname="WAF-A", work_order="WO-1")
    b.container(R2, NAMES[R2], firstname="WAF-B", work_order="WO-2")
    b.container(T1, NAMES[T1], split_from=R2, firstname="WAF-B", work_order="WO-2")
    b.container(F1, NAMES[F1], work_order="GD-WO-1", object_type="FINISHED")
    b.container(F2, NAMES[F2], work_order="GD-WO-1", object_type="FINISHED")
    b.combine(F1, [S3, T1], "SN-0001")
    b.combine(F2, [S2], "SN-0002")
    b.combine(F3, [R2], "SN-0003")

    b.container(X1, "GX-1", split_from=X2, firstname="WAF-X1")
    b.container(X2, "GX-2", split_from=X1, firstname="WAF-X2")
    b.container(X3, "GX-3", split_from=X2, firstname="WAF-X3")
    b.container(M1, "GM-1", split_from=None, firstname="WAF-M", object_type="FINISHED")
    b.container(M2, "GM-2", split_from=M1, firstname="WAF-M")
    b.combine(M1, [M2], "SN-M")

    for k, container_id in enumerate(DEEP):
        b.container(container_id, f"GDEEP-{k:02d}", split_from=DEEP[k - 1] if k else None, firstname="WAF-D")

    b.spec("SP-DIE", "DICING-01", "切割", 1)
    b.spec("SP-DB", "DB-01", "焊接_DB", 2)
    b.spec("SP-WB", "WB-01", "焊接_WB", 3)
    b.spec("SP-TEST", "TEST-01", TEST_GROUP, 9)
    b.spec("SP-TMTT", "TMTT", TEST_GROUP, 9)

    # S3: dicing; die bond with a partial track-out (09:00 then 10:00 for one track-in) and a
    # rework track-in without a track-out yet; two rows that are not machine events; test.
    b.history(S3, "DICING-01", "SP-DIE", "EQ-DIE-1", "2025-01-02 08:00:00", "2025-01-02 09:00:00")
    b.history(S3, "DB-01", "SP-DB", "EQ-DB-1", "2025-01-03 08:00:00", "2025-01-03 09:00:00", qty_out=50)
    b.history(S3, "DB-01", "SP-DB", "EQ-DB-1", "2025-01-03 08:00:00", "2025-01-03 10:00:00", qty_out=100)
    b.history(S3, "DB-01", "SP-DB", "EQ-DB-1", "2025-01-04 08:00:00", None)
    b.history(S3, "DB-01", "SP-DB", None, "2025-01-04 09:00:00", "2025-01-04 10:00:00")
    b.history(S3, "DB-01", "SP-DB", "EQ-DB-1", None, "2025-01-04 11:00:00")
    b.history(S3, "TEST-01", "SP-TEST", "EQ-T-1", "2025-01-10 10:00:00", "2025-01-10 11:00:00")
    # S2 is tested twice in the range (MSD must list it once).
    b.history(S2, "TEST-01", "SP-TEST", "EQ-T-1", "2025-01-09 10:00:00", "2025-01-09 11:00:00")
    b.history(S2, "TEST-01", "SP-TEST", "EQ-T-1", "2025-01-10 12:00:00", "2025-01-10 13:00:00")
    # T1 at TMTT in the last second of 2025-01-10; R2 at midnight the day after.
    b.history(T1, "WB-01", "SP-WB", "EQ-WB-1", "2025-01-05 08:00:00", "2025-01-05 09:00:00")
    b.history(T1, "TMTT", "SP-TMTT", "EQ-T-2", "2025-01-10 23:59:59", "2025-01-11 01:00:00")
    b.history(R2, "TEST-01", "SP-TEST", "EQ-T-1", "2025-01-11 00:00:00", "2025-01-11 01:00:00")
    b.history(ORPHAN, "TEST-01", "SP-TEST", "EQ-T-1", "2025-01-10 08:00:00", "2025-01-10 09:00:00")
    # A work center outside the spec view.
    b.history(R1, "LAB", "SP-LAB", "EQ-LAB", "2025-01-01 08:00:00", "2025-01-01 09:00:00")

    b.material(S3, "WIRE", "WIRE-LOT-1", 1.5, "2025-01-03 08:30:00")
    b.material(S3, "EPOXY", "EPOXY-LOT-7", 2.0, None)
    b.material(T1, "WIRE", "WIRE-LOT-2", 3.25, "2025-01-05 08:30:00")

    b.reject(S3, "SP-DB", "VOID", "2025-01-03 09:30:00", REJECTQTY=2, STANDBYQTY=None, PROCESSEDQTY=1, DEFECTQTY=4)
    b.reject(S3, "SP-TEST", "OPEN", None, REJECTQTY=None, QTYTOPROCESS=3, INPROCESSQTY=5)
    b.reject(T1, "SP-TMTT", "SHORT", "2025-01-11 00:30:00", REJECTQTY=7, DEFECTQTY=7)
    b.reject(F1, "SP-LAB", "OTHER", "2025-01-21 00:00:00")

    b.hold(S3, "2025-01-05 08:00:00", "2025-01-05 20:30:00")
    b.hold(T1, "2025-01-06 08:00:00", None)
    b.hold(T1, "2025-01-01 08:00:00", "2025-01-01 08:20:00")

    b.job("JOB-1", "EQ-DB-1-NAME", [S3, T1, cid(0xabc)], "2025-01-03 12:00:00")
    b.job("JOB-2", "EQ-DB-1-NAME", [S3], None)
    # An entry that contains S3's id as a substring must not match S3.
    b.job("JOB-3", "EQ-T-1-NAME", [S3 + "ff", R1], "2025-01-02 00:00:00")
    b.job("JOB-4", "EQ-T-1-NAME", [cid(0xdef)], "2025-01-02 00:00:00")
    return b.close()
