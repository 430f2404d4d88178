"""Gauges of solver economics and bridge health, from the token_flows, solver_costs and bridge_flows
rollups (README "Token flows and bridges"), read by the gauge refresh like the other rollup gauges.

Labels stay bounded: per contract, the top N tokens by settlements and the top N bridges by
withdrawals over 24h keep their own label, the rest are summed as ``other``; solvers use the
solver labels of the other gauges. Amounts are exact Int256 sums in the tables and floats here.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.core import GaugeMetricFamily

from indexer.bridges import bridge_sql
from indexer.exporter.labels import ALL, OTHER
from indexer.rollup.families import QUANTILES
from indexer.store.client import Store

_Q = ", ".join(str(q) for q in QUANTILES)
OUTCOMES = ("started", "ok", "refunded", "failed")
DAY = 86400


@dataclass
class Economics:
    # (contract, token label, window) -> fees; (contract, token label, side, window) -> volume
    fees: dict[tuple[str, str, str], float] = field(default_factory=dict)
    volume: dict[tuple[str, str, str, str], float] = field(default_factory=dict)
    # (contract, solver label, window) -> (settlements, intents, gas burnt)
    costs: dict[tuple[str, str, str], tuple[int, int, int]] = field(default_factory=dict)
    # (contract, bridge label, window) -> {outcome: count}, [p50, p90, p99] or None, deposits
    withdrawals: dict[tuple[str, str, str], dict[str, int]] = field(default_factory=dict)
    resolve: dict[tuple[str, str, str], list[float]] = field(default_factory=dict)
    deposits: dict[tuple[str, str, str], int] = field(default_factory=dict)


def _quote(s: str) -> str:
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _span(end: int, seconds: int) -> str:
    return f"bucket > toDateTime({end - seconds}, 'UTC') AND bucket <= toDateTime({end}, 'UTC')"


def _top(store: Store, sql: str, n: int) -> list[str]:
    """``contract/key`` of the top n keys per contract (``sql`` yields contract, key, weight, ordered)."""
    out: dict[str, list[str]] = {}
    for contract, key, _ in store.query(sql)[1]:
        if len(out.setdefault(contract, [])) < n:
            out[contract].append(key)
    return [f"{c}/{k}" for c, keys in out.items() for k in keys]


def _label(expr: str, top: list[str]) -> str:
    listed = ", ".join(_quote(t) for t in sorted(top)) or "''"
    return f"if(concat(c, '/', {expr}) IN ({listed}), {expr}, '{OTHER}')"


def read_economics(store: Store, end: int, windows: tuple[tuple[str, int], ...], top_n: int,
                   bridge_rules: list[tuple[str, str]], solver_top: dict[str, set[str]]) -> Economics:
    T = store.table
    eco = Economics()
    top_tokens = _top(store, f"SELECT toString(contract_id), token, sum(settlements) AS n FROM {T('token_flows_1m')} "
                             f"WHERE {_span(end, DAY)} GROUP BY 1, 2 ORDER BY 1, n DESC, 2", top_n)
    bridge = bridge_sql(bridge_rules, "toString(token_contract)")
    top_bridges = _top(store, f"SELECT toString(contract_id), {bridge} AS b, sum(withdrawals + deposits) AS n "
                              f"FROM {T('bridge_flows_1m')} WHERE {_span(end, DAY)} GROUP BY 1, 2 "
                              f"ORDER BY 1, n DESC, 2", top_n)
    solvers = [f"{c}/{s}" for c, ss in solver_top.items() for s in ss]
    token = _label("token", top_tokens)
    bridge_label = _label(bridge, top_bridges)
    solver = f"if(solver_id = '{ALL}', '{ALL}', {_label('toString(solver_id)', solvers)})"
    for window, seconds in windows:
        span = _span(end, seconds)
        for c, t, fees, v_in, v_out in store.query(
                f"SELECT toString(contract_id) AS c, {token} AS t, sum(fees), sum(volume_in), sum(volume_out) "
                f"FROM {T('token_flows_1m')} WHERE {span} GROUP BY c, t")[1]:
            eco.fees[(c, t, window)] = float(fees)
            eco.volume[(c, t, "in", window)] = float(v_in)
            eco.volume[(c, t, "out", window)] = float(v_out)
        for c, s, n, k, gas in store.query(
                f"SELECT toString(contract_id) AS c, {solver} AS s, sum(settlements), sum(intents), sum(gas_burnt) "
                f"FROM {T('solver_costs_1m')} WHERE {span} GROUP BY c, s")[1]:
            eco.costs[(c, s, window)] = (int(n), int(k), int(gas))
        for c, b, w, ok, ref, bad, timed, q, dep in store.query(
                f"SELECT toString(contract_id) AS c, {bridge_label} AS b, sum(withdrawals), sum(resolved_ok), "
                f"sum(refunded), sum(failed), sum(resolve_timed), quantilesExactMerge({_Q})(resolve_quantiles), "
                f"sum(deposits) FROM {T('bridge_flows_1m')} WHERE {span} GROUP BY c, b")[1]:
            eco.withdrawals[(c, b, window)] = {"started": int(w), "ok": int(ok), "refunded": int(ref),
                                               "failed": int(bad)}
            if timed:
                eco.resolve[(c, b, window)] = [float(x) for x in q]
            eco.deposits[(c, b, window)] = int(dep)
        # every bridge seen in 24h has a series in every window, zero when quiet, so ratios and
        # alerts see a value rather than an absent series
        for key in top_bridges:
            c, b = key.split("/", 1)
            eco.withdrawals.setdefault((c, b, window), dict.fromkeys(OUTCOMES, 0))
            eco.deposits.setdefault((c, b, window), 0)
    return eco


def families(eco: Economics) -> Iterator[Any]:
    fees = GaugeMetricFamily("near_intents_fees_collected",
                             "Fees collected (token_diff fees_collected of successful receipts) over the window, "
                             "in the token's smallest unit", labels=["contract", "token", "window"])
    for (c, t, w), v in sorted(eco.fees.items()):
        fees.add_metric([c, t, w], v)
    volume = GaugeMetricFamily("near_intents_volume",
                               "Traded volume over the window in the token's smallest unit: the sum of the positive "
                               "(side=in) and of the negative (side=out, as a positive number) token_diff amounts",
                               labels=["contract", "token", "side", "window"])
    for (c, t, side, w), v in sorted(eco.volume.items()):
        volume.add_metric([c, t, side, w], v)
    per_settlement = GaugeMetricFamily("near_intents_solver_gas_per_settlement",
                                       "Gas burnt per successful settlement of the solver over the window (gas units)",
                                       labels=["contract", "solver", "window"])
    per_intent = GaugeMetricFamily("near_intents_solver_gas_per_intent",
                                   "Gas burnt per intent settled by the solver over the window (gas units)",
                                   labels=["contract", "solver", "window"])
    for (c, s, w), (n, k, gas) in sorted(eco.costs.items()):
        if n:
            per_settlement.add_metric([c, s, w], gas / n)
        if k:
            per_intent.add_metric([c, s, w], gas / k)
    withdrawals = GaugeMetricFamily("near_intents_withdrawals",
                                    "Withdrawals over the window per bridge: started, and resolutions by outcome "
                                    "(ok, refunded, failed)", labels=["contract", "bridge", "outcome", "window"])
    for (c, b, w), counts in sorted(eco.withdrawals.items()):
        for outcome in OUTCOMES:
            withdrawals.add_metric([c, b, outcome, w], counts[outcome])
    resolve = GaugeMetricFamily("near_intents_withdrawal_resolve_seconds",
                                "Seconds from a withdrawal to its resolve callback over the window: exact quantiles",
                                labels=["contract", "bridge", "quantile", "window"])
    for (c, b, w), q in sorted(eco.resolve.items()):
        for level, value in zip(QUANTILES, q):
            resolve.add_metric([c, b, str(level), w], value)
    deposits = GaugeMetricFamily("near_intents_deposits", "Deposits (mt_mint other than refunds) over the window",
                                 labels=["contract", "bridge", "window"])
    for (c, b, w), n in sorted(eco.deposits.items()):
        deposits.add_metric([c, b, w], n)
    yield from (fees, volume, per_settlement, per_intent, withdrawals, resolve, deposits)

