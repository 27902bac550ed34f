"""The error-code tables of docs/api.md and docs/ARCHITECTURE.md say what sanic_trace/errors.py says.

Each table row names codes separated by " / " and an HTTP column: one status for all of them, one
per code (" / " again), or "in …" for codes that never make a response of their own (status None).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sanic_trace.errors import CODES

DOCS = Path(__file__).resolve().parent.parent / "docs"
CODE = re.compile(r"`?([A-Z][A-Z_]+)`?")


def table(path: Path, heading: str) -> dict[str, int | None]:
    """code -> HTTP status of the first table after `heading` in `path` that lists every code."""
    text = path.read_text(encoding="utf-8")
    section = text[text.index(heading) :]
    found: dict[str, int | None] = {}
    started = False
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not line.startswith("|") or len(cells) < 3:
            if started:
                break
            continue
        if cells[0] in ("code", "---") or set(cells[0]) <= {"-"}:
            started = True
            continue
        codes = [m.group(1) for m in (CODE.fullmatch(c.strip()) for c in cells[0].split(" / ")) if m]
        statuses = [s.strip() for s in cells[1].split(" / ")]
        if statuses[0].isdigit():
            values = [int(s) for s in statuses] if len(statuses) == len(codes) else [int(statuses[0])] * len(codes)
        else:
            values = [None] * len(codes)
        found.update(zip(codes, values, strict=True))
    return found


@pytest.mark.parametrize(
    ("doc", "heading"),
    [("api.md", "Every code of the service"), ("ARCHITECTURE.md", "## 7. Error codes")],
)
def test_the_error_table_is_the_code_table(doc: str, heading: str) -> None:
    assert table(DOCS / doc, heading) == CODES
