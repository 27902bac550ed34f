"""Where a trace job's result lives in Redis, and the arithmetic of reading it.

    {p}:job:{ID}:index                 hash, written after each chunk is stored:
        meta                JSON {"profile","domains","cid_count","chunk_size"}
        <domain>:chunks     chunks stored so far
        <domain>:records    records stored so far
        <domain>:done       "1" once the domain is complete
        total_records       records stored so far, all domains
    {p}:job:{ID}:chunk:<domain>:<n>    JSON array of at most chunk_size records (n from 0)

Every chunk of a domain but its last holds exactly chunk_size records, so record i of a
domain is in chunk i // chunk_size: a page read touches only the chunks its window covers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import ujson

from sanic_trace.trace.params import MSD

INDEX_SUFFIX = "index"
# The index field an MSD job sets once its aggregation is stored (msd/storage.py READY_FIELD).
AGGREGATION_READY_FIELD = "aggregation"



def chunk_suffix(domain: str, n: int) -> str:
    return f"chunk:{domain}:{n}"


@dataclass(frozen=True)
class DomainProgress:
    chunks: int
    records: int
    done: bool


@dataclass(frozen=True)
class ResultIndex:
    profile: str
    domains: list[str]
    cid_count: int
    chunk_size: int
    per_domain: dict[str, DomainProgress]
    total_records: int
    # mid_section_defect: the job stored its aggregation (after its last domain).
    aggregation_ready: bool = False

    @classmethod
    def parse(cls, raw: dict[bytes, bytes] | dict[str, str]) -> ResultIndex | None:
        """None while the job has not written its meta yet (queued, or just started)."""
        fields = {(k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
                  for k, v in raw.items()}
        if "meta" not in fields:
            return None
        meta = ujson.loads(fields["meta"])
        per_domain = {
            d: DomainProgress(
                chunks=int(fields.get(f"{d}:chunks", 0)),
                records=int(fields.get(f"{d}:records", 0)),
                done=fields.get(f"{d}:done") == "1",
            )
            for d in meta["domains"]
        }
        return cls(
            profile=meta["profile"],
            domains=list(meta["domains"]),
            cid_count=int(meta["cid_count"]),
            chunk_size=int(meta["chunk_size"]),
            per_domain=per_domain,
            total_records=int(fields.get("total_records", 0)),
            aggregation_ready=fields.get(AGGREGATION_READY_FIELD) == "1",
        )

    def summary(self) -> dict[str, Any]:
        summary: dict[str, Any] = {
            "domains": {
                d: {"records": p.records, "chunks": p.chunks, "done": p.done} for d, p in self.per_domain.items()
            },
            "total_records": self.total_records,
        }
        if self.profile == MSD:
            # An MSD job's analysis: "pending" until its aggregation is stored, then "ready".
            summary["aggregation"] = "ready" if self.aggregation_ready else "pending"
        return summary


def chunks_for_window(offset: int, limit: int, chunk_size: int, total: int) -> range:
    """Chunk numbers covering records [offset, offset + limit) of a domain holding `total` records."""
    if limit <= 0 or offset >= total:
        return range(0)
    last_record = min(offset + limit, total) - 1
    return range(offset // chunk_size, last_record // chunk_size + 1)
