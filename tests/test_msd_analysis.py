"""The MSD analysis against the independent oracle (tests/support/msd_oracle.py), number for number.

The product runs as the events paths run it — stations, population and genealogy from the
database, the domain records fed batch by batch (small IN-batches and fetches, so records of a
closure arrive in many pieces and out of lot order), the index through its Redis blob form —
and every field the oracle computes must be equal: KPI, every attribution row, the suspects,
every chart, the trend, the hint, and every detail row in order. Backward and forward, date and
container mode, with and without a loss-reason filter, on a hand-made warehouse and on the
20,000-lot demo warehouse.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sanic_trace.msd.aggregator import DOMAINS
from sanic_trace.msd.analysis import aggregate
from sanic_trace.msd.detail import DetailOrder
from sanic_trace.msd.index import MsdIndex
from sanic_trace.msd.session import MsdRequest, event_container_ids, start_analysis
from sanic_trace.trace.events import iter_domain_batches
from sanic_trace.trace.seeds import validate_seed_request
from support.asserts import assert_same
from support.msd_oracle import msd_detail_rows, msd_oracle
from support.msd_warehouses import A1, A2, S_LOTS, SMALL_SEEDS, WINDOW, B, C, build_suspects, demo_seeds
from support.warehouses import DemoWarehouses, open_warehouse

DEMO_LOTS = 20_000
DEMO_WINDOW = {"start_date": "2026-01-05", "end_date": "2026-06-03"}


def analyse(db: Path, *, seeds: list[str], in_batch_size: int = 3, fetch_size: int = 7, **params: Any) -> MsdIndex:
    """The product's analysis of one request, its index read back from its stored (blob) form."""
    source = open_warehouse(db, fetch_size=fetch_size, in_batch_size=in_batch_size)
    if "start_date" not in params:
        params = {"mode": "container", "resolve_type": "lot_id", "values": ["-"], **params}
    normalised = validate_seed_request("mid_section_defect", params, 366)
    aggregator = start_analysis(source, MsdRequest(normalised, seeds))
    ids = event_container_ids(aggregator, seeds)
    for domain in DOMAINS[normalised["direction"]]:
        for batch in iter_domain_batches(source, domain, ids):
            aggregator.feed(domain, batch)
    return MsdIndex.from_bytes(aggregator.finish().to_bytes())


def compare(db: Path, *, seeds: list[str], loss_reasons: list[str] | None = None, **params: Any) -> dict[str, Any]:
    index = analyse(db, seeds=seeds, **params)
    reasons = loss_reasons or []
    got = aggregate(index, reasons)
    expected = msd_oracle(db, seeds=seeds, loss_reasons=reasons, **params)
    assert_same(got, expected)
    order = DetailOrder(index, reasons)
    assert order.rows(0, len(order)) == msd_detail_rows(db, seeds=seeds, loss_reasons=reasons, **params)
    return got


@pytest.mark.parametrize("loss_reasons", [None, ["SHORT"], ["OPEN", "(未知)"]])
def test_small_backward_date_mode(msd_small_warehouse: Path, loss_reasons: list[str] | None) -> None:
    got = compare(msd_small_warehouse, seeds=SMALL_SEEDS, loss_reasons=loss_reasons, **WINDOW)
    assert got["genealogy_status"] == "ready" and got["genealogy_source"] == "derived"


def test_small_backward_container_mode(msd_small_warehouse: Path) -> None:
    got = compare(msd_small_warehouse, seeds=SMALL_SEEDS)
    assert got["daily_trend"] == [] and got["container_mode_hint"]["missing_count"] >= 1


@pytest.mark.parametrize("loss_reasons", [None, ["SHORT"]])
def test_small_forward(msd_small_warehouse: Path, loss_reasons: list[str] | None) -> None:
    compare(msd_small_warehouse, seeds=[A1, A2, B, C], direction="forward", loss_reasons=loss_reasons, **WINDOW)


def test_small_two_stations_and_a_work_center(msd_small_warehouse: Path) -> None:
    compare(msd_small_warehouse, seeds=SMALL_SEEDS, station="測試,TMTT", **WINDOW)
    compare(msd_small_warehouse, seeds=SMALL_SEEDS, station="TMTT", **WINDOW)


def test_the_forward_selection_case_worked_by_hand(tmp_path: Path) -> None:
    path = build_suspects(tmp_path / "suspects.sqlite")
    got = compare(path, seeds=S_LOTS, start_date="2025-03-01", end_date="2025-03-01")
    # As worked by hand in support/msd_warehouses.py: X first, then Z on the lots X leaves; Y rode along.
    assert [(s["name"], s["conditional_score"]) for s in got["suspects"]] == [
        ("EQ-X-NAME", 2.654),
        ("EQ-Z-NAME", 2.2361),
    ]


# --- the demo warehouse ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo(demo_warehouses: DemoWarehouses) -> Path:
    return demo_warehouses(DEMO_LOTS)


@pytest.fixture(scope="module")
def seeds(demo: Path) -> list[str]:
    return demo_seeds(demo)


@pytest.mark.parametrize("loss_reasons", [None, ["OPEN 開路", "SHORT 短路"]])
def test_demo_backward_whole_span_equals_the_oracle(
    demo: Path, seeds: list[str], loss_reasons: list[str] | None
) -> None:
    got = compare(demo, seeds=seeds, loss_reasons=loss_reasons, **DEMO_WINDOW)
    if loss_reasons is None:
        # The planted machines lead the machines, the planted lots the materials, by their own score...
        assert [r["EQUIPMENT_NAME"] for r in got["attribution"][:2]] == ["MD-03", "WB-07"]
        assert [r["MATERIAL_LOT_NAME"] for r in got["material_attribution"][:2]] == ["EMC-0015", "AUW-0046"]
        # ...and no factor seen by a single lot outranks them, however bad that one lot was.
        for rows in (got["attribution"], got["material_attribution"], got["wafer_root_attribution"]):
            singles = [r["score"] for r in rows if r["DETECTION_LOT_COUNT"] == 1]
            assert not singles or max(singles) < got["attribution"][1]["score"]
        # The planted causes lead the suspects, by the conditional ranking.
        assert [s["name"].split(" (")[-1].rstrip(")") for s in got["suspects"][:4]] == [
            "MD-03",
            "WB-07",
            "EMC-0015",
            "AUW-0046",
        ]


def test_demo_forward_from_molding_equals_the_oracle(demo: Path, seeds: list[str]) -> None:
    compare(demo, seeds=seeds[::5], direction="forward", station="成型", **DEMO_WINDOW)
