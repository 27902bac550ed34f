"""Async trace jobs at scale, end to end through the real server: flat child memory, and equality
with the inline path on a 25,000-id request (records of stream and pages; /result byte for byte).

Needs the shared warehouse of at least 60,000 containers (conftest.py: demo_warehouse_60k).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from support.redis_keys import own_prefix
from support.servers import ServerProcess, running_server
from support.settings import jobs_env
from support.streams import check_stream, read_stream
from support.trace_jobs import events_body, submit, wait_job

CHUNK = 3000
PAGE_MAX = 10_000  # not a multiple of CHUNK: pages start and end inside chunks
IN_BATCH = 200
FETCH = 5000
# Not `jobs`: its query matches ids inside a comma-separated column with INSTR, ~1.4 ms per id on the
# demo warehouse (34 s for 25,000 ids, inline or not); test_jobs_api_e2e.py covers it on 600 ids.
QUERY_DOMAINS = ["history", "materials", "rejects", "holds"]


@pytest.fixture(scope="module")
def ids(demo_container_ids_60k: list[str]) -> list[str]:
    return demo_container_ids_60k


def _env(warehouse: Path, redis_url: str, prefix: str, **settings: Any) -> dict[str, str]:
    return jobs_env(
        warehouse,
        redis_url,
        prefix,
        TRACE_STREAM_BATCH_SIZE=CHUNK,
        DB_IN_BATCH_SIZE=IN_BATCH,
        DB_FETCHMANY_SIZE=FETCH,
        TRACE_RESULT_PAGE_MAX_LIMIT=PAGE_MAX,
        TRACE_EVENTS_CID_LIMIT=100_000,
        TRACE_JOB_TIMEOUT_SECONDS=600,
        **settings,
    )


@pytest.fixture(scope="module")
def jobs_server(demo_warehouse_60k: Path, redis_url: str) -> Iterator[ServerProcess]:
    with own_prefix(redis_url) as prefix:
        env = _env(demo_warehouse_60k, redis_url, prefix, TRACE_ASYNC_CID_THRESHOLD=5000, TRACE_WORKER_COUNT=2)
        with running_server(env) as server:
            yield server


@pytest.fixture(scope="module")
def inline_server(demo_warehouse_60k: Path, redis_url: str) -> Iterator[ServerProcess]:
    with own_prefix(redis_url) as prefix:
        env = _env(demo_warehouse_60k, redis_url, prefix, TRACE_ASYNC_CID_THRESHOLD=50_000)
        with running_server(env) as server:
            yield server


def test_child_peak_rss_is_flat_from_10000_to_60000_ids(jobs_server: ServerProcess, ids: list[str]) -> None:
    domains = ["history", "materials"]
    # Both run at once (two workers); each child's RSS is its own process tree's.
    large = submit(jobs_server, ids[:60_000], domains)
    small = submit(jobs_server, ids[-10_000:], domains)
    small_status = wait_job(jobs_server, small, "finished", 120)
    large_status = wait_job(jobs_server, large, "finished", 180)
    small_records = small_status["result"]["total_records"]
    large_records = large_status["result"]["total_records"]
    assert large_records > 5 * small_records > 0
    small_rss, large_rss = small_status["peak_rss_mb"], large_status["peak_rss_mb"]
    assert small_rss > 0 and large_rss > 0
    spread = abs(large_rss - small_rss) / min(small_rss, large_rss)
    print(
        f"peak RSS: 10,000 ids {small_rss} MB ({small_records:,} records), "
        f"60,000 ids {large_rss} MB ({large_records:,} records): {spread:.0%} apart"
    )
    assert spread < 0.30, (small_rss, large_rss)


def _pages(server: ServerProcess, job_id: str, domain: str, total: int) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    with httpx.Client(base_url=server.base_url, timeout=60) as client:
        offset = 0
        while True:
            response = client.get(
                f"/api/trace/job/{job_id}/result", params={"domain": domain, "offset": offset, "limit": PAGE_MAX}
            )
            assert response.status_code == 200, response.text[:300]
            page = response.json()
            assert page["total"] == total and page["offset"] == offset and page["limit"] == PAGE_MAX
            if not page["data"]:
                break
            assert len(page["data"]) == min(PAGE_MAX, total - offset)
            records.extend(page["data"])
            offset += len(page["data"])
    return records


def test_the_job_path_gives_exactly_the_inline_records_for_25000_ids(
    jobs_server: ServerProcess, inline_server: ServerProcess, ids: list[str]
) -> None:
    request_ids = ids[::2][:25_000]
    assert len(request_ids) == 25_000
    job_id = submit(jobs_server, request_ids, QUERY_DOMAINS)  # runs while the inline request is served

    with httpx.Client(base_url=inline_server.base_url, timeout=300) as client:
        inline = client.post("/api/trace/events", json=events_body(request_ids, QUERY_DOMAINS))
    assert inline.status_code == 200, inline.text[:300]
    assert inline.headers["x-trace-path"] == "inline"
    inline_body = inline.content
    expected = json.loads(inline_body)["results"]
    assert list(expected) == QUERY_DOMAINS
    assert sum(d["count"] for d in expected.values()) > 200_000

    check = check_stream(read_stream(jobs_server.base_url, job_id, deadline=180), CHUNK)
    status = wait_job(jobs_server, job_id, "finished", 60)
    assert check.last["total_records"] == status["result"]["total_records"]
    for domain in QUERY_DOMAINS:
        assert check.records[domain] == expected[domain]["data"], f"stream records of {domain} differ"
        assert status["result"]["domains"][domain]["records"] == expected[domain]["count"]
        paged = _pages(jobs_server, job_id, domain, expected[domain]["count"])
        assert paged == expected[domain]["data"], f"paged records of {domain} differ"
    assert len(check.batches["history"]) > 20

    with httpx.Client(base_url=jobs_server.base_url, timeout=120) as client:
        whole = client.get(f"/api/trace/job/{job_id}/result")
    assert whole.status_code == 200 and whole.headers["content-type"].startswith("application/json")
    assert whole.content == inline_body, "the job's /result is not the inline body byte for byte"
