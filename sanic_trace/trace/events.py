"""Stage 3, events: per domain, the records of a list of containers, one fetchmany batch at a time.

`iter_domain_batches` is the memory-safety core of the service: for each IN-batch of ids it
runs the domain's query and yields each fetchmany batch as a list of JSON-safe records; it
never holds more than one fetchmany batch. The inline HTTP path and the job children both
consume it, so both produce the same records in the same order (every domain query orders by
CONTAINERID, then time, then a unique id, within each IN-batch).

A domain's SQL is `sanic_trace/sql/<DomainSpec.sql_name>.sql`, loaded through the source's
SqlLibrary: with TRACE_SQL_OVERRIDE_DIR a file of the same name replaces it — how the HTTP tests
make a domain fail midway against a real database (see tests/test_trace_events.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import closing
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from sanic_trace.db.batching import batch_count, in_batches
from sanic_trace.db.source import DataSource
from sanic_trace.errors import ApiError
from sanic_trace.trace.lineage import lineage_direction
from sanic_trace.trace.params import MSD, invalid
from sanic_trace.trace.queries import stream_in_batch
from sanic_trace.trace.records import Derive, build_records

DOMAINS = ("history", "materials", "rejects", "holds", "jobs", "upstream_history", "downstream_rejects")

SECONDS_PER_HOUR = 3600.0


def _hold_hours(columns: dict[str, Sequence[Any]]) -> dict[str, list[Any]]:
    """HOLD_HOURS = release − hold in hours (2 decimals); null while on hold or when a time is missing.

    Null rather than "hours until now" for a lot still on hold: a value that changes with the
    clock would make equal requests differ and cached answers go stale.
    """
    hours: list[float | None] = []
    for held, released in zip(columns["HOLDTXNDATE"], columns["RELEASETXNDATE"]):
        if type(held) is datetime and type(released) is datetime:
            hours.append(round((released - held).total_seconds() / SECONDS_PER_HOUR, 2))
        else:
            hours.append(None)
    return {"HOLD_HOURS": hours}


@dataclass(frozen=True)
class EventsRequest:
    """A validated, normalised events request: what the inline path serves and a job carries."""

    profile: str
    container_ids: list[str]
    domains: list[str]
    params: dict[str, Any] = field(default_factory=dict)
    # The MSD analysis (mid_section_defect only; docs/msd.md): its detection lots, and the
    # genealogy if the request names one — a lineage object, or the lineage stage's query_id.
    seed_container_ids: list[str] = field(default_factory=list)
    lineage: dict[str, Any] | None = None
    lineage_query_id: str | None = None

    def cache_material(self) -> dict[str, Any]:
        return {"profile": self.profile, "ids": self.container_ids, "domains": self.domains, "params": self.params}

    def to_payload(self) -> dict[str, Any]:
        """The job payload (JSON): only the request — how to run it is the running host's settings."""
        return asdict(self)

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> EventsRequest:
        return cls(
            profile=payload["profile"],
            container_ids=list(payload["container_ids"]),
            domains=list(payload["domains"]),
            params=dict(payload.get("params") or {}),
            seed_container_ids=list(payload.get("seed_container_ids") or []),
            lineage=payload.get("lineage"),
            lineage_query_id=payload.get("lineage_query_id"),
        )


@dataclass(frozen=True)
class DomainSpec:
    name: str
    sql_name: str
    derive: Derive | None = None


DOMAIN_SPECS: dict[str, DomainSpec] = {
    "history": DomainSpec("history", "events_history"),
    "materials": DomainSpec("materials", "events_materials"),
    "rejects": DomainSpec("rejects", "events_rejects"),
    "holds": DomainSpec("holds", "events_holds", derive=_hold_hours),
    "jobs": DomainSpec("jobs", "events_jobs"),
    "upstream_history": DomainSpec("upstream_history", "events_upstream_history"),
    "downstream_rejects": DomainSpec("downstream_rejects", "events_downstream_rejects"),
}


def validate_domains(value: Any, field: str = "domains") -> list[str]:
    """A non-empty list of known domain names, duplicates dropped, order kept."""
    if not isinstance(value, list) or not value or any(not isinstance(v, str) for v in value):
        invalid(f"{field} must be a non-empty list of domain names ({', '.join(DOMAINS)})")
    unknown = [v for v in value if v not in DOMAIN_SPECS]
    if unknown:
        invalid(f"{field} has unknown domains: {', '.join(unknown)}; known: {', '.join(DOMAINS)}")
    return list(dict.fromkeys(value))


def default_domains(profile: str, params: Mapping[str, Any] | None = None) -> list[str]:
    """The domains a profile reads when the request names none."""
    if profile == MSD:
        if lineage_direction(profile, params) == "forward":
            return ["upstream_history", "downstream_rejects"]
        return ["upstream_history", "materials"]
    if profile in ("query_tool", "query_tool_reverse"):
        return ["history", "materials", "rejects", "holds", "jobs"]
    raise ApiError("INVALID_PROFILE", f"unknown profile {profile!r}")


def iter_domain_batches(
    source: DataSource,
    domain: str,
    container_ids: Sequence[str],
    *,
    on_batch_done: Callable[[int, int], None] | None = None,
) -> Iterator[list[dict[str, Any]]]:
    """Yield lists of at most the source's fetch size JSON-safe records (each with CONTAINERID) of `domain`.

    `container_ids` are used as given (normalised by the caller: a duplicate id would repeat
    records). `on_batch_done(done, total)` runs after each IN-batch, also one without rows.
    Closing the iterator early closes the open cursor. Database errors propagate
    (sanic_trace.db.errors), after the records of the batches before them were yielded.
    """
    spec = DOMAIN_SPECS.get(domain)
    if spec is None:
        invalid(f"unknown domain {domain!r}; known: {', '.join(DOMAINS)}")
    sql = source.sql.load(spec.sql_name)
    total = batch_count(len(container_ids), source.in_batch_size)
    for done, batch in enumerate(in_batches(container_ids, source.in_batch_size), start=1):
        # closing(): a consumer that stops mid-batch must not leave the cursor to the GC.
        with closing(stream_in_batch(source, sql, batch)) as stream:
            for columns, rows in stream:
                yield build_records(columns, rows, spec.derive)
        if on_batch_done is not None:
            on_batch_done(done, total)
