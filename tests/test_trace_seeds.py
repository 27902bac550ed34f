"""Seed-resolve over a hand-built warehouse: every profile and resolve type, and validation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sanic_trace.db.sqlite_source import SqliteSource
from sanic_trace.errors import ApiError
from sanic_trace.trace.seeds import cache_material, resolve_seeds, validate_seed_request
from support.standard_warehouse import (
    F1,
    F2,
    NAMES,
    ORPHAN,
    R1,
    R2,
    S1,
    S2,
    S3,
    T1,
    TEST_GROUP,
)
from support.warehouses import open_warehouse

MAX_DAYS = 366


@pytest.fixture(scope="module")
def source(standard_warehouse: Path) -> SqliteSource:
    return open_warehouse(standard_warehouse)


def resolve(source: SqliteSource, profile: str, params: dict[str, Any], in_batch_size: int = 1000) -> dict[str, Any]:
    reader = open_warehouse(source.path, in_batch_size=in_batch_size)
    return resolve_seeds(reader, profile, params, msd_max_range_days=MAX_DAYS)


def ids(result: dict[str, Any]) -> list[str]:
    return [seed["container_id"] for seed in result["seeds"]]


def test_lot_id_resolves_container_names_and_reports_the_rest(source: SqliteSource) -> None:
    values = [f" {NAMES[S3]} ", "NOPE", NAMES[S3], ""]
    result = resolve(source, "query_tool", {"resolve_type": "lot_id", "values": values})
    assert result == {
        "seeds": [{"container_id": S3, "container_name": NAMES[S3], "lot_id": NAMES[S3]}],
        "seed_count": 1,
        "not_found": ["NOPE"],
    }


def test_work_order_and_wafer_lot(source: SqliteSource) -> None:
    assert ids(resolve(source, "query_tool", {"resolve_type": "work_order", "values": ["WO-1"]})) == [R1, S1, S2, S3]
    result = resolve(source, "query_tool", {"resolve_type": "wafer_lot", "values": ["WAF-B", "WAF-A", "WAF-Z"]})
    # Input order first (WAF-B before WAF-A), then by name within a value.
    assert ids(result) == [R2, T1, R1, S1, S2, S3]
    assert result["not_found"] == ["WAF-Z"]


def test_reverse_work_order_and_lot_id_only_find_finished_lots(source: SqliteSource) -> None:
    result = resolve(source, "query_tool_reverse", {"resolve_type": "gd_work_order", "values": ["GD-WO-1", "WO-1"]})
    assert ids(result) == [F1, F2]
    assert result["not_found"] == ["WO-1"]
    result = resolve(source, "query_tool_reverse", {"resolve_type": "gd_lot_id", "values": [NAMES[F1], NAMES[R1]]})
    assert ids(result) == [F1]
    assert result["not_found"] == [NAMES[R1]]


def test_msd_date_range_takes_distinct_lots_tracked_in_at_the_station_group(source: SqliteSource) -> None:
    params = {"start_date": "2025-01-09", "end_date": "2025-01-10"}
    result = resolve(source, "mid_section_defect", params)
    # S2 tracked in twice → once; T1 at 23:59:59 of the end date is in; R2 at midnight after is out;
    # ORPHAN has history but no container row and is kept (nameless) rather than dropped.
    assert ids(result) == sorted([S2, S3, T1, ORPHAN])
    assert result["seed_count"] == 4
    assert result["not_found"] == []
    assert {s["container_id"]: s["lot_id"] for s in result["seeds"]}[ORPHAN] is None
    assert resolve(source, "mid_section_defect", {**params, "station": TEST_GROUP}) == result
    assert resolve(source, "mid_section_defect", {"date_range": ["2025-01-09", "2025-01-10"]}) == result


def test_msd_station_may_be_a_work_center(source: SqliteSource) -> None:
    params = {"start_date": "2025-01-09", "end_date": "2025-01-11"}
    assert ids(resolve(source, "mid_section_defect", {**params, "station": "TMTT"})) == [T1]
    assert ids(resolve(source, "mid_section_defect", {**params, "station": "TEST-01"})) == sorted([S2, S3, R2, ORPHAN])


def test_an_unknown_msd_station_is_refused_naming_the_field_and_the_known_groups(source: SqliteSource) -> None:
    params = {"start_date": "2025-01-09", "end_date": "2025-01-11", "station": "NOWHERE"}
    with pytest.raises(ApiError) as caught:
        resolve(source, "mid_section_defect", params)
    assert caught.value.code == "INVALID_PARAMS"
    # The groups of the fixture's spec table, in route order (WORKCENTERSEQUENCE_GROUP 1, 2, 3, 9).
    assert caught.value.message == (
        "params.station 'NOWHERE' is not a known station group or work center; "
        f"station groups in route order: 切割, 焊接_DB, 焊接_WB, {TEST_GROUP}"
    )


def test_msd_container_mode(source: SqliteSource) -> None:
    params = {"mode": "container", "resolve_type": "lot_id", "values": [NAMES[T1]]}
    result = resolve(source, "mid_section_defect", params)
    assert ids(result) == [T1]


def test_in_batching_gives_the_same_result(source: SqliteSource) -> None:
    params = {"resolve_type": "wafer_lot", "values": ["WAF-B", "nope-1", "WAF-A", "WAF-X1", "nope-2"]}
    expected = resolve(source, "query_tool", params, in_batch_size=1000)
    assert resolve(source, "query_tool", params, in_batch_size=1) == expected
    assert resolve(source, "query_tool", params, in_batch_size=2) == expected


def test_validate_normalises_and_is_idempotent() -> None:
    params = validate_seed_request("mid_section_defect", {"date_range": ["2025-01-01", "2025-01-31"]}, MAX_DAYS)
    assert params == {
        "mode": "date_range",
        "start_date": "2025-01-01",
        "end_date": "2025-01-31",
        "station": TEST_GROUP,
        "loss_reasons": [],
        "direction": "backward",
    }
    assert validate_seed_request("mid_section_defect", params, MAX_DAYS) == params
    assert cache_material("mid_section_defect", params) == {
        k: v for k, v in params.items() if k not in ("loss_reasons", "direction")
    }
    q = validate_seed_request("query_tool", {"resolve_type": "lot_id", "values": [" a ", "a", "b"], "x": 1}, MAX_DAYS)
    assert q == {"resolve_type": "lot_id", "values": ["a", "b"]}
    # The longest range allowed is exactly msd_max_range_days days, both ends included.
    validate_seed_request("mid_section_defect", {"start_date": "2025-01-01", "end_date": "2025-01-10"}, 10)


MSD = "mid_section_defect"
DAYS = {"start_date": "2025-01-01", "end_date": "2025-01-02"}


@pytest.mark.parametrize(
    ("profile", "params", "field"),
    [
        ("query_tool", [], "params"),
        ("query_tool", {"values": ["a"]}, "params.resolve_type"),
        ("query_tool", {"resolve_type": "serial_number", "values": ["a"]}, "params.resolve_type"),
        ("query_tool", {"resolve_type": "lot_id"}, "params.values"),
        ("query_tool", {"resolve_type": "lot_id", "values": "a"}, "params.values"),
        ("query_tool", {"resolve_type": "lot_id", "values": ["a", 3]}, "params.values"),
        ("query_tool", {"resolve_type": "lot_id", "values": [" ", ""]}, "params.values"),
        ("query_tool_reverse", {"resolve_type": "lot_id", "values": ["a"]}, "params.resolve_type"),
        (MSD, {"mode": "x"}, "params.mode"),
        (MSD, {"end_date": "2025-01-01"}, "params.start_date"),
        (MSD, {"start_date": "2025-01-01"}, "params.end_date"),
        (MSD, {**DAYS, "start_date": "2025/01/01"}, "params.start_date"),
        (MSD, {**DAYS, "start_date": "20250101"}, "params.start_date"),
        (MSD, {"start_date": "2025-02-30", "end_date": "2025-03-02"}, "params.start_date"),
        (MSD, {**DAYS, "end_date": 20250102}, "params.end_date"),
        (MSD, {"start_date": "2025-01-02", "end_date": "2025-01-01"}, "params.end_date"),
        (MSD, {"start_date": "2024-01-01", "end_date": "2025-01-01"}, "params.end_date"),
        (MSD, {"date_range": ["2025-01-02", "2025-01-01"]}, "params.date_range"),
        (MSD, {"date_range": ["2025-01-01"]}, "params.date_range"),
        (MSD, {"date_range": ["2025-01-01", "x"]}, "params.date_range[1]"),
        (MSD, {"date_range": ["2025-01-01", "2025-01-02"], "start_date": "2025-01-01"}, "params.date_range"),
        (MSD, {**DAYS, "station": " "}, "params.station"),
        (MSD, {**DAYS, "loss_reasons": {"VOID": 1}}, "params.loss_reasons"),
        (MSD, {**DAYS, "direction": "up"}, "params.direction"),
        (MSD, {"mode": "container", "resolve_type": "gd_lot_id", "values": ["a"]}, "params.resolve_type"),
    ],
)
def test_validation_errors_name_their_field(profile: str, params: Any, field: str) -> None:
    with pytest.raises(ApiError) as caught:
        validate_seed_request(profile, params, MAX_DAYS)
    assert (caught.value.code, caught.value.status) == ("INVALID_PARAMS", 400)
    assert caught.value.message.startswith(f"{field} "), caught.value.message


def test_unknown_profile() -> None:
    with pytest.raises(ApiError) as caught:
        validate_seed_request("nope", {}, MAX_DAYS)
    assert caught.value.code == "INVALID_PROFILE"
    assert caught.value.message.startswith("profile ")


def test_resolve_validates_before_touching_the_database(tmp_path: Path) -> None:
    missing = SqliteSource(tmp_path / "absent.sqlite", 100, 5)
    with pytest.raises(ApiError):
        resolve(missing, "query_tool", {"resolve_type": "lot_id", "values": []})


def test_several_msd_stations_joined_with_commas_give_the_union(source: SqliteSource) -> None:
    params = {"start_date": "2025-01-09", "end_date": "2025-01-11"}
    both = ids(resolve(source, "mid_section_defect", {**params, "station": "TEST-01, TMTT"}))
    assert both == sorted(
        {
            *ids(resolve(source, "mid_section_defect", {**params, "station": "TMTT"})),
            *ids(resolve(source, "mid_section_defect", {**params, "station": "TEST-01"})),
        }
    )
    with pytest.raises(ApiError) as caught:
        resolve(source, "mid_section_defect", {**params, "station": "TMTT,NOWHERE"})
    assert caught.value.message.startswith("params.station 'NOWHERE' is not a known station group or work center")


# --- the dashboard's inputs: wildcards, caps, serial numbers, input_type ------------------------
def test_wildcards_match_as_like_patterns_case_sensitively(source: SqliteSource) -> None:
    def lots(values: list[str], kind: str = "lot_id") -> list[str]:
        return [
            s["container_name"]
            for s in resolve(source, "query_tool", {"resolve_type": kind, "values": values})["seeds"]
        ]

    # `*` and `%` are the same wildcard; matches come by name within the value, each container once.
    assert lots(["GA0001-A00-00*"]) == [NAMES[R1], NAMES[S1], NAMES[S2], NAMES[S3]]
    assert lots(["GA0001-A00-00%", "GA0001-A00-001"]) == [NAMES[R1], NAMES[S1], NAMES[S2], NAMES[S3]]
    assert lots(["G*-002"]) == [NAMES[S1], NAMES[T1]]
    # Case-sensitive as on Oracle; `_` is not a wildcard but itself.
    assert lots(["ga0001*"]) == []
    assert lots(["GA0001_A00*"]) == []
    assert lots(["WO-*"], "work_order") == [NAMES[R1], NAMES[S1], NAMES[S2], NAMES[S3], NAMES[R2], NAMES[T1]]
    assert lots(["WAF-?*"], "wafer_lot") == []  # `?` is no wildcard
    result = resolve(source, "query_tool", {"resolve_type": "lot_id", "values": ["GZ*", NAMES[R2]]})
    assert result["not_found"] == ["GZ*"] and [s["container_id"] for s in result["seeds"]] == [R2]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"resolve_type": "lot_id", "values": ["%"]}, "params.values '%' is only wildcards"),
        ({"resolve_type": "lot_id", "values": ["**"]}, "params.values '**' is only wildcards"),
        ({"resolve_type": "lot_id", "values": [f"L{i}" for i in range(51)]}, "params.values has 51 values; at most 50"),
        (
            {"resolve_type": "work_order", "values": [f"W{i}" for i in range(11)]},
            "params.values has 11 work orders; at most 10",
        ),
        (
            {"input_type": "lot_id", "resolve_type": "wafer_lot", "values": ["x"]},
            "params.input_type 'lot_id' contradicts",
        ),
    ],
)
def test_dashboard_input_caps_and_patterns_are_refused_naming_the_field(
    source: SqliteSource, params: dict[str, Any], message: str
) -> None:
    with pytest.raises(ApiError) as caught:
        resolve(source, "query_tool", params)
    assert caught.value.code == "INVALID_PARAMS" and caught.value.message.startswith(message), caught.value.message


def test_a_wildcard_matching_more_than_the_cap_is_refused(
    source: SqliteSource, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sanic_trace.trace import seeds as seeds_module

    # The cap is 1,000 containers; the tiny warehouse has 40: lower it for this test only.
    monkeypatch.setattr(seeds_module, "MAX_PATTERN_MATCHES", 3)
    with pytest.raises(ApiError) as caught:
        resolve(source, "query_tool", {"resolve_type": "lot_id", "values": ["GA*"]})
    assert caught.value.message == "params.values 'GA*' matches more than 3 containers; narrow the pattern"
    assert source.open_cursors == 0


def test_input_type_is_an_alias_of_resolve_type(source: SqliteSource) -> None:
    by_alias = resolve(source, "query_tool", {"input_type": "lot_id", "values": [NAMES[S3]]})
    assert by_alias == resolve(source, "query_tool", {"resolve_type": "lot_id", "values": [NAMES[S3]]})


def test_serial_numbers_resolve_to_source_lots_then_names_then_wafer_lots(source: SqliteSource) -> None:
    result = resolve(
        source,
        "query_tool_reverse",
        {"resolve_type": "serial_number", "values": ["SN-0001", "SN-0003", NAMES[T1], "WAF-A", "SN-X"]},
    )
    ids_in_order = [s["container_id"] for s in result["seeds"]]
    # SN-0001: the sources of F1 (S3, T1, by name); SN-0003: F3's source R2; NAMES[T1] (already
    # seen) as a name; WAF-A as a wafer lot (R1, S1, S2; S3 already seen); SN-X: nothing.
    assert ids_in_order == [S3, T1, R2, R1, S1, S2]
    assert result["not_found"] == ["SN-X"]
    # R2 was reached through F3's merge rows although F3 itself has no container row.
    assert result["seeds"][2] == {"container_id": R2, "container_name": NAMES[R2], "lot_id": NAMES[R2]}
