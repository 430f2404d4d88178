"""Gauges from the rollup tables, computed by a background refresh into a cache.

A scrape only turns the cached snapshot into metric families: it never queries the store. Windows
(``5m``, ``1h``, ``24h``) are whole 1-minute buckets ending with the minute of the newest indexed
block (``near_intents_rollup_window_end_timestamp_seconds``), not the wall clock: a backfill shows
the state as of its head, and the lag metrics say how old that is.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from indexer.bridges import DEFAULT_RULES, parse
from indexer.exporter import economics
from indexer.exporter.labels import ALL, OTHER, SolverLabels
from indexer.rollup.families import QUANTILES
from indexer.store.client import Store

WINDOWS: tuple[tuple[str, int], ...] = (("5m", 300), ("1h", 3600), ("24h", 86400))
_Q = ", ".join(str(q) for q in QUANTILES)


@dataclass
class Snapshot:
    window_end: int | None = None  # unix seconds of the newest minute bucket
    by_status: list[tuple[str, str, int]] = field(default_factory=list)
    # (contract, solver label, window) -> (executions, successes, [gas p50, p90, p99])
    solvers: dict[tuple[str, str, str], tuple[int, int, list[float]]] = field(default_factory=dict)
    throughput: dict[tuple[str, str], float] = field(default_factory=dict)
    economics: economics.Economics = field(default_factory=economics.Economics)


def _quote(s: str) -> str:
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"


def read_snapshot(store: Store, labels: SolverLabels, top_tokens: int = 20,
                  bridge_rules: list[tuple[str, str]] | None = None) -> Snapshot:
    """Everything the gauges show, from the rollup tables (a few small queries)."""
    T = store.table
    end = store.scalar(f"SELECT toUnixTimestamp(max(bucket)) FROM {T('block_stats_1m')}")
    snap = Snapshot()
    snap.by_status = [(c, s, int(n)) for c, s, n in store.query(
        f"SELECT toString(contract_id), toString(status), sum(intents) FROM {T('intent_stats_1d')} "
        f"GROUP BY ALL ORDER BY ALL")[1]]
    if not end:
        return snap
    snap.window_end = int(end)
    labels.set_top(_top(store, snap.window_end, labels.top_n))
    top_list = ", ".join(_quote(f"{c}/{s}") for c, s in sorted(labels.top_pairs())) or "''"
    contracts = [c for (c,) in store.query(
        f"SELECT DISTINCT toString(contract_id) FROM {T('receipt_stats_1d')} ORDER BY 1")[1]]
    for window, seconds in WINDOWS:
        span = f"bucket > toDateTime({snap.window_end - seconds}, 'UTC') AND bucket <= toDateTime({snap.window_end}, 'UTC')"
        for c, label, n, ok, q in store.query(
                f"SELECT toString(contract_id) AS c, multiIf(solver_id = '{ALL}', '{ALL}', "
                f"concat(c, '/', toString(solver_id)) IN ({top_list}), toString(solver_id), '{OTHER}') AS label, "
                f"sum(executions), sum(successes), quantilesExactMerge({_Q})(gas_quantiles) "
                f"FROM {T('solver_stats_1m')} WHERE {span} GROUP BY c, label")[1]:
            snap.solvers[(c, label, window)] = (int(n), int(ok), [float(x) for x in q])
        for contract in contracts:
            for solver in [ALL, *sorted(labels.top(contract))]:
                snap.solvers.setdefault((contract, solver, window), (0, 0, []))
        receipts = dict(store.query(f"SELECT toString(contract_id), sum(receipts) FROM {T('receipt_stats_1m')} "
                                    f"WHERE {span} GROUP BY 1")[1])
        for contract in contracts:
            snap.throughput[(contract, window)] = int(receipts.get(contract, 0)) / (seconds / 60)
    snap.economics = economics.read_economics(
        store, snap.window_end, WINDOWS, top_tokens, parse(DEFAULT_RULES) if bridge_rules is None else bridge_rules,
        {c: labels.top(c) for c in contracts})
    return snap


def _top(store: Store, end: int, n: int) -> dict[str, list[str]]:
    rows = store.query(
        f"SELECT toString(contract_id), toString(solver_id), sum(executions) AS n FROM {store.table('solver_stats_1m')} "
        f"WHERE bucket > toDateTime({end - 86400}, 'UTC') AND bucket <= toDateTime({end}, 'UTC') "
        f"AND solver_id != '{ALL}' GROUP BY 1, 2 ORDER BY 1, n DESC, 2")[1]
    out: dict[str, list[str]] = {}
    for contract, solver, _ in rows:
        if len(out.setdefault(contract, [])) < n:
            out[contract].append(solver)
    return out


class RollupGauges(Collector):
    """A collector serving the latest snapshot; ``refresh`` replaces it.

    ``refresh`` also renders the snapshot to exposition text once, which ``text`` returns: the
    daemon's /metrics serves that text (``metrics.SNAPSHOTS``) so a scrape does not format a
    thousand unchanged samples again.
    """

    def __init__(self, labels: SolverLabels, top_tokens: int = 20, bridge_rules: list[tuple[str, str]] | None = None):
        self.labels = labels
        self.top_tokens = top_tokens
        self.bridge_rules = bridge_rules
        self._snapshot = Snapshot()
        self._lock = threading.Lock()
        self._text = self._render()

    def refresh(self, store: Store) -> Snapshot:
        snap = read_snapshot(store, self.labels, self.top_tokens, self.bridge_rules)
        with self._lock:
            self._snapshot = snap
        text = self._render()
        with self._lock:
            if self._snapshot is snap:  # a refresh that started later may have rendered already
                self._text = text
        return snap

    def text(self) -> bytes:
        """The latest snapshot in the text exposition format."""
        return self._text

    def _render(self) -> bytes:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(self)
        return generate_latest(registry)

    def describe(self) -> Iterator[Any]:
        return iter(())  # families are built at collect time; nothing to check at registration

    def collect(self) -> Iterator[Any]:
        with self._lock:
            snap = self._snapshot
        end = GaugeMetricFamily("near_intents_rollup_window_end_timestamp_seconds",
                                "End of the rollup gauges' windows: the minute of the newest indexed block")
        if snap.window_end is not None:
            end.add_metric([], snap.window_end + 60)
        yield end
        by_status = GaugeMetricFamily("near_intents_by_status",
                                      "Intents that reached each status, all time (from intent_stats_1d)",
                                      labels=["contract", "status"])
        for c, s, n in snap.by_status:
            by_status.add_metric([c, s], n)
        yield by_status
        yield from _solver_families(snap)
        tp = GaugeMetricFamily("near_intents_throughput_per_minute",
                               "Receipts executed by the contract per minute over the window",
                               labels=["contract", "window"])
        for (c, w), v in sorted(snap.throughput.items()):
            tp.add_metric([c, w], v)
        yield tp
        yield from economics.families(snap.economics)


def _solver_families(snap: Snapshot) -> Iterator[Any]:
    ratio = GaugeMetricFamily("near_intents_solver_success_ratio",
                              "Successful solver executions / executions over the window",
                              labels=["contract", "solver", "window"])
    execs = GaugeMetricFamily("near_intents_solver_executions", "Solver executions over the window, by outcome",
                              labels=["contract", "solver", "window", "outcome"])
    gas = GaugeMetricFamily("near_intents_solver_gas_burnt",
                            "Gas burnt per solver execution over the window: exact quantiles (gas units)",
                            labels=["contract", "solver", "window", "quantile"])
    for (c, s, w), (n, ok, q) in sorted(snap.solvers.items()):
        execs.add_metric([c, s, w, "success"], ok)
        execs.add_metric([c, s, w, "failure"], n - ok)
        if n:
            ratio.add_metric([c, s, w], ok / n)
            for level, value in zip(QUANTILES, q):
                gas.add_metric([c, s, w, str(level)], value)
    yield from (ratio, execs, gas)
