"""The HTTP contract of /api/trace/seed-resolve, /lineage and /events on the inline path.

Exact bodies over the hand-built warehouse of support.standard_warehouse (every genealogy and event known),
real Redis, and every error code these endpoints can answer with, each provoked for real:
a missing warehouse file, queries made genuinely slow or broken through TRACE_SQL_OVERRIDE_DIR.
"""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path
from typing import Any

import pytest

from support.apps import asgi_client, live_server
from support.asserts import assert_error
from support.expected import DOMAINS5
from support.faults import failing_variant, packaged_sql, slow_variant, write_override
from support.settings import make_settings
from support.standard_warehouse import (
    DEEP,
    F1,
    F2,
    M1,
    M2,
    NAMES,
    ORPHAN,
    R1,
    R2,
    S1,
    S2,
    S3,
    T1,
    X1,
    X2,
    X3,
)

CACHE_KEY = re.compile(r"^[0-9a-f]{32}$")
# Every container of the tiny warehouse with events of some domain.
IDS_WITH_EVENTS = sorted([S3, T1, R1, R2, S2, F1, ORPHAN])


@pytest.fixture
def client(standard_warehouse: Path, redis_url: str, redis_prefix: str):  # type: ignore[no-untyped-def]
    return asgi_client(make_settings(standard_warehouse, redis_url, redis_prefix))


async def post(client: Any, path: str, body: Any = None, **kwargs: Any) -> Any:
    if body is not None:
        kwargs["json"] = body
    _, response = await client.post(f"/api/trace/{path}", **kwargs)
    return response


def seed(container_id: str, name: str | None = "default") -> dict[str, Any]:
    name = NAMES.get(container_id) if name == "default" else name
    return {"container_id": container_id, "container_name": name, "lot_id": name}


# --- seed-resolve ----------------------------------------------------------------------------------
SEED_CASES = [
    (
        "query_tool",
        {"resolve_type": "lot_id", "values": [f" {NAMES[S3]} ", "NOPE", NAMES[S3], ""]},
        [seed(S3)],
        ["NOPE"],
    ),
    (
        "query_tool",
        {"resolve_type": "work_order", "values": ["WO-1", "WO-9"]},
        [seed(c) for c in (R1, S1, S2, S3)],
        ["WO-9"],
    ),
    (
        "query_tool",
        {"resolve_type": "wafer_lot", "values": ["WAF-B", "WAF-A", "WAF-Z"]},
        [seed(c) for c in (R2, T1, R1, S1, S2, S3)],
        ["WAF-Z"],
    ),
    (
        "query_tool_reverse",
        {"resolve_type": "serial_number", "values": ["SN-0001", "SN-0003", "SN-X"]},
        [seed(S3), seed(T1), seed(R2)],  # a serial's source lots (F3 itself has no container row)
        ["SN-X"],
    ),
    (
        "query_tool_reverse",
        {"resolve_type": "gd_work_order", "values": ["GD-WO-1", "WO-1"]},
        [seed(F1), seed(F2)],
        ["WO-1"],
    ),
    ("query_tool_reverse", {"resolve_type": "gd_lot_id", "values": [NAMES[F1], NAMES[R1]]}, [seed(F1)], [NAMES[R1]]),
    (
        "mid_section_defect",
        {"start_date": "2025-01-09", "end_date": "2025-01-10"},
        [seed(c) if c != ORPHAN else seed(ORPHAN, None) for c in sorted([S2, S3, T1, ORPHAN])],
        [],
    ),
    (
        "mid_section_defect",
        {"mode": "date_range", "date_range": ["2025-01-09", "2025-01-11"], "station": "TMTT"},
        [seed(T1)],
        [],
    ),
    (
        "mid_section_defect",
        {"mode": "container", "resolve_type": "lot_id", "values": [NAMES[T1], "NOPE"]},
        [seed(T1)],
        ["NOPE"],
    ),
    (
        "mid_section_defect",
        {"mode": "container", "resolve_type": "wafer_lot", "values": ["WAF-B"]},
        [seed(R2), seed(T1)],
        [],
    ),
]


@pytest.mark.parametrize(("profile", "params", "seeds", "not_found"), SEED_CASES)
async def test_seed_resolve_answers_the_exact_shape(
    client: Any, profile: str, params: dict[str, Any], seeds: list[dict[str, Any]], not_found: list[str]
) -> None:
    response = await post(client, "seed-resolve", {"profile": profile, "params": params})
    assert response.status == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.headers["X-Cache"] == "miss"
    assert response.headers["X-Request-ID"]
    body = response.json
    assert list(body) == ["stage", "seeds", "seed_count", "not_found", "cache_key"]
    assert body["stage"] == "seed-resolve"
    assert body["seeds"] == seeds
    assert body["seed_count"] == len(seeds)
    assert body["not_found"] == not_found
    assert CACHE_KEY.match(body["cache_key"])


# --- lineage --------------------------------------------------------------------------------------
BACKWARD_F1 = {
    "stage": "lineage",
    "roots": [F1],
    "ancestors": {F1: sorted([S3, T1, S2, S1, R1, R2])},
    "parent_map": {F1: sorted([S3, T1]), S1: [R1], S2: [S1], S3: [S2], T1: [R2]},
    "merge_edges": {F1: sorted([S3, T1])},
    "seed_roots": {F1: "WAF-A"},  # R1 (WAF-A) and R2 (WAF-B) are both roots: the smallest name
    "names": {c: NAMES[c] for c in sorted([F1, S3, T1, S2, S1, R1, R2])},
    "total_nodes": 7,
    "total_ancestor_count": 6,
}
FORWARD_R1 = {
    "stage": "lineage",
    "roots": [R1],
    "children_map": {R1: [S1], S1: [S2], S2: sorted([S3, F2]), S3: [F1]},
    "leaf_serials": {R1: ["SN-0001", "SN-0002"]},
    "names": {c: NAMES[c] for c in sorted([R1, S1, S2, S3, F1, F2])},
    "total_nodes": 6,
}


@pytest.mark.parametrize(
    ("profile", "params", "ids", "expected"),
    [
        ("query_tool_reverse", None, [F1], BACKWARD_F1),
        # query_tool is always forward, whatever params.direction says.
        ("query_tool", {"direction": "backward"}, [f" {R1} ", R1], FORWARD_R1),
        ("mid_section_defect", {}, [F1], BACKWARD_F1),
        ("mid_section_defect", {"direction": "forward"}, [R1], FORWARD_R1),
    ],
)
async def test_lineage_answers_the_exact_shape(
    client: Any, profile: str, params: dict[str, Any] | None, ids: list[str], expected: dict[str, Any]
) -> None:
    body_in: dict[str, Any] = {"profile": profile, "container_ids": ids}
    if params is not None:
        body_in["params"] = params
    response = await post(client, "lineage", body_in)
    assert response.status == 200, response.text
    assert response.headers["X-Cache"] == "miss"
    body = response.json
    cache_key = body.pop("cache_key")
    assert CACHE_KEY.match(cache_key)
    # The handle an events request names this lineage by: the cache key and when it was issued.
    digest, issued = body.pop("query_id").split(".")
    assert digest == cache_key and abs(int(issued) - time.time()) < 60
    assert list(body) == list(expected)
    assert body == expected


async def test_lineage_survives_cycles_and_stops_at_depth_20(client: Any) -> None:
    response = await post(client, "lineage", {"profile": "query_tool_reverse", "container_ids": [X3, M1, DEEP[25]]})
    assert response.status == 200
    body = response.json
    assert body["ancestors"] == {X3: sorted([X1, X2]), M1: [M2], DEEP[25]: sorted(DEEP[5:25])}
    assert body["parent_map"] == {
        X1: [X2],
        X2: [X1],
        X3: [X2],
        M1: [M2],
        M2: [M1],
        **{DEEP[k]: [DEEP[k - 1]] for k in range(6, 26)},
    }
    assert body["merge_edges"] == {M1: [M2]}
    # X3's family has no root (a cycle): the smallest wafer lot of the family; DEEP[5] is the depth cap.
    assert body["seed_roots"] == {X3: "WAF-X1", M1: "WAF-M", DEEP[25]: "WAF-D"}
    assert (body["total_nodes"], body["total_ancestor_count"]) == (3 + 2 + 21, 2 + 1 + 20)
    forward = await post(client, "lineage", {"profile": "query_tool", "container_ids": [DEEP[0]]})
    assert forward.json["children_map"] == {DEEP[k]: [DEEP[k + 1]] for k in range(20)}
    assert forward.json["total_nodes"] == 21


async def test_lineage_of_an_unknown_id_is_empty_not_an_error(client: Any) -> None:
    unknown = "00000000deadbeef"
    response = await post(client, "lineage", {"profile": "query_tool_reverse", "container_ids": [unknown]})
    assert response.status == 200
    body = response.json
    assert body["ancestors"] == {unknown: []} and body["seed_roots"] == {unknown: None}
    assert (body["names"], body["total_nodes"], body["total_ancestor_count"]) == ({}, 1, 0)


# --- events ---------------------------------------------------------------------------------------
T1_HOLDS = [
    {
        "CONTAINERID": T1,
        "WORKCENTERNAME": "DB-01",
        "HOLD_STATUS": "RELEASED",
        "HOLDTXNDATE": "2025-01-01T08:00:00",
        "HOLDEMPNAME": None,
        "HOLDREASONNAME": "QC",
        "HOLDCOMMENTS": None,
        "RELEASETXNDATE": "2025-01-01T08:20:00",
        "RELEASEEMPNAME": None,
        "RELEASECOMMENTS": None,
        "NCRID": None,
        "HOLDHISTORYID": 3,
        "HOLD_HOURS": 0.33,
    },
    {
        "CONTAINERID": T1,
        "WORKCENTERNAME": "DB-01",
        "HOLD_STATUS": "HOLD",
        "HOLDTXNDATE": "2025-01-06T08:00:00",
        "HOLDEMPNAME": None,
        "HOLDREASONNAME": "QC",
        "HOLDCOMMENTS": None,
        "RELEASETXNDATE": None,
        "RELEASEEMPNAME": None,
        "RELEASECOMMENTS": None,
        "NCRID": None,
        "HOLDHISTORYID": 2,
        "HOLD_HOURS": None,
    },
]


async def test_events_body_is_the_exact_shape(client: Any) -> None:
    response = await post(client, "events", {"profile": "query_tool", "container_ids": [T1], "domains": ["holds"]})
    assert response.status == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.headers["X-Trace-Path"] == "inline"
    assert response.headers["X-Request-ID"]
    assert response.json == {
        "stage": "events",
        "results": {"holds": {"data": T1_HOLDS, "count": 2}},
        "aggregation": None,
    }
    assert list(response.json) == ["stage", "results", "aggregation"]


@pytest.mark.parametrize(
    ("profile", "params", "domains"),
    [
        ("query_tool", None, DOMAINS5),
        ("query_tool_reverse", {}, DOMAINS5),
        ("mid_section_defect", None, ["upstream_history", "materials"]),
        ("mid_section_defect", {"direction": "forward"}, ["upstream_history", "downstream_rejects"]),
    ],
)
async def test_events_default_domains_per_profile(
    client: Any, profile: str, params: dict[str, Any] | None, domains: list[str]
) -> None:
    body_in: dict[str, Any] = {"profile": profile, "container_ids": IDS_WITH_EVENTS}
    if params is not None:
        body_in["params"] = params
    response = await post(client, "events", body_in)
    assert response.status == 200, response.text
    results = response.json["results"]
    assert list(results) == domains
    for domain, result in results.items():
        assert set(result) == {"data", "count"}
        assert result["count"] == len(result["data"]) > 0, domain
        if profile != "mid_section_defect":
            assert all(record["CONTAINERID"] in IDS_WITH_EVENTS for record in result["data"])
    if profile == "mid_section_defect":
        # The MSD profile's records also cover the seeds' genealogy, and its answer is the
        # aggregation (checked number for number in tests/test_msd_http.py).
        aggregation = response.json["aggregation"]
        assert aggregation["direction"] == (params or {}).get("direction", "backward")
        assert aggregation["mode"] == "container"  # no date range: the seeds' own latest track-ins
    else:
        assert response.json["aggregation"] is None


async def test_events_named_domains_keep_request_order_and_drop_duplicates(client: Any) -> None:
    response = await post(
        client,
        "events",
        {"profile": "query_tool", "container_ids": [S3, S3, f" {T1}", ""], "domains": ["jobs", "rejects", "jobs"]},
    )
    assert response.status == 200
    results = response.json["results"]
    assert list(results) == ["jobs", "rejects"]
    assert [(r["CONTAINERID"], r["JOBID"]) for r in results["jobs"]["data"]] == [
        (S3, "JOB-1"),
        (S3, "JOB-2"),
        (T1, "JOB-1"),
    ]
    assert [r["REJECT_TOTAL_QTY"] for r in results["rejects"]["data"]] == [3, 8, 7]


async def test_events_of_ids_without_records(client: Any) -> None:
    response = await post(
        client, "events", {"profile": "query_tool", "container_ids": ["00000000deadbeef"], "domains": DOMAINS5}
    )
    assert response.status == 200
    assert response.json == {
        "stage": "events",
        "results": {d: {"data": [], "count": 0} for d in DOMAINS5},
        "aggregation": None,
    }


# --- 400 ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["seed-resolve", "lineage", "events"])
@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"", "empty"),
        (b"   ", "empty"),
        (b'{"profile": "query_tool",', "not valid JSON"),
        (b"{'profile': 'query_tool'}", "not valid JSON"),
        (b"[]", "must be a JSON object, not list"),
        (b'"query_tool"', "must be a JSON object, not str"),
        (b"42", "must be a JSON object, not int"),
        (b"null", "must be a JSON object"),
        (b"[" * 100_000, "not valid JSON"),
    ],
)
async def test_a_body_that_is_not_a_json_object(client: Any, path: str, raw: bytes, message: str) -> None:
    response = await post(client, path, content=raw, headers={"content-type": "application/json"})
    assert_error(response, 400, "INVALID_PARAMS", message_has=[message])


@pytest.mark.parametrize("path", ["seed-resolve", "lineage", "events"])
@pytest.mark.parametrize("profile", [None, "bogus", "", ["query_tool"], 1])
async def test_invalid_profile(client: Any, path: str, profile: Any) -> None:
    body: dict[str, Any] = {"params": {"resolve_type": "lot_id", "values": ["x"]}, "container_ids": ["x"]}
    if profile is not None:
        body["profile"] = profile
    response = await post(client, path, body)
    error = assert_error(response, 400, "INVALID_PROFILE")["error"]
    assert error["message"].startswith("profile must be one of query_tool, query_tool_reverse, mid_section_defect")


MSD = "mid_section_defect"


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("seed-resolve", {"profile": "query_tool", "params": []}, "params must be a JSON object"),
        ("seed-resolve", {"profile": "query_tool", "params": "x"}, "params must be a JSON object"),
        ("seed-resolve", {"profile": "query_tool", "params": {"values": ["a"]}}, "params.resolve_type must be one of"),
        (
            "seed-resolve",
            {"profile": "query_tool", "params": {"resolve_type": "serial_number", "values": ["a"]}},
            "params.resolve_type must be one of lot_id, work_order, wafer_lot",
        ),
        (
            "seed-resolve",
            {"profile": "query_tool_reverse", "params": {"resolve_type": "lot_id", "values": ["a"]}},
            "params.resolve_type must be one of serial_number, gd_work_order, gd_lot_id",
        ),
        ("seed-resolve", {"profile": "query_tool", "params": {"resolve_type": "lot_id"}}, "params.values "),
        (
            "seed-resolve",
            {"profile": "query_tool", "params": {"resolve_type": "lot_id", "values": "a"}},
            "params.values must be a list of strings",
        ),
        (
            "seed-resolve",
            {"profile": "query_tool", "params": {"resolve_type": "lot_id", "values": ["a", 3]}},
            "params.values must be a list of strings",
        ),
        (
            "seed-resolve",
            {"profile": "query_tool", "params": {"resolve_type": "lot_id", "values": [" ", ""]}},
            "params.values must contain at least one non-blank value",
        ),
        ("seed-resolve", {"profile": MSD, "params": {"mode": "x"}}, "params.mode must be one of"),
        ("seed-resolve", {"profile": MSD, "params": {"end_date": "2025-01-01"}}, "params.start_date is required"),
        (
            "seed-resolve",
            {"profile": MSD, "params": {"start_date": "2025/01/01", "end_date": "2025-01-02"}},
            "params.start_date must be a date as YYYY-MM-DD",
        ),
        (
            "seed-resolve",
            {"profile": MSD, "params": {"start_date": "2025-01-02", "end_date": "2025-01-01"}},
            "params.end_date must not end before it starts",
        ),
        (
            "seed-resolve",
            {"profile": MSD, "params": {"date_range": ["2025-01-02", "2025-01-01"]}},
            "params.date_range must not end before it starts",
        ),
        (
            "seed-resolve",
            {"profile": MSD, "params": {"start_date": "2025-01-01", "end_date": "2025-02-01"}},
            "params.end_date covers 32 days; at most 31 are allowed",
        ),
        (
            "seed-resolve",
            {"profile": MSD, "params": {"start_date": "2025-01-01", "end_date": "2025-01-02", "loss_reasons": 5}},
            "params.loss_reasons must be a list of strings or one string of comma-separated names",
        ),
        ("lineage", {"profile": "query_tool"}, "container_ids must be a list of strings"),
        ("lineage", {"profile": "query_tool", "container_ids": "abc"}, "container_ids must be a list of strings"),
        ("lineage", {"profile": "query_tool", "container_ids": [1]}, "container_ids must be a list of strings"),
        ("lineage", {"profile": "query_tool", "container_ids": []}, "container_ids must contain at least one"),
        ("lineage", {"profile": "query_tool", "container_ids": [" ", ""]}, "container_ids must contain at least one"),
        ("lineage", {"profile": "query_tool", "container_ids": ["a"], "params": [1]}, "params must be a JSON object"),
        ("events", {"profile": "query_tool", "domains": ["history"]}, "container_ids must be a list of strings"),
        ("events", {"profile": "query_tool", "container_ids": {"a": 1}}, "container_ids must be a list of strings"),
        ("events", {"profile": "query_tool", "container_ids": []}, "container_ids must contain at least one"),
        ("events", {"profile": "query_tool", "container_ids": ["", "  "]}, "container_ids must contain at least one"),
        (
            "events",
            {"profile": "query_tool", "container_ids": ["a"], "domains": []},
            "domains must be a non-empty list",
        ),
        (
            "events",
            {"profile": "query_tool", "container_ids": ["a"], "domains": "history"},
            "domains must be a non-empty list",
        ),
        ("events", {"profile": "query_tool", "container_ids": ["a"], "domains": [1]}, "domains must be a non-empty"),
        (
            "events",
            {"profile": "query_tool", "container_ids": ["a"], "domains": ["history", "bogus", "nope"]},
            "domains has unknown domains: bogus, nope",
        ),
        ("events", {"profile": "query_tool", "container_ids": ["a"], "params": "x"}, "params must be a JSON object"),
        (
            "events",
            {"profile": "query_tool", "container_ids": ["a"], "seed_container_ids": "a"},
            "seed_container_ids must be a list of strings",
        ),
        ("events", {"profile": "query_tool", "container_ids": ["a"], "lineage": [1]}, "lineage must be a JSON object"),
    ],
)
async def test_invalid_fields_are_named(
    standard_warehouse: Path, redis_url: str, redis_prefix: str, path: str, body: dict[str, Any], field: str
) -> None:
    client = asgi_client(make_settings(standard_warehouse, redis_url, redis_prefix, TRACE_MSD_MAX_RANGE_DAYS=31))
    response = await post(client, path, body)
    error = assert_error(response, 400, "INVALID_PARAMS")["error"]
    assert error["message"].startswith(field), error["message"]


@pytest.mark.parametrize("path", ["seed-resolve", "lineage", "events"])
async def test_the_stages_are_post_only(client: Any, path: str) -> None:
    _, response = await client.get(f"/api/trace/{path}")
    assert_error(response, 405, "METHOD_NOT_ALLOWED")
    _, response = await client.post(f"/api/trace/{path}/nope", json={})
    assert_error(response, 404, "NOT_FOUND")


async def test_request_id_is_echoed_when_sane_and_made_up_otherwise(client: Any) -> None:
    response = await post(client, "events", {"profile": "bogus"}, headers={"X-Request-ID": "dash-board.42"})
    assert assert_error(response, 400, "INVALID_PROFILE")["meta"]["request_id"] == "dash-board.42"
    response = await post(client, "events", {"profile": "bogus"}, headers={"X-Request-ID": "bad id\twith spaces"})
    assert re.fullmatch(r"[0-9a-f]{32}", assert_error(response, 400, "INVALID_PROFILE")["meta"]["request_id"])


# --- 413 ------------------------------------------------------------------------------------------
async def test_cid_limit_is_checked_before_any_database_connection(
    tmp_path: Path, redis_url: str, redis_prefix: str
) -> None:
    # No warehouse at all: a request that touched the database would get 503 DB_UNAVAILABLE.
    settings = make_settings(
        tmp_path / "absent.sqlite",
        redis_url,
        redis_prefix,
        TRACE_EVENTS_CID_LIMIT=5,
        TRACE_ASYNC_CID_THRESHOLD=1000,
    )
    client = asgi_client(settings)
    six = [f"{n:016x}" for n in range(6)]
    for profile in ("query_tool", "query_tool_reverse"):
        response = await post(client, "events", {"profile": profile, "container_ids": six, "domains": ["history"]})
        error = assert_error(response, 413, "CID_LIMIT_EXCEEDED", message_has=["6 container ids", "(5)"])["error"]
        assert (error["cid_count"], error["limit"]) == (6, 5)
    # The limit counts normalised ids (5 distinct here), and it is inclusive: this one reaches the database.
    five = [*six[:5], six[0], f" {six[1]} ", ""]
    response = await post(client, "events", {"profile": "query_tool", "container_ids": five, "domains": ["history"]})
    assert_error(response, 503, "DB_UNAVAILABLE")
    # mid_section_defect is never capped (its numbers need every container): it goes to the database too.
    response = await post(
        client, "events", {"profile": MSD, "container_ids": six, "domains": ["upstream_history", "materials"]}
    )
    assert_error(response, 503, "DB_UNAVAILABLE")


@pytest.mark.parametrize("request_id", [None, "client-7"])
async def test_payload_too_large(
    standard_warehouse: Path, redis_url: str, redis_prefix: str, request_id: str | None
) -> None:
    # Sanic's HTTP server enforces REQUEST_MAX_SIZE (the ASGI test client does not): a live server.
    settings = make_settings(standard_warehouse, redis_url, redis_prefix, TRACE_REQUEST_MAX_BYTES=1024)
    headers = {"X-Request-ID": request_id} if request_id else {}
    ids = [f"{n:016x}" for n in range(60)]  # about 1.2 KB of JSON
    async with live_server(settings) as server, server.client() as http:
        for path in ("seed-resolve", "lineage", "events"):
            body = {"profile": "query_tool", "container_ids": ids, "params": {"resolve_type": "lot_id", "values": ids}}
            response = await http.post(f"/api/trace/{path}", json=body, headers=headers)
            envelope = assert_error(response, 413, "PAYLOAD_TOO_LARGE")
            if request_id:
                assert envelope["meta"]["request_id"] == request_id
        # Just under the limit is served.
        response = await http.post(
            "/api/trace/events", json={"profile": "query_tool", "container_ids": ids[:40], "domains": ["holds"]}
        )
        assert response.status_code == 200


# --- 503 ------------------------------------------------------------------------------------------
async def test_missing_warehouse_is_db_unavailable_on_every_stage(
    tmp_path: Path, redis_url: str, redis_prefix: str
) -> None:
    client = asgi_client(make_settings(tmp_path / "absent.sqlite", redis_url, redis_prefix))
    requests = [
        ("seed-resolve", {"profile": "query_tool", "params": {"resolve_type": "lot_id", "values": ["x"]}}),
        ("seed-resolve", {"profile": MSD, "params": {"start_date": "2025-01-01", "end_date": "2025-01-02"}}),
        ("lineage", {"profile": "query_tool", "container_ids": ["x"]}),
        ("lineage", {"profile": "query_tool_reverse", "container_ids": ["x"]}),
        ("events", {"profile": "query_tool", "container_ids": ["x"], "domains": ["history", "jobs"]}),
        ("events", {"profile": MSD, "container_ids": ["x"]}),
    ]
    for path, body in requests:
        response = await post(client, path, body)
        assert_error(response, 503, "DB_UNAVAILABLE", message_has=["does not exist"])
        assert response.headers["Retry-After"] == "10"


# --- 504 ------------------------------------------------------------------------------------------
TIMEOUT_CASES = [
    (
        "seeds_lot_id",
        "seed-resolve",
        {"profile": "query_tool", "params": {"resolve_type": "lot_id", "values": [NAMES[S3]]}},
        "SEED_RESOLVE_TIMEOUT",
    ),  # noqa: E501
    (
        "seeds_serial_number",
        "seed-resolve",
        {"profile": "query_tool_reverse", "params": {"resolve_type": "serial_number", "values": ["SN-0001"]}},
        "SEED_RESOLVE_TIMEOUT",
    ),  # noqa: E501
    ("lineage_nodes", "lineage", {"profile": "query_tool_reverse", "container_ids": [S3]}, "LINEAGE_TIMEOUT"),
    ("lineage_children", "lineage", {"profile": "query_tool", "container_ids": [S3]}, "LINEAGE_TIMEOUT"),
    (
        "events_history",
        "events",
        {"profile": "query_tool", "container_ids": [S3], "domains": ["history", "holds"]},
        "EVENTS_TIMEOUT",
    ),  # noqa: E501
]


@pytest.mark.parametrize(("sql_name", "path", "body", "code"), TIMEOUT_CASES)
async def test_a_genuinely_slow_query_times_out(
    standard_warehouse: Path,
    tmp_path: Path,
    redis_url: str,
    redis_prefix: str,
    sql_name: str,
    path: str,
    body: Any,
    code: str,
) -> None:
    # The override counts to 10^9 in a recursive CTE (minutes); only the DB timeout can end it.
    write_override(tmp_path / "sql", sql_name, slow_variant(sql_name))
    settings = make_settings(
        standard_warehouse,
        redis_url,
        redis_prefix,
        DB_QUERY_TIMEOUT_SECONDS=0.3,
        TRACE_SQL_OVERRIDE_DIR=tmp_path / "sql",
    )
    started = time.monotonic()
    response = await post(asgi_client(settings), path, body)
    elapsed = time.monotonic() - started
    assert_error(response, 504, code, message_has=["timed out"])
    assert "Retry-After" not in response.headers
    assert elapsed < 10, elapsed


# --- 500 ------------------------------------------------------------------------------------------
def _without_column(name: str, column_line: str) -> str:
    sql = packaged_sql(name)
    assert column_line in sql
    return sql.replace(column_line, "")


UNEXPECTED_CASES = [
    # A query file that lost a column the stage needs: a KeyError in the stage's code, not a DB error.
    (
        "seeds_lot_id",
        _without_column("seeds_lot_id", "C.CONTAINERNAME AS MATCH_VALUE,\n       "),
        "seed-resolve",
        {"profile": "query_tool", "params": {"resolve_type": "lot_id", "values": [NAMES[S3]]}},
        "SEED_RESOLVE_FAILED",
        "KeyError",
    ),
    (
        "lineage_nodes",
        _without_column("lineage_nodes", "       C.FIRSTNAME AS FIRSTNAME,\n"),
        "lineage",
        {"profile": "query_tool_reverse", "container_ids": [S3]},
        "LINEAGE_FAILED",
        "KeyError",
    ),
    # A query that fails at run time on its first IN-batch: before the first byte, so a status code.
    (
        "events_history",
        failing_variant("events_history", "H.CONTAINERID", S3),
        "events",
        {"profile": "query_tool", "container_ids": [S3], "domains": ["history", "holds"]},
        "EVENTS_FAILED",
        "malformed JSON",
    ),
]


@pytest.mark.parametrize(("sql_name", "sql", "path", "body", "code", "cause"), UNEXPECTED_CASES)
async def test_an_unexpected_failure_is_500_with_the_request_id_in_the_log(
    standard_warehouse: Path,
    tmp_path: Path,
    redis_url: str,
    redis_prefix: str,
    caplog: pytest.LogCaptureFixture,
    sql_name: str,
    sql: str,
    path: str,
    body: Any,
    code: str,
    cause: str,
) -> None:
    write_override(tmp_path / "sql", sql_name, sql)
    settings = make_settings(standard_warehouse, redis_url, redis_prefix, TRACE_SQL_OVERRIDE_DIR=tmp_path / "sql")
    with caplog.at_level(logging.ERROR, logger="sanic_trace"):
        response = await post(asgi_client(settings), path, body)
    request_id = assert_error(response, 500, code)["meta"]["request_id"]
    lines = [r for r in caplog.records if r.name == "sanic_trace.errors" and f"request_id={request_id}" in r.message]
    assert len(lines) == 1, [r.message for r in caplog.records]
    line = lines[0]
    assert line.levelno == logging.ERROR
    assert f"code={code}" in line.message and f"stage={path}" in line.message
    # The log has the cause (and the traceback for a non-database failure); the client only the code.
    assert cause in line.message
    if cause == "KeyError":
        assert line.exc_info is not None
        assert "see the service log for this request id" in response.json["error"]["message"]
