"""Running one query over one IN-batch of ids, as a stream of fetchmany batches."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from sanic_trace.db.batching import bind_in_list
from sanic_trace.db.source import Batch, DataSource

IDS_BIND = "ids"
# Queries placed at the detection work centers bind them as a second IN-list, padded to this
# many so that the SQL text does not change with the number of stations named.
WORKCENTERS_BIND = "wcs"
WORKCENTERS_PAD = 32


def stream_in_batch(
    source: DataSource,
    sql: str,
    batch: Sequence[str],
    *,
    fetch_size: int | None = None,
    params: Mapping[str, Any] | None = None,
) -> Iterator[Batch]:
    """Yield `(columns, rows)` fetchmany batches of `sql` with `IN (:ids)` bound to `batch`.

    Padding every batch to the source's IN-batch size keeps one SQL text per query, so Oracle
    parses it once.
    `yield from` forwards close(): stopping early closes the cursor of the inner stream.
    """
    text, binds = bind_in_list(sql, IDS_BIND, batch, pad_to=source.in_batch_size)
    if params:
        binds.update(params)
    yield from source.stream(text, binds, fetch_size)


def column_index(columns: Sequence[str], *names: str) -> tuple[int, ...]:
    """Positions of `names` in a result's columns (a KeyError names a SQL file that lost a column)."""
    positions = {name: i for i, name in enumerate(columns)}
    return tuple(positions[name] for name in names)
