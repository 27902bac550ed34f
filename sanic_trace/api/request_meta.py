"""Request ids: taken from a sane X-Request-ID header or made up, echoed on every response."""

from __future__ import annotations

import re
import uuid

from sanic import Request, Sanic
from sanic.response import BaseHTTPResponse

_ACCEPTABLE_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


def assign_request_id(request: Request) -> None:
    supplied = request.headers.get("X-Request-ID", "")
    request.ctx.request_id = supplied if _ACCEPTABLE_ID.fullmatch(supplied) else uuid.uuid4().hex


def echo_request_id(request: Request, response: BaseHTTPResponse) -> None:
    request_id = getattr(request.ctx, "request_id", None)
    if request_id and "X-Request-ID" not in response.headers:
        response.headers["X-Request-ID"] = request_id


def client_ip(request: Request) -> str:
    """The client address rate limits count against: the socket peer, or the forwarded address that
    TRACE_PROXIES_COUNT / TRACE_REAL_IP_HEADER / TRACE_FORWARDED_SECRET say to trust."""
    return request.remote_addr or request.ip or "unknown"


def install(app: Sanic) -> None:
    app.on_request(assign_request_id, priority=100)
    app.on_response(echo_request_id)
