"""One virtual user's HTTP calls: timed, counted, checked, and turned into error codes.

Every call goes through `Caller`, which
- refuses to start a request once the user's budget (request cap, end of the run) is spent;
- times it (first byte and complete body) and counts its status code;
- reads bodies as streams: small stage answers whole, events bodies and job streams through
  the incremental checkers in checks.py, never holding a whole result;
- turns every failure into one error code in the stats — the envelope's `error.code` for an
  HTTP error, the harness's own codes (COUNT_MISMATCH, BAD_JSON, PROTOCOL_ERROR,
  STREAM_TRUNCATED, CONNECTION_ERROR, TIMEOUT, HTTP_<status>) otherwise — and raises
  `RequestFailed` so the session stops there, like a dashboard showing an error.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import ujson

from trace_tools.loadtest import stats as names
from trace_tools.loadtest.checks import (
    BAD_JSON,
    COUNT_MISMATCH,
    PROTOCOL_ERROR,
    STREAM_TRUNCATED,
    CheckError,
    InlineEventsChecker,
    LineSplitter,
    NdjsonChecker,
    ServerReportedError,
    StreamTotals,
)
from trace_tools.loadtest.stats import Stats

JSON_HEADERS = {"Content-Type": "application/json"}
# Reads a response's body (after the status line) and returns what the call yields.
Reader = Callable[[httpx.Response], Awaitable[Any]]
# Error bodies are small envelopes; more than this is not one.
MAX_ERROR_BODY = 64 * 1024


class StopUser(Exception):
    """The user may not start another request: its request cap or the run's duration is spent."""


class RequestFailed(Exception):
    """A call failed and its error is already counted; `retry_after` is the server's hint, if any."""

    def __init__(self, code: str, retry_after: float | None = None) -> None:
        super().__init__(code)
        self.code = code
        self.retry_after = retry_after


@dataclass
class Budget:
    """What one user may still do: requests left and the moment after which none may start."""

    requests_left: int
    stop_at: float  # time.monotonic()

    def take(self, follow_up: bool = False) -> None:
        """Count a request; refuse it (StopUser) when spent — unless it follows a 202 already received."""
        if not follow_up and (self.requests_left <= 0 or time.monotonic() >= self.stop_at):
            raise StopUser
        self.requests_left -= 1


@dataclass
class JobHandle:
    job_id: str
    stream_url: str
    status_url: str
    accepted_at: float


class Caller:
    def __init__(
        self,
        client: httpx.AsyncClient,
        stats: Stats,
        budget: Budget,
        request_id_prefix: str,
        on_open_job: Callable[[str, bool], None] | None = None,
    ) -> None:
        self.client = client
        self.stats = stats
        self.budget = budget
        self._prefix = request_id_prefix
        self._n = 0
        # Told about each job whose stream is being read (True) and once it was read to its end
        # (False), so the runner can cancel jobs left running when the run is cut short.
        self._on_open_job = on_open_job or (lambda job_id, open_: None)

    # -- public calls --------------------------------------------------------------------------

    async def post_json(self, endpoint: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST a stage request whose answer is one JSON object (seed-resolve, lineage)."""
        return await self._call(endpoint, "POST", path, body, self._read_json_object)

    async def events(self, body: dict[str, Any]) -> StreamTotals:
        """POST /events and read the answer to its end: the inline body, or the job's live stream."""
        job = await self._call(names.EVENTS_INLINE, "POST", "/api/trace/events", body, self._read_events)
        if isinstance(job, StreamTotals):
            return job
        self.stats.jobs["submitted"] += 1
        # Following a 202 is part of the request already made: it is not refused at the end of
        # the run's duration (only the final deadline cuts it).
        self._on_open_job(job.job_id, True)
        try:
            totals = await self._call(
                names.JOB_STREAM, "GET", job.stream_url, None, self._stream_reader(job), follow_up=True
            )
        except RequestFailed:
            self._on_open_job(job.job_id, False)
            raise
        self._on_open_job(job.job_id, False)
        await self._call(names.JOB_STATUS, "GET", job.status_url, None, self._status_checker(totals), follow_up=True)
        self.stats.jobs["finished"] += 1
        totals.via_job = True
        return totals

    # -- the common wrapper --------------------------------------------------------------------

    async def _call(
        self,
        endpoint: str,
        method: str,
        path: str,
        body: dict[str, Any] | None,
        reader: Reader,
        follow_up: bool = False,
    ) -> Any:
        self.budget.take(follow_up)
        self.stats.request_sent()
        self._n += 1
        request_id = f"{self._prefix}-{self._n}"
        headers = {"X-Request-ID": request_id}
        content = None
        if body is not None:
            headers.update(JSON_HEADERS)
            content = ujson.dumps(body, ensure_ascii=False).encode()
        started = time.monotonic()
        first_byte: float | None = None
        where = endpoint
        try:
            async with self.client.stream(method, path, content=content, headers=headers) as response:
                first_byte = time.monotonic() - started
                where = _endpoint_for(endpoint, response.status_code)
                self.stats.response(where, response.status_code, first_byte)
                if response.status_code >= 400:
                    await self._http_error(where, response, request_id)
                result = await reader(response)
        except (CheckError, ServerReportedError) as exc:
            if isinstance(exc, ServerReportedError) and where == names.JOB_STREAM:
                self.stats.jobs["failed"] += 1
            self.stats.error(where, exc.code, f"{exc.message} [request {request_id}]")
            raise RequestFailed(exc.code) from None
        except httpx.TimeoutException as exc:
            self.stats.error(where, "TIMEOUT", f"{type(exc).__name__}: {exc} [request {request_id}]")
            raise RequestFailed("TIMEOUT") from None
        except httpx.DecodingError as exc:
            self.stats.error(where, BAD_JSON, f"undecodable body: {exc} [request {request_id}]")
            raise RequestFailed(BAD_JSON) from None
        except httpx.RequestError as exc:
            # Before the status line it is a connection problem; after it, a body cut short
            # (the server aborts the connection rather than end a broken body cleanly).
            code = "CONNECTION_ERROR" if first_byte is None else STREAM_TRUNCATED
            self.stats.error(where, code, f"{type(exc).__name__}: {exc} [request {request_id}]")
            raise RequestFailed(code) from None
        self.stats.done(where, time.monotonic() - started)
        return result

    async def _http_error(self, endpoint: str, response: httpx.Response, request_id: str) -> None:
        raw = b""
        async for piece in response.aiter_bytes():
            raw += piece
            if len(raw) > MAX_ERROR_BODY:
                break
        code, message = f"HTTP_{response.status_code}", raw[:200].decode("utf-8", "replace")
        try:
            envelope = ujson.loads(raw)
            error = envelope.get("error") if isinstance(envelope, dict) else None
            if isinstance(error, dict) and isinstance(error.get("code"), str):
                code, message = error["code"], str(error.get("message", ""))
        except ValueError:
            pass
        retry_after = _retry_after(response)
        self.stats.error(endpoint, code, f"HTTP {response.status_code} {message} [request {request_id}]")
        raise RequestFailed(code, retry_after)

    # -- body readers --------------------------------------------------------------------------

    async def _read_json_object(self, response: httpx.Response) -> dict[str, Any]:
        raw = await response.aread()
        try:
            body = ujson.loads(raw)
        except ValueError as exc:
            raise CheckError(BAD_JSON, f"the response does not parse: {exc}") from None
        if not isinstance(body, dict):
            raise CheckError(PROTOCOL_ERROR, "the response is not a JSON object")
        _check_stage_body(body)
        return body

    async def _read_events(self, response: httpx.Response) -> StreamTotals | JobHandle:
        if response.status_code == 202:
            body = await self._read_json_object(response)
            try:
                return JobHandle(body["job_id"], body["stream_url"], body["status_url"], time.monotonic())
            except KeyError as exc:
                raise CheckError(PROTOCOL_ERROR, f"202 body without {exc}") from None
        if response.status_code != 200:
            raise CheckError(PROTOCOL_ERROR, f"events answered HTTP {response.status_code}")
        checker = InlineEventsChecker()
        return await self._consume(response, "inline", checker.feed, checker.finish)

    def _stream_reader(self, job: JobHandle) -> Reader:
        async def read(response: httpx.Response) -> StreamTotals:
            checker = NdjsonChecker()
            splitter = LineSplitter()
            first_records: list[float] = []

            def feed(piece: bytes) -> None:
                for line in splitter.feed(piece):
                    obj = checker.line(line)
                    if not first_records and obj["type"] == "records":
                        first_records.append(time.monotonic() - job.accepted_at)

            def finish() -> StreamTotals:
                splitter.finish()
                return checker.finish()

            totals = await self._consume(response, "job", feed, finish)
            if first_records:
                self.stats.job_first_records.append(first_records[0])
            self.stats.job_total.append(time.monotonic() - job.accepted_at)
            return totals

        return read

    def _status_checker(self, totals: StreamTotals) -> Reader:
        async def read(response: httpx.Response) -> dict[str, Any]:
            raw = await response.aread()
            try:
                status = ujson.loads(raw)
            except ValueError as exc:
                raise CheckError(BAD_JSON, f"job status does not parse: {exc}") from None
            result = status.get("result") if isinstance(status, dict) else None
            if not isinstance(status, dict) or status.get("status") != "finished" or not isinstance(result, dict):
                raise CheckError(PROTOCOL_ERROR, f"the stream completed but the job status is {raw[:200]!r}")
            if result.get("total_records") != totals.records:
                raise CheckError(
                    COUNT_MISMATCH,
                    f"job status says {result.get('total_records')} records; its stream carried {totals.records}",
                )
            return status

        return read

    async def _consume(
        self, response: httpx.Response, kind: str, feed: Callable[[bytes], None], finish: Callable[[], StreamTotals]
    ) -> StreamTotals:
        """Read a body piece by piece through a checker, counting it as an active stream."""
        started = time.monotonic()
        payload = 0
        self.stats.active_streams += 1
        try:
            async for piece in response.aiter_bytes():
                payload += len(piece)
                feed(piece)
            totals = finish()
        except asyncio.CancelledError:
            # The run's final deadline: the stream is cut, which is neither a success nor an error.
            self.stats.aborted_streams += 1
            raise
        finally:
            self.stats.active_streams -= 1
        self.stats.streams[kind].add(payload, response.num_bytes_downloaded, totals.records,
                                     time.monotonic() - started)
        return totals


def _endpoint_for(endpoint: str, status: int) -> str:
    """The events endpoint is reported by what the server did with the request."""
    if endpoint != names.EVENTS_INLINE:
        return endpoint
    if status == 202:
        return names.EVENTS_SUBMIT
    if status >= 400:
        return names.EVENTS_REFUSED
    return names.EVENTS_INLINE


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _check_stage_body(body: dict[str, Any]) -> None:
    """The consistency a stage answer must have (its size fields agree with its lists)."""
    if body.get("stage") == "seed-resolve":
        seeds = body.get("seeds")
        if not isinstance(seeds, list):
            raise CheckError(PROTOCOL_ERROR, "seed-resolve answer without a seeds list")
        if body.get("seed_count") != len(seeds):
            raise CheckError(COUNT_MISMATCH, f"seed-resolve: seed_count {body.get('seed_count')}, {len(seeds)} seeds")
    elif body.get("stage") == "lineage":
        if not isinstance(body.get("roots"), list):
            raise CheckError(PROTOCOL_ERROR, "lineage answer without a roots list")
