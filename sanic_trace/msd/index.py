"""MsdIndex: everything an analysis needs to answer any loss-reason filter without the database.

Built once per analysis by the aggregator (as the domain records stream past), kept with the job
in Redis (`to_bytes` / `from_bytes`: one zlib-compressed blob of numpy arrays and a JSON header)
and read back for re-aggregation, detail pages and the CSV. Its size follows the lots and the
distinct factors — per lot: input, facts, defects per reason, exposures — never the event rows.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import ujson

MACHINE, MATERIAL, WAFER_ROOT = 0, 1, 2
KIND_NAMES = ("machine", "material", "wafer_root")


@dataclass
class MsdIndex:
    # -- the request -------------------------------------------------------------------------
    direction: str
    mode: str  # date_range | container
    stations: list[str]
    genealogy_status: str
    genealogy_source: str
    genealogy_error: str | None
    # -- the population (per lot) ------------------------------------------------------------
    lot_ids: list[str]
    names: list[str]
    input: np.ndarray
    det_machine: np.ndarray
    det_machines: list[str]
    day: np.ndarray
    days: list[str]
    pj_type: np.ndarray
    productline: np.ndarray
    workflow: np.ndarray
    facts: list[str]
    defect_lot: np.ndarray
    defect_reason: np.ndarray
    defect_qty: np.ndarray
    reasons: list[str]
    missing_count: int
    missing_names: list[str]
    ancestor_count: np.ndarray  # int32: |closure| - 1, in both directions
    # -- backward: factors and exposures ------------------------------------------------------
    # factor -> [kind, name, *key fields]: machine [0, name, group, order, id, family],
    # material [1, key, part, lot], wafer root [2, name].
    factors: list[list[Any]] = field(default_factory=list)
    exposure_offsets: np.ndarray = field(default_factory=lambda: np.zeros(1, dtype=np.int64))  # per lot
    exposure_factors: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int32))
    # -- forward: what does not depend on the loss-reason filter, computed once ---------------
    forward: dict[str, Any] = field(default_factory=dict)  # downstream stations, charts, kpi parts
    lot_downstream: np.ndarray = field(default_factory=lambda: np.zeros((0, 3), dtype=np.float64))
    lot_worst: list[str] = field(default_factory=list)
    # The containers whose records the request returned (a repeated request reads the same ones).
    container_ids: list[str] = field(default_factory=list)

    @property
    def size(self) -> int:
        return len(self.lot_ids)

    def lot_factors(self, lot: int) -> np.ndarray:
        return self.exposure_factors[self.exposure_offsets[lot] : self.exposure_offsets[lot + 1]]

    def to_bytes(self) -> bytes:
        """One zlib stream: an 8-byte header length, a JSON header (the plain fields, and dtype and
        shape of each array), then the arrays' raw bytes — compressed piece by piece, so that the
        only full copy made is the compressed one."""
        header: dict[str, Any] = {"arrays": []}
        arrays: list[np.ndarray] = []
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, np.ndarray):
                value = np.ascontiguousarray(value)
                header["arrays"].append([f.name, value.dtype.str, list(value.shape)])
                arrays.append(value)
            else:
                header[f.name] = value
        head = ujson.dumps(header, ensure_ascii=False).encode()
        compressor = zlib.compressobj(1)
        pieces = [compressor.compress(len(head).to_bytes(8, "big")), compressor.compress(head)]
        for array in arrays:
            if array.size:
                pieces.append(compressor.compress(memoryview(array).cast("B")))
        pieces.append(compressor.flush())
        return b"".join(pieces)

    @classmethod
    def from_bytes(cls, blob: bytes) -> MsdIndex:
        raw = zlib.decompress(blob)
        size = int.from_bytes(raw[:8], "big")
        header = ujson.loads(raw[8 : 8 + size])
        offset = 8 + size
        values: dict[str, Any] = {}
        for name, dtype, shape in header.pop("arrays"):
            dt = np.dtype(dtype)
            count = int(np.prod(shape)) if shape else 1
            values[name] = np.frombuffer(raw, dtype=dt, count=count, offset=offset).reshape(shape)
            offset += count * dt.itemsize
        return cls(**header, **values)
