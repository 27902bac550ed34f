"""Checking and normalising the `params` of a trace request (pure: no database).

Every failure is an ApiError whose message starts with the field it is about
(`params.resolve_type ...`), so a client can tell which input to fix.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NoReturn

from sanic_trace.db.batching import normalise_ids
from sanic_trace.errors import ApiError

QUERY_TOOL, QUERY_TOOL_REVERSE, MSD = "query_tool", "query_tool_reverse", "mid_section_defect"
PROFILES = (QUERY_TOOL, QUERY_TOOL_REVERSE, MSD)
DIRECTIONS = ("backward", "forward")


def invalid(message: str) -> NoReturn:
    raise ApiError("INVALID_PARAMS", message)


def check_profile(profile: Any) -> str:
    if profile not in PROFILES:
        raise ApiError("INVALID_PROFILE", f"profile must be one of {', '.join(PROFILES)}; got {profile!r}")
    return profile


def check_params(params: Any) -> Mapping[str, Any]:
    if params is None:
        return {}
    if not isinstance(params, Mapping):
        invalid("params must be a JSON object")
    return params


def choice(value: Any, field: str, choices: Sequence[str], default: str | None = None) -> str:
    if value is None and default is not None:
        return default
    if value not in choices:
        invalid(f"{field} must be one of {', '.join(choices)}; got {value!r}")
    return value


def string_list(value: Any, field: str, *, required: bool) -> list[str]:
    """A list of strings, normalised; a non-list or a non-string entry is an error, not dropped."""
    if value is None and not required:
        return []
    if not isinstance(value, list) or any(not isinstance(v, str) for v in value):
        invalid(f"{field} must be a list of strings")
    ids = normalise_ids(value)
    if required and not ids:
        invalid(f"{field} must contain at least one non-blank value")
    return ids


def text(value: Any, field: str, default: str) -> str:
    if value is None:
        return default
    if not isinstance(value, str) or not value.strip():
        invalid(f"{field} must be a non-empty string")
    return value.strip()


def names_list(value: Any, field: str) -> list[str]:
    """A list of strings or one string of `,`-separated names (as the dashboard sends either), normalised."""
    if value is None:
        return []
    if isinstance(value, str):
        return normalise_ids(value.split(","))
    if not isinstance(value, list) or any(not isinstance(v, str) for v in value):
        invalid(f"{field} must be a list of strings or one string of comma-separated names")
    return normalise_ids(value)
