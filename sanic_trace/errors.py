"""The error codes of the API and the one place that turns failures into responses.

Every code the service can answer with is in CODES with its HTTP status. Codes that
only appear inside a body (EVENTS_PARTIAL_FAILURE) or a job status (JOB_*) have
status None: they never make a response on their own.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

CODES: dict[str, int | None] = {
    "INVALID_PARAMS": 400,
    "INVALID_PROFILE": 400,
    "INVALID_JOB_ID": 400,
    "NOT_FOUND": 404,
    "METHOD_NOT_ALLOWED": 405,
    "JOB_NOT_FOUND": 404,
    "ANALYSIS_NOT_FOUND": 404,
    "JOB_RESULT_EXPIRED": 404,
    "JOB_NOT_COMPLETE": 409,
    "CID_LIMIT_EXCEEDED": 413,
    "PAYLOAD_TOO_LARGE": 413,
    "RATE_LIMITED": 429,
    "TOO_BUSY": 429,
    "JOB_QUEUE_FULL": 429,
    "MEMORY_PRESSURE": 503,
    "REDIS_UNAVAILABLE": 503,
    "DB_UNAVAILABLE": 503,
    "SEED_RESOLVE_TIMEOUT": 504,
    "LINEAGE_TIMEOUT": 504,
    "EVENTS_TIMEOUT": 504,
    "SEED_RESOLVE_FAILED": 500,
    "LINEAGE_FAILED": 500,
    "EVENTS_FAILED": 500,
    "INTERNAL_ERROR": 500,
    # in a body
    "EVENTS_PARTIAL_FAILURE": None,
    # in a job status
    "JOB_MEMORY_LIMIT": None,
    "JOB_TIMEOUT": None,
    "JOB_WORKER_DIED": None,
    "JOB_ORPHANED": None,
    "JOB_INTERRUPTED": None,
    "JOB_FAILED": None,
    "JOB_CANCELLED": None,
}

# Codes that tell the client to come back later carry Retry-After (seconds).
DEFAULT_RETRY_AFTER: dict[str, int] = {
    "RATE_LIMITED": 10,
    "TOO_BUSY": 2,
    "JOB_QUEUE_FULL": 30,
    "MEMORY_PRESSURE": 30,
    "REDIS_UNAVAILABLE": 10,
    "DB_UNAVAILABLE": 10,
}


class ApiError(Exception):
    """An error the client is told about: a code from CODES, a message, extra body fields."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        retry_after: int | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        if code not in CODES or CODES[code] is None:
            raise KeyError(f"{code} is not a response error code")
        super().__init__(message)
        self.code = code
        self.message = message
        self.status: int = CODES[code]  # type: ignore[assignment]
        self.retry_after = retry_after if retry_after is not None else DEFAULT_RETRY_AFTER.get(code)
        self.extra = extra or {}


def utc_now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def error_body(code: str, message: str, request_id: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if extra:
        error.update(extra)
    return {
        "success": False,
        "error": error,
        "meta": {"timestamp": utc_now_iso(), "request_id": request_id},
    }


# Which stage a failure happened in decides its timeout / failure code.
STAGE_CODES: dict[str, tuple[str, str]] = {
    "seed-resolve": ("SEED_RESOLVE_TIMEOUT", "SEED_RESOLVE_FAILED"),
    "lineage": ("LINEAGE_TIMEOUT", "LINEAGE_FAILED"),
    "events": ("EVENTS_TIMEOUT", "EVENTS_FAILED"),
}


def classify_exception(exc: BaseException, stage: str | None) -> ApiError:
    """Turn any exception raised while serving a request into the ApiError the client sees."""
    # Imported here: errors.py is imported by modules that must not pull in the DB or Redis clients.
    import redis

    from sanic_trace.db.errors import DatabaseError, DatabaseUnavailable, QueryTimeout

    if isinstance(exc, ApiError):
        return exc
    timeout_code, failed_code = STAGE_CODES.get(stage or "", ("INTERNAL_ERROR", "INTERNAL_ERROR"))
    if isinstance(exc, QueryTimeout):
        code = timeout_code if timeout_code != "INTERNAL_ERROR" else "EVENTS_TIMEOUT"
        return ApiError(code, f"the database query timed out: {exc}")
    if isinstance(exc, DatabaseUnavailable):
        return ApiError("DB_UNAVAILABLE", f"the warehouse is unavailable: {exc}")
    if isinstance(exc, (redis.ConnectionError, redis.TimeoutError)):
        return ApiError("REDIS_UNAVAILABLE", f"Redis is unavailable: {exc}")
    if isinstance(exc, DatabaseError):
        return ApiError(failed_code, f"the database query failed: {exc}")
    return ApiError(failed_code, "unexpected failure; see the service log for this request id")
