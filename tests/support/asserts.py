"""Assertions on what the service answers: the error envelope, exactly."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any


def assert_error(response: Any, status: int, code: str, *, message_has: Iterable[str] = ()) -> dict[str, Any]:
    """The error envelope, exactly: success false, error {code, message (+extra)}, meta {timestamp, request_id}."""
    status_code = getattr(response, "status_code", None) or response.status
    assert status_code == status, response.text[:500]
    body = response.json() if callable(response.json) else response.json
    assert set(body) == {"success", "error", "meta"}, body
    assert body["success"] is False
    assert body["error"]["code"] == code, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    for part in message_has:
        assert part in body["error"]["message"], body["error"]["message"]
    assert set(body["meta"]) == {"timestamp", "request_id"}
    datetime.fromisoformat(body["meta"]["timestamp"].replace("Z", "+00:00"))
    assert body["meta"]["request_id"] and body["meta"]["request_id"] != "-"
    assert response.headers["X-Request-ID"] == body["meta"]["request_id"]
    return body


def assert_same(got: dict[str, Any], expected: dict[str, Any]) -> None:
    """Every field the oracle computes is in `got`, equal (lists of rows compared row by row, so that
    a failure names the first row that differs); `got` may carry more fields."""
    for key, value in expected.items():
        assert key in got, key
        if isinstance(value, list) and value and isinstance(value[0], dict):
            assert len(got[key]) == len(value), key
            for i, (g, e) in enumerate(zip(got[key], value, strict=True)):
                assert g == e, f"{key}[{i}]"
        elif isinstance(value, dict) and key == "charts":
            assert set(got[key]) == set(value)
            for chart, items in value.items():
                assert got[key][chart] == items, chart
        else:
            assert got[key] == value, key
