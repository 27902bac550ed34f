"""What a load run measured: latencies per endpoint, status codes, errors, streams, sessions.

One `Stats` per run, written to by every virtual user. Everything runs on one event loop,
so plain counters need no locks. Latency samples are kept whole (a run is bounded by
users × --max-requests, so the lists are too) and percentiles are exact nearest-rank
(trace_tools.percentiles, the bench's too).
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from trace_tools.percentiles import percentile

# Server answers that mean "come back later" by design (429, and 503 MEMORY_PRESSURE): the
# service protecting itself. They are counted with the other errors but do not make the
# run fail; every other error does.
BACKPRESSURE_CODES = frozenset({"RATE_LIMITED", "TOO_BUSY", "JOB_QUEUE_FULL", "MEMORY_PRESSURE"})

# At most this many example messages are kept per error code (enough to diagnose, bounded).
ERROR_SAMPLES_PER_CODE = 5

# Endpoint names used in the report.
SEED_RESOLVE = "seed-resolve"
LINEAGE = "lineage"
EVENTS_INLINE = "events (inline)"
EVENTS_SUBMIT = "events (202 job)"
EVENTS_REFUSED = "events (refused)"
JOB_STREAM = "job stream"
JOB_STATUS = "job status"


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


@dataclass
class EndpointStats:
    durations: list[float] = field(default_factory=list)  # request start → body fully read
    first_byte: list[float] = field(default_factory=list)  # request start → response headers
    errors: int = 0

    def summary(self) -> dict[str, Any]:
        values = self.durations
        return {
            "count": len(values),
            "errors": self.errors,
            "p50_ms": _ms(percentile(values, 50)),
            "p95_ms": _ms(percentile(values, 95)),
            "p99_ms": _ms(percentile(values, 99)),
            "max_ms": _ms(max(values) if values else None),
            "mean_ms": _ms(sum(values) / len(values) if values else None),
            "first_byte_p50_ms": _ms(percentile(self.first_byte, 50)),
            "first_byte_p95_ms": _ms(percentile(self.first_byte, 95)),
        }


@dataclass
class StreamStats:
    """Bodies of one kind (inline events JSON, or job NDJSON streams) read to the end."""

    count: int = 0
    payload_bytes: int = 0  # after gzip decoding: what the client parsed
    wire_bytes: int = 0  # as received (smaller when the server compressed)
    records: int = 0
    seconds: float = 0.0  # summed over bodies: time from first byte to the end
    per_stream_mb_s: list[float] = field(default_factory=list)

    def add(self, payload_bytes: int, wire_bytes: int, records: int, seconds: float) -> None:
        self.count += 1
        self.payload_bytes += payload_bytes
        self.wire_bytes += wire_bytes
        self.records += records
        self.seconds += seconds
        if seconds > 0:
            self.per_stream_mb_s.append(payload_bytes / 2**20 / seconds)

    def summary(self, elapsed: float) -> dict[str, Any]:
        mb = self.payload_bytes / 2**20
        return {
            "count": self.count,
            "records": self.records,
            "payload_mb": round(mb, 2),
            "wire_mb": round(self.wire_bytes / 2**20, 2),
            "mb_per_s": round(mb / elapsed, 2) if elapsed > 0 else None,
            "records_per_s": round(self.records / elapsed, 1) if elapsed > 0 else None,
            "per_stream_mb_per_s_p50": _round(percentile(self.per_stream_mb_s, 50), 2),
            "per_stream_mb_per_s_p95": _round(percentile(self.per_stream_mb_s, 95), 2),
        }


def _round(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


class Stats:
    def __init__(self) -> None:
        self.started = time.monotonic()
        self.ended: float | None = None
        self.requests = 0
        self.endpoints: dict[str, EndpointStats] = {}
        self.status_counts: Counter[int] = Counter()
        self.errors: Counter[str] = Counter()
        self.error_samples: dict[str, list[str]] = {}
        self.streams = {"inline": StreamStats(), "job": StreamStats()}
        self.active_streams = 0
        self.aborted_streams = 0
        self.sessions: dict[str, Counter[str]] = {}
        self.jobs: Counter[str] = Counter()
        self.job_first_records: list[float] = []  # 202 received → first records line
        self.job_total: list[float] = []  # 202 received → complete line
        self.notes: Counter[str] = Counter()  # things worth a line in the summary, not errors

    # -- recording -------------------------------------------------------------------------

    def endpoint(self, name: str) -> EndpointStats:
        stats = self.endpoints.get(name)
        if stats is None:
            stats = self.endpoints[name] = EndpointStats()
        return stats

    def request_sent(self) -> None:
        self.requests += 1

    def response(self, endpoint: str, status: int, first_byte: float) -> None:
        self.status_counts[status] += 1
        self.endpoint(endpoint).first_byte.append(first_byte)

    def done(self, endpoint: str, seconds: float) -> None:
        self.endpoint(endpoint).durations.append(seconds)

    def error(self, endpoint: str, code: str, message: str) -> None:
        self.errors[code] += 1
        self.endpoint(endpoint).errors += 1
        samples = self.error_samples.setdefault(code, [])
        if len(samples) < ERROR_SAMPLES_PER_CODE:
            samples.append(f"{endpoint}: {message}"[:500])

    def session(self, scenario: str, outcome: str) -> None:
        self.sessions.setdefault(scenario, Counter())[outcome] += 1

    # -- reading ---------------------------------------------------------------------------

    def elapsed(self) -> float:
        return (self.ended or time.monotonic()) - self.started

    def error_total(self) -> int:
        return sum(self.errors.values())

    def failure_total(self) -> int:
        return sum(n for code, n in self.errors.items() if code not in BACKPRESSURE_CODES)
