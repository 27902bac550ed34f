"""Shared fixtures: a real Redis (a dedicated database and a key prefix per test) and the warehouses.

Helpers live in tests/support (one module per job); fixtures shared by several test modules live
here and are found by pytest, never imported. Warehouse files are only read by the tests that share
them: a test that writes into a warehouse builds its own.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from support.msd_warehouses import build_small
from support.redis_keys import delete_prefix, new_prefix
from support.settings import redis_url_from_env
from support.standard_warehouse import build_standard_warehouse
from support.warehouses import LOTS_60K, MIN_CONTAINERS_60K, DemoWarehouses, container_ids


# --- Redis ---------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def redis_url() -> str:
    url = redis_url_from_env()
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:  # pragma: no cover - a broken environment, not a test result
        pytest.fail(f"no Redis answers at {url}: {exc} (run the suite with `make test`)")
    return url


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    """A key prefix of this test's own; every key under it, and under prefixes made by appending to it,
    is deleted afterwards."""
    prefix = new_prefix()
    yield prefix
    delete_prefix(redis_url, prefix)


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


# --- warehouses ----------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def standard_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny hand-made warehouse of support.standard_warehouse (every genealogy and event known)."""
    return build_standard_warehouse(tmp_path_factory.mktemp("standard") / "tiny.sqlite")


@pytest.fixture(scope="session")
def msd_small_warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small hand-made MSD warehouse of support.msd_warehouses (every number worked out by hand)."""
    return build_small(tmp_path_factory.mktemp("msd-small") / "small.sqlite")


@pytest.fixture(scope="session")
def demo_warehouses(tmp_path_factory: pytest.TempPathFactory) -> DemoWarehouses:
    """`demo_warehouses(lots, seed=1)`: a generated demo warehouse, built once per session for each size and seed."""
    return DemoWarehouses(tmp_path_factory)


@pytest.fixture(scope="session")
def demo_warehouse_60k(demo_warehouses: DemoWarehouses) -> Path:
    """A demo warehouse of at least 60,000 containers (seed 1; about 20 s to build)."""
    path = demo_warehouses(LOTS_60K)
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        (count,) = db.execute("SELECT COUNT(*) FROM DW_MES_CONTAINER").fetchone()
    assert count >= MIN_CONTAINERS_60K, f"the {LOTS_60K}-lot warehouse has only {count} containers"
    return path


@pytest.fixture(scope="session")
def demo_container_ids_60k(demo_warehouse_60k: Path) -> list[str]:
    with sqlite3.connect(f"file:{demo_warehouse_60k}?mode=ro", uri=True) as db:
        return container_ids(db)
