"""Where an analysis is kept in Redis: its MsdIndex blob and (jobs) its encoded aggregation.

Both live under the job key layout of the analysis id — a job's id for a job, a fresh id of the
same shape for an inline analysis — so one lookup serves both: a job's copies are data keys of
the job (their TTL follows the job's), an inline analysis's are written with the job TTL.
"""

from __future__ import annotations

from jobs import JobKeys
from sanic_trace.results.layout import AGGREGATION_READY_FIELD

INDEX_SUFFIX = "msd:index"
AGGREGATION_SUFFIX = "msd:aggregation"
# The field of the job's result index saying the aggregation is stored (the status shows it).
READY_FIELD = AGGREGATION_READY_FIELD


def analysis_key(prefix: str, request_digest: str) -> str:
    """request digest -> the analysis id of the same analysis (see msd/run.py analysis_digest)."""
    return f"{prefix}:msd:analysis:{request_digest}"


def index_key(prefix: str, analysis_id: str) -> str:
    return JobKeys(prefix, analysis_id).data(INDEX_SUFFIX)


def aggregation_key(prefix: str, analysis_id: str) -> str:
    return JobKeys(prefix, analysis_id).data(AGGREGATION_SUFFIX)
