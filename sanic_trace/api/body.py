"""Reading and checking request bodies: a JSON object with a known profile."""

from __future__ import annotations

from typing import Any

import ujson
from sanic import Request

from sanic_trace.errors import ApiError

PROFILES = ("query_tool", "query_tool_reverse", "mid_section_defect")


def json_object(request: Request) -> dict[str, Any]:
    raw = request.body or b""
    if not raw.strip():
        raise ApiError("INVALID_PARAMS", "the body must be a JSON object; it is empty")
    try:
        body = ujson.loads(raw)
    except ValueError as exc:
        raise ApiError("INVALID_PARAMS", f"the body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ApiError("INVALID_PARAMS", f"the body must be a JSON object, not {type(body).__name__}")
    return body


def profile_of(body: dict[str, Any]) -> str:
    profile = body.get("profile")
    if profile not in PROFILES:
        raise ApiError("INVALID_PROFILE", f"profile must be one of {', '.join(PROFILES)}; got {profile!r}")
    return profile


def optional_object(body: dict[str, Any], field: str) -> dict[str, Any]:
    value = body.get(field)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ApiError("INVALID_PARAMS", f"{field} must be a JSON object")
    return value


def string_list(body: dict[str, Any], field: str, *, required: bool = True) -> list[str] | None:
    """A list of strings, normalised (trimmed, blanks and duplicates dropped, order kept)."""
    from sanic_trace.db.batching import normalise_ids

    value = body.get(field)
    if value is None and not required:
        return None
    if not isinstance(value, list):
        raise ApiError("INVALID_PARAMS", f"{field} must be a list of strings")
    bad = [i for i, v in enumerate(value) if not isinstance(v, str)]
    if bad:
        raise ApiError("INVALID_PARAMS", f"{field} must be a list of strings; entry {bad[0]} is not a string")
    ids = normalise_ids(value)
    if required and not ids:
        raise ApiError("INVALID_PARAMS", f"{field} must not be empty")
    return ids
