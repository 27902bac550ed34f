"""The one percentile of the tools: bench and loadtest report p50/p95/p99 with this function.

Nearest-rank: the q-th percentile of n values is the value at rank ceil(q/100 × n) (1-based,
at least 1) of the sorted values. It is always one of the values measured (no interpolation
between two latencies that were never seen), p100 is the maximum and p0 the minimum. For the
values 15, 20, 35, 40, 50: p5 = 15, p30 = 20, p40 = 20, p50 = 35, p100 = 50.

The rank is computed on the decimal value of q (Fraction(str(q))), so float noise cannot move
it: 7 % of 100 values is rank 7, not 8 (0.07 * 100 == 7.000000000000001 in floating point).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from fractions import Fraction


def percentile(values: Iterable[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100) of the values; None when there are none."""
    if not 0 <= q <= 100:
        raise ValueError(f"a percentile is between 0 and 100; got {q!r}")
    ordered = sorted(values)
    if not ordered:
        return None
    rank = max(1, math.ceil(Fraction(str(q)) * len(ordered) / 100))
    return ordered[rank - 1]
