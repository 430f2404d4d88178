"""Fixed gas buckets shared by decoders, rollups, the simulator's truth and the dashboards.

``histogram(n)`` in ClickHouse picks bins adaptively, so heatmaps use these fixed upper bounds
instead. A value falls in the first bucket whose bound is >= the value; the last bucket is
``+Inf``. Bounds are in Tgas (1 Tgas = 1e12 gas); the per-call limit is 1 PGas since protocol 83.
"""

from __future__ import annotations

import bisect

TGAS = 10**12
BUCKET_BOUNDS_TGAS: tuple[int, ...] = (1, 2, 5, 10, 20, 50, 100, 200, 300, 500, 1000)
BUCKET_BOUNDS_GAS: tuple[int, ...] = tuple(b * TGAS for b in BUCKET_BOUNDS_TGAS)
BUCKET_LABELS: tuple[str, ...] = tuple(str(b) for b in BUCKET_BOUNDS_TGAS) + ("+Inf",)


def bucket_label(gas: int) -> str:
    """The ``le`` label (in Tgas) of the bucket holding ``gas``."""
    return BUCKET_LABELS[bisect.bisect_left(BUCKET_BOUNDS_GAS, gas)]


def bucket_sql(column: str) -> str:
    """The same bucketing as a ClickHouse expression over a gas column."""
    bounds = ", ".join(str(b) for b in BUCKET_BOUNDS_GAS)
    labels = ", ".join(f"'{label}'" for label in BUCKET_LABELS)
    return f"arrayElement([{labels}], arrayFirstIndex(b -> {column} <= b, [{bounds}, 18446744073709551615]))"
