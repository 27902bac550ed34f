"""Checking response bodies as they stream in, without holding them.

Two checkers, one per body shape the events stage answers with:

- `NdjsonChecker`: the live NDJSON stream of a job (sanic_trace/results/ndjson.py). Lines must
  parse and come in protocol order (meta; per domain domain_start, records..., domain_end;
  optional aggregation; complete — or an error line at any point; progress lines anywhere
  before the end), and the counts must add up: a records line's `count` == len(data),
  domain_end `total_records` == the sum of its domain's counts, complete `total_records` ==
  the sum over all domains. Each line is parsed on its own, so memory is one line (one
  stored chunk, ≤ TRACE_STREAM_BATCH_SIZE records).

- `InlineEventsChecker`: the inline events body, one JSON object written piece by piece by
  the server (`{"stage":"events","results":{D:{"data":[...],"count":N},...},"aggregation":...}`).
  It is parsed incrementally: a small state machine walks the envelope and the records of each
  `data` array are decoded one at a time (the stdlib's C scanner via raw_decode) and dropped,
  so memory is one network piece plus one record whatever the body's size.

A violation raises `CheckError(code, message)`. A mismatch of counts is `COUNT_MISMATCH`:
an error, never a warning — a trace that silently loses records is the failure this service
exists to prevent.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any

import ujson

# Codes the harness itself assigns (server codes come from the error envelope / error lines).
COUNT_MISMATCH = "COUNT_MISMATCH"
BAD_JSON = "BAD_JSON"
PROTOCOL_ERROR = "PROTOCOL_ERROR"
STREAM_TRUNCATED = "STREAM_TRUNCATED"

# A records line holds one stored chunk; 64 MB is far above any sane TRACE_STREAM_BATCH_SIZE
# and still keeps a runaway line from eating the load generator's memory.
DEFAULT_MAX_LINE_BYTES = 64 * 2**20
# One record of an inline body (a flat object of a few dozen columns) or one envelope value.
DEFAULT_MAX_VALUE_CHARS = 16 * 2**20


class CheckError(Exception):
    """A response that breaks the contract: `code` is what the report counts it under."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class ServerReportedError(Exception):
    """The body itself carries an error (an NDJSON error line, EVENTS_PARTIAL_FAILURE)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


# --- NDJSON ---------------------------------------------------------------------------------------


class LineSplitter:
    """Bytes in arbitrary pieces → complete lines (without the newline), holding at most one line."""

    def __init__(self, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> None:
        self.max_line_bytes = max_line_bytes
        # Pieces of the unfinished line: joined once when its newline arrives, so a long line
        # arriving in many small pieces is copied once, not once per piece.
        self._parts: list[bytes] = []
        self._size = 0

    def feed(self, data: bytes) -> list[bytes]:
        lines: list[bytes] = []
        start = 0
        while True:
            end = data.find(b"\n", start)
            if end < 0:
                break
            piece = data[start:end]
            if self._parts:
                self._parts.append(piece)
                piece = b"".join(self._parts)
                self._parts = []
                self._size = 0
            lines.append(piece)
            start = end + 1
        if start < len(data):
            self._parts.append(data[start:])
            self._size += len(data) - start
            if self._size > self.max_line_bytes:
                raise CheckError(PROTOCOL_ERROR, f"an NDJSON line is longer than {self.max_line_bytes} bytes")
        return lines

    def finish(self) -> None:
        """The body ended: anything after the last newline is a cut-off line."""
        if self._parts and b"".join(self._parts).strip():
            raise CheckError(STREAM_TRUNCATED, "the stream ended inside a line (no newline after the last line)")


@dataclass
class StreamTotals:
    """What a fully checked stream or body contained."""

    domains: dict[str, int] = field(default_factory=dict)
    records: int = 0
    via_job: bool = False  # set by the caller: the answer was a 202 and this is the job's stream


def _int_field(obj: dict[str, Any], name: str, kind: str) -> int:
    value = obj.get(name)
    if type(value) is not int or value < 0:
        raise CheckError(PROTOCOL_ERROR, f"{kind} line: {name} must be a non-negative integer; got {value!r}")
    return value


class NdjsonChecker:
    """Feed the lines of one job stream in order; `finish()` once the body has ended."""

    def __init__(self) -> None:
        self.totals = StreamTotals()
        self._domains: list[str] | None = None  # from meta
        self._next_domain = 0  # index into _domains of the next domain_start
        self._open: str | None = None  # the domain between domain_start and domain_end
        self._batch = 0
        self._domain_sum = 0
        self._aggregated = False
        self._ended = False

    def line(self, raw: bytes) -> dict[str, Any]:
        """Check one line; return it parsed (records lines with their data). Raises on violations."""
        if self._ended:
            raise CheckError(PROTOCOL_ERROR, "a line after the stream's last (complete or error) line")
        if not raw.strip():
            raise CheckError(PROTOCOL_ERROR, "an empty line in the NDJSON stream")
        try:
            obj = ujson.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise CheckError(BAD_JSON, f"an NDJSON line does not parse ({exc}): {raw[:120]!r}") from None
        if not isinstance(obj, dict) or not isinstance(obj.get("type"), str):
            raise CheckError(PROTOCOL_ERROR, f"an NDJSON line is not an object with a type: {raw[:120]!r}")
        kind = obj["type"]
        handler = getattr(self, f"_on_{kind}", None)
        if handler is None:
            raise CheckError(PROTOCOL_ERROR, f"unknown line type {kind!r}")
        handler(obj)
        return obj

    def finish(self) -> StreamTotals:
        if not self._ended:
            where = f"inside domain {self._open!r}" if self._open else "before its complete line"
            raise CheckError(STREAM_TRUNCATED, f"the stream ended {where} (no complete or error line)")
        return self.totals

    # -- one method per line type --------------------------------------------------------------

    def _on_progress(self, obj: dict[str, Any]) -> None:
        # Keep-alives: allowed anywhere before the last line (also while the job is queued,
        # before meta, which is when the server sends them most).
        pass

    def _on_error(self, obj: dict[str, Any]) -> None:
        self._ended = True
        code = obj.get("code") if isinstance(obj.get("code"), str) else "STREAM_ERROR_LINE"
        raise ServerReportedError(code, str(obj.get("message", "")))

    def _on_meta(self, obj: dict[str, Any]) -> None:
        if self._domains is not None:
            raise CheckError(PROTOCOL_ERROR, "a second meta line")
        domains = obj.get("domains")
        if not isinstance(domains, list) or not domains or not all(isinstance(d, str) for d in domains):
            raise CheckError(PROTOCOL_ERROR, f"meta line: domains must be a non-empty list of names; got {domains!r}")
        self._domains = domains

    def _need_meta(self, kind: str) -> list[str]:
        if self._domains is None:
            raise CheckError(PROTOCOL_ERROR, f"a {kind} line before the meta line")
        return self._domains

    def _on_domain_start(self, obj: dict[str, Any]) -> None:
        domains = self._need_meta("domain_start")
        if self._open is not None:
            raise CheckError(PROTOCOL_ERROR, f"domain_start while domain {self._open!r} is still open")
        expected = domains[self._next_domain] if self._next_domain < len(domains) else None
        if obj.get("domain") != expected:
            raise CheckError(PROTOCOL_ERROR, f"domain_start {obj.get('domain')!r}; expected {expected!r}")
        self._open = expected
        self._batch = 0
        self._domain_sum = 0

    def _on_records(self, obj: dict[str, Any]) -> None:
        self._need_meta("records")
        if self._open is None or obj.get("domain") != self._open:
            raise CheckError(PROTOCOL_ERROR, f"records of {obj.get('domain')!r} outside its domain_start/domain_end")
        batch = _int_field(obj, "batch", "records")
        if batch != self._batch:
            raise CheckError(PROTOCOL_ERROR, f"records of {self._open}: batch {batch}, expected {self._batch}")
        count = _int_field(obj, "count", "records")
        data = obj.get("data")
        if not isinstance(data, list):
            raise CheckError(PROTOCOL_ERROR, f"records of {self._open} batch {batch}: data is not a list")
        if count != len(data):
            raise CheckError(
                COUNT_MISMATCH, f"records of {self._open} batch {batch}: count {count} but data holds {len(data)}"
            )
        self._batch += 1
        self._domain_sum += count
        self.totals.records += count

    def _on_domain_end(self, obj: dict[str, Any]) -> None:
        self._need_meta("domain_end")
        if self._open is None or obj.get("domain") != self._open:
            raise CheckError(PROTOCOL_ERROR, f"domain_end of {obj.get('domain')!r}; open domain is {self._open!r}")
        total = _int_field(obj, "total_records", "domain_end")
        if total != self._domain_sum:
            raise CheckError(
                COUNT_MISMATCH,
                f"domain_end of {self._open}: total_records {total} but its records lines sum to {self._domain_sum}",
            )
        self.totals.domains[self._open] = total
        self._open = None
        self._next_domain += 1

    def _all_domains_ended(self, kind: str) -> None:
        domains = self._need_meta(kind)
        if self._open is not None or self._next_domain != len(domains):
            missing = domains[self._next_domain :]
            raise CheckError(PROTOCOL_ERROR, f"{kind} before every domain ended (open {self._open!r}, left {missing})")

    def _on_aggregation(self, obj: dict[str, Any]) -> None:
        self._all_domains_ended("aggregation")
        if self._aggregated:
            raise CheckError(PROTOCOL_ERROR, "a second aggregation line")
        self._aggregated = True

    def _on_complete(self, obj: dict[str, Any]) -> None:
        self._all_domains_ended("complete")
        total = _int_field(obj, "total_records", "complete")
        if total != self.totals.records:
            raise CheckError(
                COUNT_MISMATCH, f"complete: total_records {total} but the records lines sum to {self.totals.records}"
            )
        self._ended = True


# --- inline JSON body ------------------------------------------------------------------------------

_WHITESPACE = " \t\n\r"
_DECODER = json.JSONDecoder()
_Pull = Generator[None, None, Any]  # a parsing step that may pause for more input


class InlineEventsChecker:
    """Incremental check of an inline events body: `feed(piece)` as it arrives, then `finish()`.

    The envelope is walked by a generator that pauses (yields) whenever the buffer runs out;
    `feed` appends text and resumes it. Buffered text before the parse position is dropped on
    every feed, so the buffer holds the unparsed tail only (usually less than one record).
    """

    def __init__(self, max_value_chars: int = DEFAULT_MAX_VALUE_CHARS) -> None:
        self.max_value_chars = max_value_chars
        self.totals = StreamTotals()
        self.envelope: dict[str, Any] = {}  # the small top-level fields (stage, aggregation, code, ...)
        self._utf8 = codecs.getincrementaldecoder("utf-8")()
        self._buf = ""
        self._pos = 0
        self._eof = False
        self._done = False
        self._parser = self._parse_body()
        next(self._parser)  # runs to the first pause: the buffer is empty

    def feed(self, data: bytes) -> None:
        try:
            text = self._utf8.decode(data)
        except UnicodeDecodeError as exc:
            raise CheckError(BAD_JSON, f"the body is not UTF-8: {exc}") from None
        self._buf = self._buf[self._pos :] + text
        self._pos = 0
        self._resume()

    def finish(self) -> StreamTotals:
        """The body ended. Raises unless it was one complete, consistent envelope."""
        try:
            tail = self._utf8.decode(b"", final=True)
        except UnicodeDecodeError as exc:
            raise CheckError(BAD_JSON, f"the body ends inside a UTF-8 sequence: {exc}") from None
        self._buf = self._buf[self._pos :] + tail
        self._pos = 0
        self._eof = True
        self._resume()
        if not self._done:  # pragma: no cover - the parser either finishes or raises at EOF
            raise CheckError(STREAM_TRUNCATED, "the body ended before its closing brace")
        code = self.envelope.get("code")
        if code is not None:
            failed = self.envelope.get("failed_domains")
            raise ServerReportedError(str(code), f"failed domains: {failed}; {self.envelope.get('errors')}")
        return self.totals

    def _resume(self) -> None:
        if self._done:
            return
        try:
            next(self._parser)
        except StopIteration:
            self._done = True

    # -- primitives (sub-generators: `yield` = wait for more input) ----------------------------

    def _peek(self, eof_ok: bool = False) -> _Pull:
        """The next non-whitespace character (not consumed); None at EOF when eof_ok."""
        while True:
            buf, pos, size = self._buf, self._pos, len(self._buf)
            while pos < size and buf[pos] in _WHITESPACE:
                pos += 1
            self._pos = pos
            if pos < size:
                return buf[pos]
            if self._eof:
                if eof_ok:
                    return None
                raise CheckError(STREAM_TRUNCATED, "the inline events body ended early")
            yield

    def _expect(self, allowed: str) -> _Pull:
        char = yield from self._peek()
        if char not in allowed:
            raise CheckError(BAD_JSON, f"expected one of {allowed!r} in the events body; got {char!r}")
        self._pos += 1
        return char

    def _value(self) -> _Pull:
        """Decode one complete JSON value at the parse position."""
        yield from self._peek()
        while True:
            try:
                value, end = _DECODER.raw_decode(self._buf, self._pos)
            except json.JSONDecodeError as exc:
                if self._eof:
                    at_end = exc.pos >= len(self._buf) - 1 or exc.msg.startswith("Unterminated")
                    raise CheckError(
                        STREAM_TRUNCATED if at_end else BAD_JSON, f"events body: {exc.msg} at char {exc.pos}"
                    ) from None
                if len(self._buf) - self._pos > self.max_value_chars:
                    raise CheckError(PROTOCOL_ERROR, f"a value longer than {self.max_value_chars} characters") from None
                yield
                continue
            if end >= len(self._buf) and not self._eof:
                # The value reaches the end of what has arrived: a number may go on in the next piece.
                yield
                continue
            self._pos = end
            return value

    def _key(self) -> _Pull:
        key = yield from self._value()
        if not isinstance(key, str):
            raise CheckError(BAD_JSON, f"an object key must be a string; got {key!r}")
        yield from self._expect(":")
        return key

    # -- the envelope --------------------------------------------------------------------------

    def _parse_body(self) -> _Pull:
        yield  # primed by __init__: wait for the first piece
        yield from self._expect("{")
        seen_results = False
        if (yield from self._peek()) == "}":
            self._pos += 1
        else:
            while True:
                key = yield from self._key()
                if key == "results":
                    yield from self._results()
                    seen_results = True
                else:
                    self.envelope[key] = yield from self._value()
                if (yield from self._expect(",}")) == "}":
                    break
        if (yield from self._peek(eof_ok=True)) is not None:
            raise CheckError(PROTOCOL_ERROR, "data after the events body's closing brace")
        if self.envelope.get("stage") != "events":
            raise CheckError(PROTOCOL_ERROR, f"events body: stage is {self.envelope.get('stage')!r}, not 'events'")
        if not seen_results:
            raise CheckError(PROTOCOL_ERROR, "events body without results")

    def _results(self) -> _Pull:
        yield from self._expect("{")
        if (yield from self._peek()) == "}":
            self._pos += 1
            return
        while True:
            domain = yield from self._key()
            yield from self._domain(domain)
            if (yield from self._expect(",}")) == "}":
                return

    def _domain(self, domain: str) -> _Pull:
        yield from self._expect("{")
        counted: int | None = None
        declared: Any = None
        if (yield from self._peek()) == "}":
            self._pos += 1
        else:
            while True:
                key = yield from self._key()
                if key == "data":
                    counted = yield from self._count_records(domain)
                else:
                    value = yield from self._value()
                    if key == "count":
                        declared = value
                if (yield from self._expect(",}")) == "}":
                    break
        if counted is None or type(declared) is not int:
            raise CheckError(PROTOCOL_ERROR, f"events body: domain {domain!r} needs a data list and an integer count")
        if declared != counted:
            raise CheckError(COUNT_MISMATCH, f"events body: {domain} count {declared} but data holds {counted}")
        if domain in self.totals.domains:
            raise CheckError(PROTOCOL_ERROR, f"events body: domain {domain!r} appears twice")
        self.totals.domains[domain] = counted

    def _count_records(self, domain: str) -> _Pull:
        yield from self._expect("[")
        count = 0
        if (yield from self._peek()) == "]":
            self._pos += 1
            return 0
        while True:
            record = yield from self._value()
            if not isinstance(record, dict):
                raise CheckError(PROTOCOL_ERROR, f"events body: a {domain} record is not an object")
            count += 1
            self.totals.records += 1
            if (yield from self._expect(",]")) == "]":
                return count
