"""The bench's demo warehouse: built once, reused after; the container ids the cases read.

Ids are a seeded shuffle of every container, so each case reads lots from the whole date
range and the smaller cases are prefixes of the larger ones (the same lots, and more).
"""

from __future__ import annotations

import random
import sqlite3
import time
from pathlib import Path
from typing import Any

from sanic_trace.demo.generator import build_demo_warehouse

READ_BLOCK = 8 << 20


def ensure_warehouse(path: Path, lots: int, seed: int, progress: bool) -> dict[str, Any]:
    """Reuse the file at path, or build a `lots`-lot warehouse there; its facts either way."""
    built_s = None
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        build_demo_warehouse(path, lots, seed=seed, progress=progress)
        built_s = time.perf_counter() - started
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        containers = db.execute("SELECT COUNT(*) FROM DW_MES_CONTAINER").fetchone()[0]
        history = db.execute("SELECT COUNT(*) FROM DW_MES_LOTWIPHISTORY").fetchone()[0]
        materials = db.execute("SELECT COUNT(*) FROM DW_MES_LOTMATERIALSHISTORY").fetchone()[0]
    return {
        "path": str(path),
        "reused": built_s is None,
        "build_s": built_s,
        "size_mb": path.stat().st_size / 2**20,
        "containers": containers,
        "history_rows": history,
        "materials_rows": materials,
    }


def container_ids(path: Path, count: int, seed: int) -> list[str]:
    """`count` container ids in a seeded random order; ValueError if the warehouse has fewer."""
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        ids = [row[0] for row in db.execute("SELECT CONTAINERID FROM DW_MES_CONTAINER ORDER BY CONTAINERID")]
    if len(ids) < count:
        raise ValueError(f"{path} has {len(ids):,} containers; the largest case needs {count:,} (use more --lots)")
    random.Random(seed).shuffle(ids)
    return ids[:count]


def warm_page_cache(path: Path) -> float:
    """Read the file once, so that no variant pays for cold disk reads the one before it did not."""
    started = time.perf_counter()
    with open(path, "rb") as handle:
        while handle.read(READ_BLOCK):
            pass
    return time.perf_counter() - started
