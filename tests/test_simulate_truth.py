"""End to end: simulate a lake, index it with ``intents-indexer backfill``, compare every table with truth.json.

The backfill and the queries run in subprocesses (chDB allows one data path per process). The
queries turn the tables into the same shapes as truth.json, so a mismatch names the exact
contract, solver, status or height that differs.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from clitools import cli
from indexer.simulate import SimConfig, generate
from indexer.simulate.options import SolverCollapse, Window

pytestmark = pytest.mark.timeout(600)

# Reads the store back into truth.json's shapes; runs in its own process.
QUERIES = r"""
import json, sys
from collections import defaultdict
from indexer.gas import bucket_sql
from indexer.store.client import Store

s = Store(sys.argv[1], "near_intents")
T = s.table
def q(sql):
    return s.query(sql)[1]
out = {}
n, lo, hi = q(f"SELECT count(), min(block_height), max(block_height) FROM {T('blocks')}")[0]
tracked = q(f"SELECT count() FROM {T('receipts')}")[0][0]
out["blocks"] = {"count": n, "first_height": lo, "last_height": hi, "tracked_receipts": tracked}
out["chain"] = [list(r) for r in q(f"SELECT block_height, block_hash, prev_hash FROM {T('blocks')} "
                                   f"ORDER BY block_height")]
receipts = defaultdict(lambda: {"count": 0, "success": 0, "failure": 0, "gas_burnt": 0, "by_method": {},
                                "failures": {}, "per_block": {}})
for c, m, st, f, cnt, gas in q(f"SELECT receiver_id, method_name, status, failure, count(), "
                               f"sum(gas_burnt) FROM {T('receipts')} GROUP BY ALL"):
    r = receipts[c]
    r["count"] += cnt; r[st] += cnt; r["gas_burnt"] += gas
    r["by_method"].setdefault(m, {"success": 0, "failure": 0})[st] += cnt
    if st == "failure":
        r["failures"][f] = r["failures"].get(f, 0) + cnt
for c, h, cnt in q(f"SELECT receiver_id, block_height, count() FROM {T('receipts')} GROUP BY ALL"):
    receipts[c]["per_block"][str(h)] = cnt
out["receipts"] = receipts
events = defaultdict(dict)
for c, std, ev, st, cnt in q(f"SELECT contract_id, standard, event, execution_status, count() "
                             f"FROM {T('events')} GROUP BY ALL"):
    events[c].setdefault(f"{std}:{ev}", {"success": 0, "failure": 0})[st] = cnt
out["events"] = events
ex = defaultdict(dict)
for c, sol, cnt, ok, gas, lat_n, lat_sum, lat_min, lat_max in q(
        f"SELECT contract_id, solver_id, count(), sum(success), sum(gas_burnt), count(latency_s), sum(latency_s), "
        f"min(latency_s), max(latency_s) FROM {T('solver_executions')} GROUP BY ALL"):
    ex[c][sol] = {"executions": cnt, "successes": ok, "failures": {}, "gas_burnt": gas, "gas_buckets": {},
                  "latency_s": {"count": lat_n, "sum": lat_sum, "min": lat_min, "max": lat_max} if lat_n else None}
for c, sol, f, cnt in q(f"SELECT contract_id, solver_id, failure, count() FROM {T('solver_executions')} "
                        f"WHERE success = 0 GROUP BY ALL"):
    ex[c][sol]["failures"][f] = cnt
for c, sol, b, cnt in q(f"SELECT contract_id, solver_id, {bucket_sql('gas_burnt')}, count() "
                        f"FROM {T('solver_executions')} GROUP BY ALL"):
    ex[c][sol]["gas_buckets"][b] = cnt
out["solver_executions"] = ex
out["execution_rows"] = [
    list(r) for r in q(
        f"SELECT contract_id, solver_id, receipt_id, success, failure, gas_burnt, block_height, latency_s, tx_hash "
        f"FROM {T('solver_executions')}")]
intents = defaultdict(lambda: {"by_status": {}, "failures": {}, "per_minute": {}})
for c, st, f, cnt in q(f"SELECT contract_id, status, failure, count() FROM {T('intents')} GROUP BY ALL"):
    i = intents[c]
    i["by_status"][st] = i["by_status"].get(st, 0) + cnt
    if st in ("failed", "expired"):
        i["failures"][f] = i["failures"].get(f, 0) + cnt
for c, minute, st, cnt in q(
        f"SELECT contract_id, formatDateTime(toStartOfMinute(status_at), '%Y-%m-%d %H:%i:00'), status, count() "
        f"FROM {T('intents')} WHERE status IN ('executed', 'failed', 'completed', 'expired') GROUP BY ALL"):
    intents[c]["per_minute"].setdefault(minute, {})[st] = cnt
for c, n, cnt in q(f"SELECT contract_id, attempts, count() FROM {T('intents')} GROUP BY ALL"):
    intents[c].setdefault("attempts", {})[str(n)] = cnt
out["intents"] = intents
out["intent_rows"] = [list(r) for r in q(
    f"SELECT contract_id, intent_id, status, failure, signer_id, solver_id, attempts FROM {T('intents')}")]
# every lookup row agrees with the update it was written for
out["lookup_mismatches"] = q(
    f"SELECT count() FROM {T('intent_lookups')} l LEFT ANTI JOIN {T('intent_updates')} u "
    f"ON l.contract_id = u.contract_id AND l.intent_id = u.intent_id AND l.block_height = u.block_height "
    f"AND l.update_index = u.update_index AND l.status = u.status")[0][0]
out["lookup_tx"] = q(f"SELECT count() FROM {T('intent_lookups')} WHERE kind = 'tx'")[0][0]
out["updates_with_tx"] = q(f"SELECT count() FROM {T('intent_updates')} WHERE tx_hash != ''")[0][0]
out["dead_letters"] = {k: n for k, n in q(f"SELECT kind, count() FROM {T('dead_letters')} GROUP BY kind")}
print(json.dumps(out, default=str))
"""


def _index(root: Path, truth: dict[str, Any], store: Path) -> dict[str, Any]:
    args = ["backfill", "--source", f"files:{root}", "--from", str(truth["blocks"]["first_height"]),
            "--to", str(truth["blocks"]["last_height"]), "--store", f"chdb://{store}", "--no-progress"]
    for spec in truth["contracts"]:
        args += ["--contract", spec]
    for account in truth["solver_accounts"]:
        args += ["--solver-account", account]
    cli(*args, timeout=300)
    proc = subprocess.run([sys.executable, "-c", QUERIES, f"chdb://{store}"], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


def _nonzero(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v}


def _sorted_counts(d: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    return {k: {s: n for s, n in v.items() if n} for k, v in d.items()}


def assert_agrees(got: dict[str, Any], t: dict[str, Any]) -> None:
    b = t["blocks"]
    assert got["blocks"] == {"count": b["count"], "first_height": b["first_height"], "last_height": b["last_height"],
                             "tracked_receipts": t["totals"]["tracked_receipts"]}
    chain = got["chain"]
    assert chain[0][2] == b["first_prev_hash"] and chain[-1][1] == b["last_hash"]
    assert all(cur[2] == prev[1] for prev, cur in zip(chain, chain[1:]))
    assert {r[0] for r in chain}.isdisjoint(b["skipped_heights"])

    for contract, want in t["receipts"].items():
        have = got["receipts"].get(contract, {"count": 0})
        if not want["count"]:
            assert have["count"] == 0, contract
            continue
        for key in ("count", "success", "failure", "gas_burnt", "failures", "per_block"):
            assert have[key] == want[key], (contract, key)
        assert _sorted_counts(have["by_method"]) == _sorted_counts(want["by_method"]), contract
    assert set(got["receipts"]) <= set(t["receipts"])

    assert {c: _sorted_counts(v) for c, v in got["events"].items()} == \
        {c: _sorted_counts(v) for c, v in t["events"].items() if v}

    assert set(got["solver_executions"]) == set(t["solver_executions"])
    for contract, per in t["solver_executions"].items():
        assert set(got["solver_executions"][contract]) == set(per), contract
        for solver, want in per.items():
            have = got["solver_executions"][contract][solver]
            for key in ("executions", "successes", "failures", "gas_burnt", "gas_buckets"):
                assert have[key] == want[key], (contract, solver, key)
            if want["latency_s"] is None:
                assert have["latency_s"] is None, (contract, solver)
            else:
                for key in ("count", "min", "max"):
                    assert have["latency_s"][key] == pytest.approx(want["latency_s"][key], abs=2e-3), (solver, key)
                tolerance = 2e-3 * want["latency_s"]["count"]  # DateTime64(3) keeps milliseconds
                assert have["latency_s"]["sum"] == pytest.approx(want["latency_s"]["sum"], abs=tolerance)
    # every execution, down to its receipt, gas, height and the transaction hash the indexer resolved
    rows = sorted([c, s, rid, int(ok), f, int(g), int(h), tx]
                  for c, s, rid, ok, f, g, h, _, tx in got["execution_rows"])
    want_rows = sorted([c, s, rid, ok, f, g, h, tx]
                       for c, s, rid, ok, f, g, h, _, tx in t["details"]["solver_executions"])
    assert rows == want_rows

    for contract, want in t["intents"].items():
        have = got["intents"].get(contract, {"by_status": {}, "failures": {}, "per_minute": {}})
        assert have["by_status"] == want["by_status"], contract
        assert have["failures"] == want["failures"], contract
        assert have["per_minute"] == want["per_minute"], contract
        assert have.get("attempts", {}) == want["attempts"], contract
    assert sorted(map(tuple, got["intent_rows"])) == sorted(map(tuple, t["details"]["intents"]))
    assert got["lookup_mismatches"] == 0 and got["lookup_tx"] == got["updates_with_tx"] > 0

    assert got["dead_letters"] == t["dead_letters"]["by_kind"]


SCENARIOS: dict[str, dict[str, Any]] = {
    # mainnet-like defaults, a little of everything that can go wrong in the input
    "defaults": {"blocks": 300, "noise_bytes_per_block": 8000, "malformed_rate": 0.04, "missing_chunk_rate": 0.02,
                 "skip_rate": 0.04},
    # many solvers, several unknown to the indexer, heavy failures, incidents, few shards to decode
    "incidents": {"blocks": 400, "noise_bytes_per_block": 3000, "seed": 11, "solvers": 14, "unlisted_solvers": 4,
                  "intents_per_block": 5.0, "failure_rate": 0.15, "workshop_solvers": 6,
                  "workshop_intents_per_block": 2.0, "expiry_rate": 0.08, "tracked_shard_fraction": 0.0,
                  "solver_collapses": (SolverCollapse("1", 150, 0.2),
                                       SolverCollapse("solver-2.workshop.near", 100, 0.0)),
                  "gas_spikes": (Window(200, 240, 25.0),), "verifier_pauses": (Window(300, 330),)},
    # relayers replaying executed batches and retrying failed ones: executed stays final, attempts add up
    "replays": {"blocks": 300, "seed": 3, "noise_bytes_per_block": 5000, "intents_per_block": 4.0,
                "failure_rate": 0.2, "replay_rate": 0.15, "retry_rate": 0.6, "tracked_shard_fraction": 0.0},
    # another seed and size, long workshop latencies, every shard mentioning tracked accounts
    "busy-shards": {"blocks": 180, "seed": 5, "noise_bytes_per_block": 20000, "tracked_shard_fraction": 1.0,
                    "max_latency_blocks": 12, "intents_per_block": 3.0, "start_height": 190_000_000},
}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_backfill_matches_truth(tmp_path: Path, name: str) -> None:
    root = tmp_path / "lake"
    generate(SimConfig(out=root, **SCENARIOS[name]))
    truth = json.loads((root / "truth.json").read_text())
    assert truth["totals"]["solver_executions"] and truth["totals"]["intents"]
    got = _index(root, truth, tmp_path / "store")
    assert_agrees(got, truth)
