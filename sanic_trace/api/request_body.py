"""Reading request bodies: a JSON object, else 400 INVALID_PARAMS.

The field checks themselves live in sanic_trace.trace.params, shared with the stages.
"""

from __future__ import annotations

from typing import Any

import ujson
from sanic import Request

from sanic_trace.errors import ApiError


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
