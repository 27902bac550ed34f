"""The events routing rule (api/routing.py), case by case: inline, job, inline-fallback or 413."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from sanic_trace.api.routing import Route, cid_limit_exceeded, route_events
from sanic_trace.settings import load_settings

QT = "query_tool"
QTR = "query_tool_reverse"
MSD = "mid_section_defect"


@dataclass(frozen=True)
class Limits:
    async_cid_threshold: int
    events_cid_limit: int


USUAL = Limits(async_cid_threshold=20_000, events_cid_limit=50_000)  # the defaults: limit above threshold
LOW_LIMIT = Limits(async_cid_threshold=1000, events_cid_limit=5)  # a limit below the threshold

INLINE, FALLBACK, JOB, REFUSE = Route.INLINE, Route.INLINE_FALLBACK, Route.JOB, Route.REFUSE


@pytest.mark.parametrize(
    ("limits", "cid_count", "profile", "job_path_available", "expected"),
    [
        # At or under the threshold: inline, whatever the job path.
        (USUAL, 1, QT, True, INLINE),
        (USUAL, 20_000, QT, True, INLINE),
        (USUAL, 20_000, QT, False, INLINE),
        (USUAL, 20_000, MSD, True, INLINE),
        # Over it: a job while the job path is there, for every profile and any size.
        (USUAL, 20_001, QT, True, JOB),
        (USUAL, 20_001, QTR, True, JOB),
        (USUAL, 20_001, MSD, True, JOB),
        (USUAL, 10_000_000, QT, True, JOB),
        # Over it without the job path: inline up to the CID limit (inclusive), 413 beyond…
        (USUAL, 20_001, QT, False, FALLBACK),
        (USUAL, 50_000, QT, False, FALLBACK),
        (USUAL, 50_001, QT, False, REFUSE),
        (USUAL, 50_001, QTR, False, REFUSE),
        # …except MSD, never capped: its attribution needs every container.
        (USUAL, 50_001, MSD, False, FALLBACK),
        (USUAL, 10_000_000, MSD, False, FALLBACK),
        # A CID limit below the threshold caps requests the job path would never take.
        (LOW_LIMIT, 5, QT, True, INLINE),
        (LOW_LIMIT, 6, QT, True, REFUSE),
        (LOW_LIMIT, 6, QTR, False, REFUSE),
        (LOW_LIMIT, 1000, QT, True, REFUSE),
        (LOW_LIMIT, 6, MSD, True, INLINE),
        (LOW_LIMIT, 1001, QT, True, JOB),
        (LOW_LIMIT, 1001, QT, False, REFUSE),
        (LOW_LIMIT, 1001, MSD, False, FALLBACK),
    ],
)
def test_route_events(
    limits: Limits, cid_count: int, profile: str, job_path_available: bool, expected: Route
) -> None:
    assert route_events(cid_count, profile, limits, job_path_available) is expected


def test_routes_served_name_their_trace_path_header() -> None:
    assert [r.value for r in (INLINE, FALLBACK, JOB)] == ["inline", "inline-fallback", "job"]


def test_the_service_settings_are_routing_limits() -> None:
    settings = load_settings({"TRACE_ASYNC_CID_THRESHOLD": "100", "TRACE_EVENTS_CID_LIMIT": "200"})
    assert route_events(101, QT, settings, True) is JOB
    assert route_events(201, QT, settings, False) is REFUSE


@pytest.mark.parametrize(("job_path_available", "why"), [(True, "TRACE_ASYNC_CID_THRESHOLD (1000)"), (False, "down")])
def test_the_413_names_the_count_the_limit_and_why_no_job_takes_it(job_path_available: bool, why: str) -> None:
    error = cid_limit_exceeded(6, LOW_LIMIT, job_path_available)
    assert (error.code, error.status) == ("CID_LIMIT_EXCEEDED", 413)
    assert error.extra == {"cid_count": 6, "limit": 5}
    assert "6 container ids" in error.message and "TRACE_EVENTS_CID_LIMIT (5)" in error.message
    assert why in error.message
