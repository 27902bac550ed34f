"""Where an events request is served: inline, as a job, or refused — the one statement of the rule.

    over TRACE_ASYNC_CID_THRESHOLD ids   → a job; with the job path unavailable (Redis down),
                                           inline ("inline-fallback") unless capped
    otherwise                            → inline unless capped
    capped = over TRACE_EVENTS_CID_LIMIT and not mid_section_defect
           → 413 CID_LIMIT_EXCEEDED, before any database connection is taken

mid_section_defect is never capped: its attribution needs every container of the request.
"""

from __future__ import annotations

from enum import Enum
from typing import Protocol

from sanic_trace.errors import ApiError
from sanic_trace.trace.params import MSD


class Route(Enum):
    # The values of the served routes are their X-Trace-Path header.
    INLINE = "inline"
    INLINE_FALLBACK = "inline-fallback"
    JOB = "job"
    REFUSE = "refuse"


class RoutingLimits(Protocol):
    """The two settings the rule reads (sanic_trace.settings.Settings has them)."""

    @property
    def async_cid_threshold(self) -> int: ...

    @property
    def events_cid_limit(self) -> int: ...


def route_events(cid_count: int, profile: str, settings: RoutingLimits, job_path_available: bool) -> Route:
    """The route of an events request of `cid_count` (normalised) ids.

    `job_path_available` is what the caller knows of the pool: True until a submission found
    Redis down; the caller then asks again with False.
    """
    capped = profile != MSD and cid_count > settings.events_cid_limit
    if cid_count > settings.async_cid_threshold:
        if job_path_available:
            return Route.JOB
        return Route.REFUSE if capped else Route.INLINE_FALLBACK
    return Route.REFUSE if capped else Route.INLINE


def cid_limit_exceeded(cid_count: int, settings: RoutingLimits, job_path_available: bool) -> ApiError:
    """The 413 of a refused route, saying why no job takes the request."""
    why = (
        "the job path is not available for requests at or under TRACE_ASYNC_CID_THRESHOLD "
        f"({settings.async_cid_threshold})"
        if job_path_available
        else "the job path is unavailable (Redis is down)"
    )
    return ApiError(
        "CID_LIMIT_EXCEEDED",
        f"{cid_count} container ids are over TRACE_EVENTS_CID_LIMIT ({settings.events_cid_limit}) and {why}",
        extra={"cid_count": cid_count, "limit": settings.events_cid_limit},
    )
