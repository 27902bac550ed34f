"""The bytes of the events body — the one place that writes them.

    {"stage":"events","results":{"<domain>":{"data":[<records>],"count":N},...},"aggregation":null}

optionally followed, before the final `}`, by the partial-failure fields
`"code":"EVENTS_PARTIAL_FAILURE","failed_domains":[...],"errors":{...}`.

The inline path (records encoded in a DB thread, piece by piece) and a job's `/result` (chunks
spliced from Redis) both write their body through an `EventsEnvelope`, so the two are the same
bytes by construction, not by keeping two writers in step. Neither holds a body: the envelope
hands out small framing pieces and joins record content that the caller encoded once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import ujson

PARTIAL_FAILURE_CODE = "EVENTS_PARTIAL_FAILURE"


@dataclass(frozen=True)
class DomainFailure:
    """A domain that failed after the body had started: reported in the body's tail."""

    domain: str
    code: str
    message: str


def array_content(encoded_array: bytes) -> bytes:
    """The elements of an encoded JSON array without its brackets (b"" for an empty array)."""
    return encoded_array[1:-1]


class EventsEnvelope:
    """Framing of one events body, in order: head(), then per domain open_domain(), items()…,
    close_domain(); then end(). It keeps the commas between domains and between records."""

    def __init__(self) -> None:
        self._domains = 0
        self._items_in_domain = False

    def head(self) -> bytes:
        return b'{"stage":"events","results":{'

    def open_domain(self, domain: str) -> bytes:
        separator = b"," if self._domains else b""
        self._domains += 1
        self._items_in_domain = False
        return separator + ujson.dumps(domain, ensure_ascii=False).encode() + b':{"data":['

    def items(self, content: bytes) -> bytes:
        """Records of the open domain: `content` is JSON array content (see array_content)."""
        if not content:
            return b""
        if self._items_in_domain:
            return b"," + content
        self._items_in_domain = True
        return content

    def close_domain(self, count: int) -> bytes:
        return b'],"count":' + str(count).encode() + b"}"

    def end(self, failures: Sequence[DomainFailure] = (), aggregation: bytes | None = None) -> bytes:
        """Close `results`, then `aggregation` and, when some domain failed, the failure fields.

        `aggregation` is the MSD aggregation as encoded JSON (msd.run.encode_aggregation: the inline
        path encodes it there, a job stored it so) — spliced, so that both bodies carry the same
        bytes; None, written `null`, for other profiles or when the analysis could not complete.
        """
        encoded = b"null" if aggregation is None else aggregation
        closing = b'},"aggregation":' + encoded
        if failures:
            tail = {
                "code": PARTIAL_FAILURE_CODE,
                "failed_domains": [f.domain for f in failures],
                "errors": {f.domain: {"code": f.code, "message": f.message} for f in failures},
            }
            closing += b"," + ujson.dumps(tail, ensure_ascii=False).encode()[1:-1]
        return closing + b"}"
