"""The one place that turns exceptions into error responses (the envelope of docs/ARCHITECTURE.md)."""

from __future__ import annotations

import logging

from sanic import Request, Sanic
from sanic.exceptions import BadRequest, MethodNotAllowed, NotFound, PayloadTooLarge, SanicException
from sanic.handlers import ErrorHandler
from sanic.response import HTTPResponse, json

from sanic_trace.errors import ApiError, classify_exception, error_body

log = logging.getLogger("sanic_trace.errors")


def _from_sanic(exc: SanicException) -> ApiError | None:
    if isinstance(exc, PayloadTooLarge):
        return ApiError(
            "PAYLOAD_TOO_LARGE",
            f"request body is over the limit: {exc}. An events request names its genealogy with "
            "lineage_query_id (the lineage stage's query_id) instead of carrying the lineage object",
        )
    if isinstance(exc, NotFound):
        return ApiError("NOT_FOUND", "no such endpoint")
    if isinstance(exc, MethodNotAllowed):
        return ApiError("METHOD_NOT_ALLOWED", str(exc))
    if isinstance(exc, BadRequest):
        return ApiError("INVALID_PARAMS", f"bad request: {exc}")
    return None


def request_id_of(request: Request | None) -> str:
    if request is None:
        return "-"
    return getattr(request.ctx, "request_id", None) or "-"


def error_response(error: ApiError, request_id: str) -> HTTPResponse:
    headers = {"X-Request-ID": request_id}
    if error.retry_after is not None:
        headers["Retry-After"] = str(error.retry_after)
    return json(error_body(error.code, error.message, request_id, error.extra), status=error.status, headers=headers)


class TraceErrorHandler(ErrorHandler):
    def default(self, request: Request, exception: Exception) -> HTTPResponse:
        request_id = request_id_of(request)
        stage = getattr(request.ctx, "stage", None) if request is not None else None
        error = _from_sanic(exception) if isinstance(exception, SanicException) else None
        if error is None:
            error = classify_exception(exception, stage)
        if error.status >= 500:
            log.error(
                "request_failed request_id=%s stage=%s code=%s error=%s",
                request_id,
                stage,
                error.code,
                f"{type(exception).__name__}: {exception}",
                exc_info=not isinstance(exception, ApiError),
            )
        return error_response(error, request_id)


def install(app: Sanic) -> None:
    app.error_handler = TraceErrorHandler()
