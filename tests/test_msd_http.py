"""The MSD analysis over HTTP, against real servers: inline and as a job, the same numbers as the
independent oracle, the same bytes on both paths, and a finished analysis read again without the
warehouse (re-aggregation, detail pages, the CSV).

Servers: an in-process ASGI app for the inline path; two real `sanic-trace serve` processes on one
warehouse and one Redis prefix for the job path — one that serves the request inline (a high
job threshold), one that runs it as a job (threshold 1) — so that their bodies can be compared.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from support.apps import asgi_client
from support.asserts import assert_same
from support.msd_oracle import msd_detail_rows, msd_oracle
from support.msd_warehouses import A1, A2, SMALL_SEEDS, WINDOW, B, C
from support.redis_keys import own_prefix
from support.servers import ServerProcess, running_servers
from support.settings import jobs_env, make_settings
from support.streams import read_stream

MSD = "mid_section_defect"
PARAMS = {**WINDOW, "station": "測試"}


def events_body(seeds: list[str], **params: Any) -> dict[str, Any]:
    return {"profile": MSD, "container_ids": seeds, "seed_container_ids": seeds, "params": {**PARAMS, **params}}


@pytest.fixture(scope="module")
def small(msd_small_warehouse: Path) -> Path:
    return msd_small_warehouse


@pytest.fixture
def client(small: Path, redis_url: str, redis_prefix: str):  # type: ignore[no-untyped-def]
    return asgi_client(make_settings(small, redis_url, redis_prefix))


async def post_events(client: Any, body: dict[str, Any]) -> Any:
    _, response = await client.post("/api/trace/events", json=body)
    return response


# --- the inline path ------------------------------------------------------------------------------


@pytest.mark.parametrize("direction", ["backward", "forward"])
async def test_inline_aggregation_equals_the_oracle(client: Any, small: Path, direction: str) -> None:
    seeds = SMALL_SEEDS if direction == "backward" else [A1, A2, B, C]
    response = await post_events(client, events_body(seeds, direction=direction))
    assert response.status == 200, response.text
    assert response.headers["X-Trace-Path"] == "inline" and len(response.headers["X-Analysis-ID"]) == 32
    body = response.json
    assert list(body) == ["stage", "results", "aggregation"]
    assert_same(body["aggregation"], msd_oracle(small, seeds=seeds, direction=direction, **WINDOW))
    # The records cover the seeds' closure (backward) or tracked set (forward), not only the seeds.
    containers = {r["CONTAINERID"] for result in body["results"].values() for r in result["data"]}
    assert not containers <= set(seeds)


async def test_container_mode_and_seeds_without_a_track_in(client: Any, small: Path) -> None:
    container = {"mode": "container", "resolve_type": "lot_id", "values": ["LA-1"]}
    response = await post_events(client, {**events_body(SMALL_SEEDS), "params": {"station": "測試", **container}})
    assert response.status == 200, response.text
    aggregation = response.json["aggregation"]
    assert_same(aggregation, msd_oracle(small, seeds=SMALL_SEEDS))
    assert aggregation["daily_trend"] == [] and aggregation["container_mode_hint"]["missing_count"] >= 1
    # Only a lot that never reached the station: a valid, empty analysis, not an error.
    response = await post_events(client, {**events_body([SMALL_SEEDS[-1]]), "params": {"station": "測試", **container}})
    assert response.status == 200
    aggregation = response.json["aggregation"]
    assert aggregation["kpi"]["lot_count"] == 0 and aggregation["attribution"] == []
    assert aggregation["container_mode_hint"]["missing_count"] == 1


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (events_body(SMALL_SEEDS, direction="sideways"), "params.direction must be one of backward, forward"),
        (events_body(SMALL_SEEDS, loss_reasons=7), "params.loss_reasons must be a list of strings"),
        ({**events_body(SMALL_SEEDS), "lineage": ["not", "an", "object"]}, "lineage must be a JSON object"),
        (
            {**events_body(SMALL_SEEDS), "params": {"mode": "container", "resolve_type": "lot_id"}},
            "params.values must be a list of strings",
        ),
        ({**events_body(SMALL_SEEDS), "lineage_query_id": "nope"}, "lineage_query_id must be the query_id"),
        ({**events_body(SMALL_SEEDS), "lineage_query_id": "0" * 32 + f".{int(time.time())}"}, "lineage_query_id"),
        (
            {**events_body(SMALL_SEEDS), "lineage_query_id": "0" * 32 + ".1000"},
            "has expired (lineages are kept 300 s): run the lineage stage again for a new query_id",
        ),
        (events_body(SMALL_SEEDS, station="NOWHERE"), "params.station 'NOWHERE' is not a known station group"),
        (
            {**events_body(SMALL_SEEDS), "domains": ["upstream_history", "history"]},
            "domains of a mid_section_defect request must include upstream_history, materials",
        ),
    ],
)
async def test_bad_input_is_a_400_naming_the_field(client: Any, body: dict[str, Any], message: str) -> None:
    response = await post_events(client, body)
    assert response.status == 400, response.text
    error = response.json["error"]
    assert error["code"] == "INVALID_PARAMS" and message in error["message"], error


async def test_a_lineage_named_by_its_query_id_gives_the_same_analysis(
    small: Path, redis_url: str, redis_prefix: str
) -> None:
    # One service per way of naming the genealogy (prefixes of their own): no request can be
    # answered from another's stored analysis.
    def service(suffix: str) -> Any:
        return asgi_client(make_settings(small, redis_url, f"{redis_prefix}{suffix}"))

    named, carrying, deriving = service("a"), service("b"), service("c")
    _, lineage = await named.post("/api/trace/lineage", json={"profile": MSD, "container_ids": SMALL_SEEDS})
    handle = lineage.json["query_id"]
    by_handle = await post_events(named, {**events_body(SMALL_SEEDS), "lineage_query_id": handle})
    carried = await post_events(carrying, {**events_body(SMALL_SEEDS), "lineage": lineage.json})
    derived = await post_events(deriving, events_body(SMALL_SEEDS))
    expected = msd_oracle(small, seeds=SMALL_SEEDS, **WINDOW)
    sources = []
    for response in (by_handle, carried, derived):
        assert response.status == 200, response.text
        assert response.headers["X-Analysis"] == "computed"
        assert_same(response.json["aggregation"], expected)
        sources.append(response.json["aggregation"]["genealogy_source"])
    assert sources == ["request", "request", "derived"]


# --- a finished analysis, read again without the warehouse ------------------------------------


async def test_reaggregation_detail_and_csv_come_from_the_index_alone(
    small: Path, tmp_path: Path, redis_url: str, redis_prefix: str
) -> None:
    # The warehouse is removed once the analysis has run: everything after it reads only Redis.
    warehouse = shutil.copy(small, tmp_path / "gone.sqlite")
    client = asgi_client(make_settings(warehouse, redis_url, redis_prefix))
    response = await post_events(client, events_body(SMALL_SEEDS))
    analysis = response.headers["X-Analysis-ID"]
    Path(warehouse).unlink()
    _, health = await client.get("/health")
    assert health.json["database"]["ok"] is False

    base = f"/api/trace/msd/{analysis}"
    for reasons in (["SHORT"], ["OPEN", "(未知)"], []):
        started = time.perf_counter()
        _, again = await client.get(f"{base}/aggregation", params={"loss_reasons": ",".join(reasons)})
        assert again.status == 200 and time.perf_counter() - started < 1.0
        assert_same(again.json, msd_oracle(small, seeds=SMALL_SEEDS, loss_reasons=reasons, **WINDOW))
        # Only the numerator follows the filter.
        assert again.json["kpi"]["lot_count"] == response.json["aggregation"]["kpi"]["lot_count"]

    rows = msd_detail_rows(small, seeds=SMALL_SEEDS, loss_reasons=["SHORT", "OPEN"], **WINDOW)
    _, page = await client.get(f"{base}/detail", params={"page": 2, "page_size": 2, "loss_reasons": "SHORT,OPEN"})
    assert page.json == {
        "detail": rows[2:4],
        "pagination": {"page": 2, "page_size": 2, "total_count": len(rows), "total_pages": -(-len(rows) // 2)},
    }
    _, past = await client.get(f"{base}/detail", params={"page": 999, "page_size": 500})
    assert past.json["pagination"]["page"] == 1  # clamped to the last page
    _, too_big = await client.get(f"{base}/detail", params={"page_size": 501})
    assert too_big.status == 400 and "page_size must be at most 500" in too_big.json["error"]["message"]

    _, download = await client.get(f"{base}/detail.csv")
    assert download.status == 200 and download.headers["content-type"].startswith("text/csv")
    text = download.body.decode("utf-8")
    assert text.startswith("\ufeff")
    table = list(csv.reader(io.StringIO(text[1:])))
    every = msd_detail_rows(small, seeds=SMALL_SEEDS, **WINDOW)
    assert len(table) == 1 + len(every) and table[0][:3] == ["CONTAINERNAME", "PJ_TYPE", "PRODUCTLINENAME"]
    machines = table[0].index("UPSTREAM_MACHINES")
    assert [row[machines] for row in table[1:]] == [
        ", ".join(f"{m['station']}/{m['machine']}" for m in r["UPSTREAM_MACHINES"]) for r in every
    ]

    _, unknown = await client.get(f"/api/trace/msd/{'0' * 32}/aggregation")
    assert unknown.status == 404 and unknown.json["error"]["code"] == "ANALYSIS_NOT_FOUND"
    _, malformed = await client.get("/api/trace/msd/xyz/aggregation")
    assert malformed.status == 400 and malformed.json["error"]["code"] == "INVALID_JOB_ID"


async def test_lookups_list_the_station_groups_and_the_loss_reasons(client: Any, small: Path) -> None:
    with sqlite3.connect(small) as db:
        groups = db.execute(
            "SELECT WORKCENTER_GROUP, MIN(WORKCENTERSEQUENCE_GROUP) FROM DW_MES_SPEC_WORKCENTER_V "
            "GROUP BY WORKCENTER_GROUP ORDER BY 2, 1"
        ).fetchall()
        reasons = [
            r[0]
            for r in db.execute(
                "SELECT DISTINCT LOSSREASONNAME FROM DW_MES_LOTREJECTHISTORY "
                "WHERE LOSSREASONNAME IS NOT NULL ORDER BY 1"
            )
        ]
    _, stations = await client.get("/api/trace/msd/stations")
    assert stations.json == {"stations": [{"name": g, "label": g, "order": o} for g, o in groups]}
    _, losses = await client.get("/api/trace/msd/loss-reasons")
    assert losses.json["loss_reasons"] == reasons


# --- the job path: the same bytes ---------------------------------------------------------------


@pytest.fixture(scope="module")
def servers(small: Path, redis_url: str) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    with own_prefix(redis_url) as prefix:
        inline = jobs_env(small, redis_url, prefix, TRACE_ASYNC_CID_THRESHOLD=100_000)
        job = jobs_env(small, redis_url, prefix, TRACE_ASYNC_CID_THRESHOLD=1, TRACE_STREAM_BATCH_SIZE=3)
        with running_servers(inline, job) as (one, two):
            yield one, two


@pytest.mark.parametrize("direction", ["backward", "forward"])
def test_the_job_streams_the_aggregation_and_its_result_is_the_inline_body_byte_for_byte(
    servers: tuple[ServerProcess, ServerProcess], small: Path, direction: str
) -> None:
    inline_server, job_server = servers
    seeds = SMALL_SEEDS if direction == "backward" else [A1, A2, B, C]
    body = events_body(seeds, direction=direction)
    identity = {"Accept-Encoding": "identity"}
    inline = httpx.post(f"{inline_server.base_url}/api/trace/events", json=body, headers=identity, timeout=60)
    assert inline.status_code == 200 and inline.headers["x-trace-path"] == "inline"

    submitted = httpx.post(f"{job_server.base_url}/api/trace/events", json=body, timeout=60)
    assert submitted.status_code == 202, submitted.text
    job_id = submitted.json()["job_id"]
    lines = read_stream(job_server.base_url, job_id)
    kinds = [line.obj["type"] for line in lines if line.obj["type"] != "progress"]
    assert kinds[-2:] == ["aggregation", "complete"] and kinds.count("domain_end") == 2
    streamed = next(line for line in lines if line.obj["type"] == "aggregation")
    assert streamed.obj["analysis_id"] == job_id
    assert_same(streamed.obj["data"], msd_oracle(small, seeds=seeds, direction=direction, **WINDOW))

    status = httpx.get(f"{job_server.base_url}/api/trace/job/{job_id}", timeout=30).json()
    assert status["status"] == "finished" and status["result"]["aggregation"] == "ready"
    result = httpx.get(f"{job_server.base_url}/api/trace/job/{job_id}/result", headers=identity, timeout=60)
    assert result.content == inline.content
    assert json.loads(result.content)["aggregation"] == streamed.obj["data"]
    # The job's analysis is kept with it: re-aggregated with another filter, from either server.
    again = httpx.get(
        f"{inline_server.base_url}/api/trace/msd/{job_id}/aggregation", params={"loss_reasons": "SHORT"}, timeout=30
    )
    assert_same(again.json(), msd_oracle(small, seeds=seeds, direction=direction, loss_reasons=["SHORT"], **WINDOW))


async def test_a_repeated_request_with_another_filter_is_answered_from_the_stored_analysis(
    small: Path, tmp_path: Path, redis_url: str, redis_prefix: str
) -> None:
    client = asgi_client(make_settings(small, redis_url, redis_prefix, TRACE_SQL_OVERRIDE_DIR=str(tmp_path)))
    first = await post_events(client, events_body(SMALL_SEEDS))
    assert first.status == 200 and first.headers["X-Analysis"] == "computed"
    # From now on the analysis's own queries fail for real: a repeated request must not run them.
    for name in ("msd_detection_trackins", "msd_detection_defects", "lineage_nodes"):
        (tmp_path / f"{name}.sql").write_text("SELECT * FROM DWH.NO_SUCH_TABLE")
    again = await post_events(client, events_body(SMALL_SEEDS, loss_reasons=["SHORT"]))
    assert again.status == 200, again.text
    assert again.headers["X-Analysis"] == "reused"
    assert again.headers["X-Analysis-ID"] == first.headers["X-Analysis-ID"]
    assert again.json["results"] == first.json["results"]  # the records are read as before
    assert_same(again.json["aggregation"], msd_oracle(small, seeds=SMALL_SEEDS, loss_reasons=["SHORT"], **WINDOW))
    # Another window is another analysis: it runs, and meets the broken queries.
    other = await post_events(client, events_body(SMALL_SEEDS, end_date="2025-03-01"))
    assert other.status == 500 and other.json["error"]["code"] == "EVENTS_FAILED"
