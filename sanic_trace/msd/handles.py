"""lineage_query_id: the handle by which an events request names a lineage instead of carrying it.

The lineage stage answers with `query_id` = `<cache_key>.<issued, unix seconds>`: its response is
in the stage cache under that key for TRACE_CACHE_TTL_SECONDS. An MSD events request that sends
`lineage_query_id` gets that genealogy read back from Redis (by the inline path or the job
child), never through the request. A lineage larger than LINEAGE_READ_MAX_BYTES is not parsed
(a 114,000-container lineage is 20–55 MB of JSON, more memory as objects than the whole
analysis): the genealogy is walked again from the seeds, compactly, with the same result.
"""

from __future__ import annotations

import re
import time

from sanic_trace.api.cache import stage_key
from sanic_trace.trace.params import invalid

FIELD = "lineage_query_id"
LINEAGE_READ_MAX_BYTES = 4 * 1024 * 1024
_HANDLE = re.compile(r"([0-9a-f]{32})\.([0-9]{1,12})")


def make_handle(cache_key: str, issued: float | None = None) -> str:
    return f"{cache_key}.{int(time.time() if issued is None else issued)}"


def parse_handle(value: object) -> tuple[str, int]:
    """(cache key digest, issued) of a handle; 400 naming the field for anything else."""
    match = _HANDLE.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        invalid(f"{FIELD} must be the query_id of a lineage response (32 hex digits, '.', a time); got {value!r}")
    return match.group(1), int(match.group(2))


def lineage_cache_key(prefix: str, digest: str) -> str:
    """The Redis key of the lineage response a handle names."""
    return stage_key(prefix, "lineage", digest)


def refuse_missing(handle: str, issued: int, cache_ttl_seconds: int, now: float | None = None) -> None:
    """400 for a handle whose lineage is not stored: expired (say so, and what to do) or unknown."""
    now = time.time() if now is None else now
    if issued + cache_ttl_seconds <= now:
        invalid(
            f"{FIELD} {handle!r} has expired (lineages are kept {cache_ttl_seconds} s): "
            "run the lineage stage again for a new query_id"
        )
    invalid(f"{FIELD} {handle!r} names no stored lineage: send a query_id the lineage stage returned")
