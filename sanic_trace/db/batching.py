"""Id lists: normalising what clients send, and splitting ids into bound IN-lists.

Oracle accepts at most 1,000 expressions in an IN list (ORA-01795), so every query over
an id list runs once per batch of at most DB_IN_BATCH_SIZE ids. Ids are always bound as
variables, never interpolated into the SQL text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

ORACLE_MAX_IN_LIST = 1000


def normalise_ids(values: Iterable[Any]) -> list[str]:
    """Strings only, trimmed; blanks and duplicates dropped; first-seen order kept.

    Non-string entries are dropped too: callers validate types first when they must
    report them (the API does), so this function never raises.
    """
    seen: set[str] = set()
    result: list[str] = []
    for value in values:
        if not isinstance(value, str):
            continue
        text = value.strip()
        if text and text not in seen:
            seen.add(text)
            result.append(text)
    return result


def in_batches(ids: Sequence[str], size: int) -> Iterator[Sequence[str]]:
    """Consecutive slices of at most `size` ids (none for an empty list)."""
    if not 1 <= size <= ORACLE_MAX_IN_LIST:
        raise ValueError(f"IN batch size must be 1..{ORACLE_MAX_IN_LIST}, got {size}")
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


def batch_count(n_ids: int, size: int) -> int:
    return (n_ids + size - 1) // size


def bind_in_list(sql: str, name: str, ids: Sequence[str], pad_to: int | None = None) -> tuple[str, dict[str, str]]:
    """Expand the placeholder `:name` inside `IN (:name)` into `:name_0, :name_1, ...`.

    With `pad_to`, a short batch is padded by repeating its last id, so every batch of a
    query has the same SQL text and Oracle's statement cache parses it once. Repeating an
    id inside IN changes no result.
    """
    if not ids:
        raise ValueError("an IN list needs at least one id")
    values = list(ids)
    if pad_to is not None and len(values) < pad_to:
        values.extend([values[-1]] * (pad_to - len(values)))
    names = [f"{name}_{i}" for i in range(len(values))]
    pattern = re.compile(rf":{re.escape(name)}\b")
    if not pattern.search(sql):
        raise ValueError(f"the SQL has no :{name} placeholder")
    expanded = pattern.sub(", ".join(f":{n}" for n in names), sql)
    return expanded, dict(zip(names, values))
