"""Simulated lakes indexed in this process, and rollups computed again in Python from the base rows.

The expected rollups are computed here from the raw base rows (not with the SQL the jobs use), so a
bucket the jobs forgot, a stale bucket or a double-counted row shows as a difference naming the
table, grain, bucket and key.
"""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from indexer.config import Settings
from indexer.gas import bucket_label
from indexer.pipeline import Pipeline, plan_backfill
from indexer.rollup.families import GRAINS, QUANTILES
from indexer.simulate import SimConfig, generate
from indexer.sources import open_source
from indexer.store.client import Store

ROLLUP_TABLES = [f"{n}_{g}" for n in ("solver_stats", "intent_stats", "receipt_stats", "block_stats")
                 for g, _ in GRAINS]
KEYS = {"solver_stats": "bucket, contract_id, solver_id", "intent_stats": "bucket, contract_id, kind, status",
        "receipt_stats": "bucket, contract_id", "block_stats": "bucket"}


def simulate(root: Path, **options: Any) -> dict[str, Any]:
    generate(SimConfig(out=root, **options))
    return json.loads((root / "truth.json").read_text())


def settings_for(root: Path, truth: dict[str, Any]) -> Settings:
    return Settings(source=f"files:{root}", contracts=list(truth["contracts"]),
                    solver_accounts=list(truth["solver_accounts"]), batch_blocks=40)


def backfill(store: Store, settings: Settings, low: int, high: int, *, reindex: bool = False) -> None:
    async def go() -> None:
        source = open_source(settings)
        async with source:
            plan = await plan_backfill(store, settings, source, low, high, reindex=reindex)
            if plan is not None:
                await Pipeline(settings, store, source, plan).run(asyncio.Event())

    asyncio.run(go())


def stop_merges(store: Store, tables: list[str]) -> None:
    for t in tables:
        store.command(f"ALTER TABLE {store.table(t)} MODIFY SETTING max_bytes_to_merge_at_max_space_in_pool = 1, "
                      "max_bytes_to_merge_at_min_space_in_pool = 1")


def duplicates(store: Store) -> dict[str, int]:
    out = {}
    for t in ROLLUP_TABLES:
        n, u = store.query(f"SELECT count(), uniqExact({KEYS[t.rsplit('_', 1)[0]]}) FROM {store.table(t)}")[1][0]
        out[t] = int(n) - int(u)
    return out


def _q(values: list[Any]) -> list[Any] | None:
    """ClickHouse's quantileExact: the element at floor(level * n) of the sorted values."""
    if not values:
        return None
    s = sorted(values)
    return [s[min(int(level * len(s)), len(s) - 1)] for level in QUANTILES]


def _bucket(ts: int, seconds: int) -> int:
    return ts // seconds * seconds


def expected(store: Store) -> dict[str, dict[tuple, dict[str, Any]]]:
    """Every rollup table's rows, computed in Python from the base tables."""
    T = store.table
    ex = store.query(f"SELECT contract_id, toString(solver_id), toUnixTimestamp(block_timestamp), success, failure, gas_burnt, "
                     f"latency_s FROM {T('solver_executions')}")[1]
    iu = store.query(f"SELECT contract_id, arrayMap(k -> toString(k), kinds), toString(action), toString(status), "
                     f"intent_id, toUnixTimestamp(block_timestamp) FROM {T('intent_updates')}")[1]
    rc = store.query(f"SELECT toString(receiver_id), toUnixTimestamp(block_timestamp), toString(status), gas_burnt, block_height "
                     f"FROM {T('receipts')}")[1]
    bl = store.query(f"SELECT toUnixTimestamp(block_timestamp), block_height FROM {T('blocks')}")[1]
    out: dict[str, dict[tuple, dict[str, Any]]] = {}
    for grain, seconds in GRAINS:
        solver: dict[tuple, dict[str, Any]] = defaultdict(lambda: {
            "executions": 0, "successes": 0, "failures": 0, "failure_reasons": defaultdict(int), "gas_burnt": 0,
            "gas_buckets": defaultdict(int), "gas": [], "latency": []})
        for contract, sol, ts, ok, failure, gas, lat in ex:
            for who in (sol, "*"):
                r = solver[(_bucket(ts, seconds), contract, who)]
                r["executions"] += 1
                r["successes"] += ok
                if not ok:
                    r["failures"] += 1
                    r["failure_reasons"][failure] += 1
                r["gas_burnt"] += gas
                r["gas_buckets"][bucket_label(gas)] += 1
                r["gas"].append(gas)
                if lat is not None:
                    r["latency"].append(lat)
        out[f"solver_stats_{grain}"] = {k: {
            "executions": r["executions"], "successes": r["successes"], "failures": r["failures"],
            "failure_reasons": dict(r["failure_reasons"]), "gas_burnt": r["gas_burnt"],
            "gas_buckets": dict(r["gas_buckets"]), "gas_q": _q(r["gas"]), "latency_count": len(r["latency"]),
            "latency_sum": sum(r["latency"]), "latency_q": _q(r["latency"])} for k, r in solver.items()}
        intents: dict[tuple, dict[str, Any]] = defaultdict(lambda: {"ids": set(), "updates": 0})
        for contract, kinds, action, status, intent_id, ts in iu:
            r = intents[(_bucket(ts, seconds), contract, "+".join(kinds) if kinds else action, status)]
            r["ids"].add(intent_id)
            r["updates"] += 1
        out[f"intent_stats_{grain}"] = {k: {"intents": len(r["ids"]), "updates": r["updates"]}
                                        for k, r in intents.items()}
        receipts: dict[tuple, dict[str, Any]] = defaultdict(lambda: {
            "receipts": 0, "successes": 0, "failures": 0, "gas_burnt": 0, "heights": set()})
        for contract, ts, status, gas, height in rc:
            r = receipts[(_bucket(ts, seconds), contract)]
            r["receipts"] += 1
            r["successes"] += status == "success"
            r["failures"] += status == "failure"
            r["gas_burnt"] += gas
            r["heights"].add(height)
        out[f"receipt_stats_{grain}"] = {k: {"receipts": r["receipts"], "successes": r["successes"],
                                             "failures": r["failures"], "gas_burnt": r["gas_burnt"],
                                             "blocks_with_receipts": len(r["heights"])} for k, r in receipts.items()}
        blocks: dict[tuple, list[int]] = defaultdict(list)
        for ts, height in bl:
            blocks[(_bucket(ts, seconds),)].append(height)
        out[f"block_stats_{grain}"] = {k: {"blocks": len(h), "min_height": min(h), "max_height": max(h)}
                                       for k, h in blocks.items()}
    return out


def stored(store: Store) -> dict[str, dict[tuple, dict[str, Any]]]:
    """Every rollup table's rows as stored, states finalized."""
    T = store.table
    out: dict[str, dict[tuple, dict[str, Any]]] = {}
    for grain, _ in GRAINS:
        rows = store.query(
            f"SELECT toUnixTimestamp(bucket), toString(contract_id), toString(solver_id), executions, successes, "
            f"failures, failure_reasons, gas_burnt, gas_buckets, finalizeAggregation(gas_quantiles), latency_count, "
            f"latency_sum, finalizeAggregation(latency_quantiles) FROM {T(f'solver_stats_{grain}')}")[1]
        table: dict[tuple, dict[str, Any]] = {}
        for b, c, s, n, ok, bad, reasons, gas, gb, gq, ln, ls, lq in rows:
            assert (b, c, s) not in table, ("twice", grain, b, c, s)
            table[(b, c, s)] = {"executions": n, "successes": ok, "failures": bad, "failure_reasons": dict(reasons),
                                "gas_burnt": int(gas), "gas_buckets": dict(gb), "gas_q": list(gq),
                                "latency_count": ln, "latency_sum": ls,
                                "latency_q": list(lq) if ln else None}
        out[f"solver_stats_{grain}"] = table
        rows = store.query(f"SELECT toUnixTimestamp(bucket), toString(contract_id), toString(kind), toString(status), "
                           f"intents, updates, finalizeAggregation(intent_ids) FROM {T(f'intent_stats_{grain}')}")[1]
        table = {}
        for b, c, k, s, n, u, n_state in rows:
            assert n == n_state, ("intents column differs from its state", grain, b, c, k, s)
            table[(b, c, k, s)] = {"intents": n, "updates": u}
        out[f"intent_stats_{grain}"] = table
        rows = store.query(f"SELECT toUnixTimestamp(bucket), toString(contract_id), receipts, successes, failures, "
                           f"gas_burnt, blocks_with_receipts FROM {T(f'receipt_stats_{grain}')}")[1]
        out[f"receipt_stats_{grain}"] = {(b, c): {"receipts": n, "successes": ok, "failures": bad,
                                                  "gas_burnt": int(g), "blocks_with_receipts": bw}
                                         for b, c, n, ok, bad, g, bw in rows}
        rows = store.query(f"SELECT toUnixTimestamp(bucket), blocks, min_height, max_height "
                           f"FROM {T(f'block_stats_{grain}')}")[1]
        out[f"block_stats_{grain}"] = {(b,): {"blocks": n, "min_height": lo, "max_height": hi}
                                       for b, n, lo, hi in rows}
    return out


def assert_rollups_exact(store: Store) -> None:
    want = expected(store)
    got = stored(store)
    for table in ROLLUP_TABLES:
        w = want[table]
        g = got[table]
        assert set(g) == set(w), (table, "missing", sorted(set(w) - set(g))[:5], "extra", sorted(set(g) - set(w))[:5])
        for key in w:
            have, need = dict(g[key]), dict(w[key])
            if "latency_sum" in need:  # float sums in another order differ in the last bits
                assert abs(have.pop("latency_sum") - need.pop("latency_sum")) < 1e-6, (table, key)
            assert have == need, (table, key, have, need)
