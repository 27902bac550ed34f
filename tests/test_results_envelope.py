"""The events envelope (results/envelope.py): the exact bytes, however the records are cut into pieces.

The inline path feeds it pieces of fetch batches, /result feeds it stored chunks: the body must
not depend on where the pieces were cut.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pytest
import ujson

from sanic_trace.results.envelope import DomainFailure, EventsEnvelope, array_content

HISTORY = [{"CONTAINERID": f"c{n}", "N": n, "NAME": "測試"} for n in range(7)]
HOLDS = [{"CONTAINERID": "c1", "HOLD_HOURS": None}]


def build(domains: dict[str, list[dict[str, Any]]], cut: int, failures: Sequence[DomainFailure] = ()) -> bytes:
    """A body with each domain's records handed over in pieces of `cut` records."""
    envelope = EventsEnvelope()
    parts = [envelope.head()]
    for domain, records in domains.items():
        parts.append(envelope.open_domain(domain))
        for start in range(0, len(records), cut):
            encoded = ujson.dumps(records[start : start + cut], ensure_ascii=False).encode()
            parts.append(envelope.items(array_content(encoded)))
        parts.append(envelope.close_domain(len(records)))
    parts.append(envelope.end(failures))
    return b"".join(parts)


def test_the_exact_bytes() -> None:
    body = build({"holds": HOLDS, "jobs": []}, cut=1)
    assert body == (
        b'{"stage":"events","results":{"holds":{"data":[{"CONTAINERID":"c1","HOLD_HOURS":null}],"count":1},'
        b'"jobs":{"data":[],"count":0}},"aggregation":null}'
    )


@pytest.mark.parametrize("cut", [1, 2, 3, 7, 100])
def test_pieces_do_not_show_in_the_body(cut: int) -> None:
    body = build({"history": HISTORY, "jobs": [], "holds": HOLDS}, cut)
    assert body == build({"history": HISTORY, "jobs": [], "holds": HOLDS}, cut=1000)
    parsed = json.loads(body)
    assert list(parsed) == ["stage", "results", "aggregation"]
    assert parsed["results"] == {
        "history": {"data": HISTORY, "count": 7},
        "jobs": {"data": [], "count": 0},
        "holds": {"data": HOLDS, "count": 1},
    }
    assert parsed["aggregation"] is None
    # Non-ASCII text is sent as UTF-8, not escaped (as the records are encoded everywhere).
    assert "測試".encode() in body


def test_an_empty_piece_adds_nothing() -> None:
    envelope = EventsEnvelope()
    envelope.open_domain("history")
    assert envelope.items(b"") == b""
    assert envelope.items(b'{"a":1}') == b'{"a":1}'
    assert envelope.items(b"") == b""
    assert envelope.items(b'{"a":2}') == b',{"a":2}'


def test_partial_failure_tail() -> None:
    failure = DomainFailure("rejects", "EVENTS_FAILED", "the database query failed: boom (after 1 records)")
    body = build({"history": HISTORY[:1], "rejects": HISTORY[1:2]}, cut=1, failures=[failure])
    parsed = json.loads(body)
    assert list(parsed) == ["stage", "results", "aggregation", "code", "failed_domains", "errors"]
    assert parsed["code"] == "EVENTS_PARTIAL_FAILURE"
    assert parsed["failed_domains"] == ["rejects"]
    assert parsed["errors"] == {"rejects": {"code": "EVENTS_FAILED", "message": failure.message}}


def test_the_aggregation_has_one_place() -> None:
    envelope = EventsEnvelope()
    assert envelope.end() == b'},"aggregation":null}'
    assert envelope.end(aggregation=b'{"stations":[]}') == b'},"aggregation":{"stations":[]}}'
