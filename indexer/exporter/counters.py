"""Counters and histograms counted from committed rows, as the store writer commits them.

The writer hands over only the rows a batch wrote (never those it left to another stream), so a
row is counted once by the process that stored it. Counters restart from zero with the process
(Prometheus' ``rate`` handles the reset); the rollup gauges are the store's view and come back
after a restart.

They change only when a batch is committed, so ``observe`` renders their exposition text right
after counting (``text`` returns it): a scrape serves that text instead of formatting a thousand
histogram buckets per scrape, and it is never older than the last commit.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from decimal import Decimal
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from indexer.decode.rows import COLUMNS, Rows
from indexer.exporter.labels import SolverLabels
from indexer.gas import BUCKET_BOUNDS_GAS

TERMINAL = frozenset({"executed", "completed", "failed", "expired"})
SECONDS_BUCKETS = (0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800)
FIRST_SEEN_LIMIT = 200_000  # intents remembered between their first and their terminal update

REGISTRY = CollectorRegistry(auto_describe=True)  # served through ``text``, see above

INTENTS_PROCESSED = Counter(
    "near_intents_intents_processed_total", "Intent updates committed, by contract, kind and status reached",
    ["contract", "kind", "status"], registry=REGISTRY,
)
GAS_USED = Histogram(
    "near_intents_gas_used", "Gas burnt by the receipt that took an intent to a terminal status (gas units)",
    ["contract", "kind"], buckets=BUCKET_BOUNDS_GAS, registry=REGISTRY,
)
PROCESSING_SECONDS = Histogram(
    "near_intents_processing_seconds",
    "Block time from an intent's first committed update (submission, verification) to its terminal status",
    ["contract"], buckets=SECONDS_BUCKETS, registry=REGISTRY,
)
SOLVER_EXECUTION_SECONDS = Histogram(
    "near_intents_solver_execution_seconds", "Solver executions' latency (workshop: verify to solve), by solver",
    ["contract", "solver"], buckets=SECONDS_BUCKETS, registry=REGISTRY,
)

_IU = {c: i for i, c in enumerate(COLUMNS["intent_updates"])}
_SE = {c: i for i, c in enumerate(COLUMNS["solver_executions"])}


_render_lock = threading.Lock()
_text = generate_latest(REGISTRY)


def text() -> bytes:
    """These counters and histograms in the text exposition format, as of the last commit."""
    return _text


def _rerender() -> None:
    global _text
    with _render_lock:  # two writers committing at once must not leave the older rendering
        _text = generate_latest(REGISTRY)


def kind_of(kinds: list[str], action: str) -> str:
    """The same kind as the intent_stats rollup: kinds joined with '+', else the action."""
    return "+".join(kinds) if kinds else (action or "")


def _seconds(ts: Any) -> float:
    return float(Decimal(str(ts)))


class CommittedRows:
    """Observes committed batches (register ``observe`` in ``metrics.COMMITTED_ROWS_OBSERVERS``)."""

    def __init__(self, labels: SolverLabels):
        self.labels = labels
        self._first_seen: OrderedDict[tuple[str, str], float] = OrderedDict()

    def observe(self, rows: Rows) -> None:
        for row in rows.tables["intent_updates"]:
            self._intent_update(row)
        for row in rows.tables["solver_executions"]:
            latency = row[_SE["latency_s"]]
            if latency is not None:
                contract = row[_SE["contract_id"]]
                solver = self.labels.label(contract, row[_SE["solver_id"]])
                SOLVER_EXECUTION_SECONDS.labels(contract=contract, solver=solver).observe(latency)
        if rows.tables["intent_updates"] or rows.tables["solver_executions"]:
            _rerender()

    def _intent_update(self, row: list[Any]) -> None:
        contract, status = row[_IU["contract_id"]], row[_IU["status"]]
        kind = kind_of(row[_IU["kinds"]], row[_IU["action"]])
        INTENTS_PROCESSED.labels(contract=contract, kind=kind, status=status).inc()
        key = (contract, row[_IU["intent_id"]])
        ts = _seconds(row[_IU["block_timestamp"]])
        if status not in TERMINAL:
            if key not in self._first_seen:
                self._first_seen[key] = ts
                if len(self._first_seen) > FIRST_SEEN_LIMIT:
                    self._first_seen.popitem(last=False)
            return
        GAS_USED.labels(contract=contract, kind=kind).observe(row[_IU["gas_burnt"]])
        first = self._first_seen.pop(key, None)
        if first is not None:
            PROCESSING_SECONDS.labels(contract=contract).observe(max(ts - first, 0.0))
