"""Generated demo warehouses shared across test modules, built once per test session.

Import the fixtures into a test module (`from warehouse_fixtures import demo_warehouse_60k`)
or into a conftest. The build is memoised per session directory as well, so a fixture imported
into several modules (pytest then holds one definition per module) still builds once.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path

import pytest

from sanic_trace.demo.generator import build_demo_warehouse

# The generator lands within a few percent of the lots asked for; 61,500 gives > 60,000 containers.
LOTS_60K = 61_500
MIN_CONTAINERS_60K = 60_000

_built: dict[tuple[str, int, int], Path] = {}
_lock = threading.Lock()


def build_once(factory: pytest.TempPathFactory, lots: int, seed: int = 1) -> Path:
    """The warehouse of `lots` lots and `seed`, built on first use in this session.

    TRACE_TEST_WAREHOUSE_DIR names a directory where a file built earlier with the same lots and
    seed is reused (and a missing one is built): handy when running the slow tests again and again.
    """
    reuse_dir = os.environ.get("TRACE_TEST_WAREHOUSE_DIR")
    if reuse_dir:
        path = Path(reuse_dir) / f"demo-{lots}-seed{seed}.sqlite"
        with _lock:
            if not path.exists():
                path.parent.mkdir(parents=True, exist_ok=True)
                build_demo_warehouse(path, lots, seed=seed, progress=False)
        return path
    key = (str(factory.getbasetemp()), lots, seed)
    with _lock:
        if key not in _built:
            path = factory.mktemp(f"warehouse-{lots}") / f"demo-{lots}-seed{seed}.sqlite"
            build_demo_warehouse(path, lots, seed=seed, progress=False)
            _built[key] = path
        return _built[key]


def container_ids(path: Path) -> list[str]:
    """Every container id of a warehouse, sorted."""
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        return [row[0] for row in db.execute("SELECT CONTAINERID FROM DW_MES_CONTAINER ORDER BY CONTAINERID")]


@pytest.fixture(scope="session")
def demo_warehouse_60k(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A demo warehouse of at least 60,000 containers (seed 1; about 20 s to build)."""
    path = build_once(tmp_path_factory, LOTS_60K)
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        (count,) = db.execute("SELECT COUNT(*) FROM DW_MES_CONTAINER").fetchone()
    assert count >= MIN_CONTAINERS_60K, f"the {LOTS_60K}-lot warehouse has only {count} containers"
    return path


@pytest.fixture(scope="session")
def demo_container_ids_60k(demo_warehouse_60k: Path) -> list[str]:
    return container_ids(demo_warehouse_60k)


__all__ = ["build_once", "container_ids", "demo_container_ids_60k", "demo_warehouse_60k"]
