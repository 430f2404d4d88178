"""What each rollup table holds and how it is computed (README "Rollups").

A family is one statistic at three grains: ``<name>_1m`` from the base table, ``<name>_1h`` from
``<name>_1m`` and ``<name>_1d`` from ``<name>_1h``. Every column is either additive (counts, sums, maps of counts)
or an exact aggregate state (``quantilesExact``, ``uniqExact``), so merging 60 minutes gives the
same hour as reading the hour's base rows, and no grain can drift from another.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from indexer.gas import bucket_sql

QUANTILES = (0.5, 0.9, 0.99)
_Q = ", ".join(str(q) for q in QUANTILES)


@dataclass(frozen=True)
class Column:
    name: str
    from_base: str  # aggregate over base rows, for the 1m grain
    from_finer: str  # aggregate over rows of the next finer grain, for 1h and 1d


@dataclass(frozen=True)
class Family:
    name: str
    base: str  # the base table
    array_join: str  # "" or an ARRAY JOIN clause over the base table
    keys: tuple[tuple[str, str], ...]  # (column, expression over base rows) after the bucket
    columns: tuple[Column, ...]
    # (store, lo, hi) -> a subquery of the base rows of [lo, hi) (unix seconds), for families whose
    # rows join several base tables; None reads ``base`` itself
    source: Callable[[Any, int, int], str] | None = None
    # seconds of buckets after a commit's rows that it may change too (rows of a later bucket
    # that look back at earlier rows, e.g. a withdrawal's resolution)
    lookahead: int = 0

    def table(self, grain: str) -> str:
        return f"{self.name}_{grain}"

    @property
    def column_names(self) -> tuple[str, ...]:
        return ("bucket", *(k for k, _ in self.keys), *(c.name for c in self.columns))


def _sum(name: str, expr: str) -> Column:
    return Column(name, expr, f"sum({name})")


SOLVER_STATS = Family(
    "solver_stats", "solver_executions",
    # every execution counts for its solver and for the network-wide row '*'
    "ARRAY JOIN [toString(solver_id), '*'] AS solver",
    (("contract_id", "contract_id"), ("solver_id", "solver")),
    (
        _sum("executions", "count()"),
        _sum("successes", "sum(success)"),
        _sum("failures", "countIf(success = 0)"),
        Column("failure_reasons", "sumMapIf(map(failure, toUInt64(1)), success = 0)", "sumMap(failure_reasons)"),
        _sum("gas_burnt", "sum(toUInt128(gas_burnt))"),
        Column("gas_buckets", f"sumMap(map({bucket_sql('gas_burnt')}, toUInt64(1)))", "sumMap(gas_buckets)"),
        Column("gas_quantiles", f"quantilesExactState({_Q})(gas_burnt)",
               f"quantilesExactMergeState({_Q})(gas_quantiles)"),
        _sum("latency_count", "count(latency_s)"),
        _sum("latency_sum", "sum(ifNull(latency_s, 0))"),
        Column("latency_quantiles", f"quantilesExactState({_Q})(latency_s)",
               f"quantilesExactMergeState({_Q})(latency_quantiles)"),
    ),
)

# An update's kind: its intents' kinds joined with '+' (NEAR Intents: token_diff, ft_withdraw ...),
# else its action (workshop intents carry it when submitted), else ''. Taken from the update itself,
# never from the intent's other updates, so a bucket depends on its own rows only.
KIND_SQL = "if(notEmpty(kinds), arrayStringConcat(arrayMap(k -> toString(k), kinds), '+'), toString(action))"

INTENT_STATS = Family(
    "intent_stats", "intent_updates", "",
    (("contract_id", "contract_id"), ("kind", KIND_SQL), ("status", "status")),
    (
        Column("intents", "uniqExact(intent_id)", "uniqExactMerge(intent_ids)"),
        _sum("updates", "count()"),
        Column("intent_ids", "uniqExactState(intent_id)", "uniqExactMergeState(intent_ids)"),
    ),
)

RECEIPT_STATS = Family(
    "receipt_stats", "receipts", "",
    (("contract_id", "receiver_id"),),
    (
        _sum("receipts", "count()"),
        _sum("successes", "countIf(status = 'success')"),
        _sum("failures", "countIf(status = 'failure')"),
        _sum("gas_burnt", "sum(toUInt128(gas_burnt))"),
        # a block lies in one minute, so distinct heights per minute add up exactly
        _sum("blocks_with_receipts", "uniqExact(block_height)"),
    ),
)

BLOCK_STATS = Family(
    "block_stats", "blocks", "", (),
    (
        _sum("blocks", "count()"),
        Column("min_height", "min(block_height)", "min(min_height)"),
        Column("max_height", "max(block_height)", "max(max_height)"),
    ),
)

FAMILIES: tuple[Family, ...] = (SOLVER_STATS, INTENT_STATS, RECEIPT_STATS, BLOCK_STATS)
BY_NAME = {f.name: f for f in FAMILIES}

GRAINS: tuple[tuple[str, int], ...] = (("1m", 60), ("1h", 3600), ("1d", 86400))
_START_OF = {"1m": "toStartOfMinute", "1h": "toStartOfHour", "1d": "toStartOfDay"}


def start_of(grain: str, column: str) -> str:
    return f"{_START_OF[grain]}({column})"
