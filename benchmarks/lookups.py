"""Intent lookups at scale: p50/p99 of each lookup of ``indexer.lookups`` on the embedded store.

    python benchmarks/lookups.py [--store PATH] [--lake PATH] [--blocks 10000] [--samples 200]

Without ``--store`` it simulates a lake (``--blocks`` heights of dense intents.near and workshop
traffic with replays and retries: about 1M intents and 3M intent updates at the defaults) unless
``--lake`` names one, backfills it into a fresh embedded store with ``intents-indexer
backfill``, and then measures, in a fresh process (one chDB path per process):

* by id: ``lookups.intent`` of random intent hashes / workshop ids;
* by tx hash: ``lookups.by_tx`` of random transactions that carried intents;
* account's newest 50: ``lookups.by_account`` of the busiest accounts and of random ones;
* solver's newest 50: ``lookups.by_solver`` of every solver;
* counts by status for a day: ``lookups.status_counts`` per hour over a day holding all the data;
* and, for comparison, the same questions asked of the ``intents`` view (a GROUP BY over all
  updates, then a filter): what answered them before the lookup tables.

Prints per lookup: samples, p50, p99 and max in ms, and the process RSS before and after.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# dense traffic: ~34 intents.near intents and ~65 workshop intents (4 updates each) per block
SIMULATE = ["--intents-per-block", "17", "--workshop-intents-per-block", "67", "--noise-bytes-per-block", "0",
            "--replay-rate", "0.05", "--retry-rate", "0.5", "--no-truth-details"]


def rss_mb() -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def build(lake: Path, store: Path, blocks: int) -> None:
    if not (lake / "truth.json").exists():
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "indexer", "simulate", "--out", str(lake), "--blocks", str(blocks),
                        "--quiet", "--force", *SIMULATE], check=True)
        print(f"simulated {blocks} heights in {time.perf_counter() - started:.0f} s", flush=True)
    truth = json.loads((lake / "truth.json").read_text())
    args = [sys.executable, "-m", "indexer", "backfill", "--source", f"files:{lake}", "--store", f"chdb://{store}",
            "--from", str(truth["blocks"]["first_height"]), "--to", str(truth["blocks"]["last_height"]),
            "--no-progress", "--log-level", "warning"]
    for spec in truth["contracts"]:
        args += ["--contract", spec]
    for account in truth["solver_accounts"]:
        args += ["--solver-account", account]
    started = time.perf_counter()
    subprocess.run(args, check=True)
    print(f"backfilled {truth['totals']['intents']:,} intents in {time.perf_counter() - started:.0f} s", flush=True)


def _timed(fn: Callable[[], Any], samples: list[Any], run: Callable[[Any], Any]) -> dict[str, float]:
    fn()  # warm: the first query of a kind loads marks and caches
    times = []
    for s in samples:
        started = time.perf_counter()
        run(s)
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return {"n": len(times), "p50": times[len(times) // 2], "p99": times[min(len(times) - 1, int(len(times) * 0.99))],
            "max": times[-1]}


def measure(store_path: Path, n: int, baseline: bool) -> None:
    from indexer import logs, lookups
    from indexer.store.client import Store

    logs.configure("json", "warning")
    store = Store(f"chdb://{store_path}")
    t = store.table
    rng = random.Random(5)
    col = lambda sql: [r[0] for r in store.query(sql)[1]]  # noqa: E731
    size = store.query(f"SELECT count(), uniqExact(contract_id, intent_id) FROM {t('intent_updates')}")[1][0]
    lookup_rows = store.scalar(f"SELECT count() FROM {t('intent_lookups')}")
    print(f"store: {size[1]:,} intents, {size[0]:,} intent updates, {lookup_rows:,} lookup rows", flush=True)
    ids = col(f"SELECT intent_id FROM {t('intent_updates')} ORDER BY cityHash64(intent_id) LIMIT {n}")
    txs = col(f"SELECT tx_hash FROM {t('intent_updates')} WHERE tx_hash != '' ORDER BY cityHash64(tx_hash) LIMIT {n}")
    busy = col(f"SELECT a FROM {t('intent_updates')} ARRAY JOIN accounts AS a GROUP BY a ORDER BY count() DESC "
               f"LIMIT {n // 4}")
    accounts = busy + col(f"SELECT a FROM {t('intent_updates')} ARRAY JOIN accounts AS a GROUP BY a "
                          f"ORDER BY cityHash64(a) LIMIT {n - len(busy)}")
    solvers = col(f"SELECT DISTINCT solver_id FROM {t('intent_updates')} WHERE solver_id != ''")
    solvers = [rng.choice(solvers) for _ in range(n)]
    first = store.scalar(f"SELECT min(block_timestamp) FROM {t('intent_updates')}")
    days = [(c, first.replace(tzinfo=None) - dt.timedelta(minutes=rng.randint(0, 600)))
            for c in ("intents.near", "verifier.workshop.near") for _ in range(n // 2)]

    results: dict[str, dict[str, float]] = {}
    before = rss_mb()
    results["by id"] = _timed(lambda: lookups.intent(store, ids[0]), ids, lambda i: lookups.intent(store, i))
    results["by tx hash"] = _timed(lambda: lookups.by_tx(store, txs[0]), txs, lambda x: lookups.by_tx(store, x))
    results["account's newest 50"] = _timed(lambda: lookups.by_account(store, accounts[0]), accounts,
                                            lambda a: lookups.by_account(store, a, 50))
    results["solver's newest 50"] = _timed(lambda: lookups.by_solver(store, solvers[0]), solvers,
                                           lambda s: lookups.by_solver(store, s, 50))
    results["counts by status, one day"] = _timed(
        lambda: lookups.status_counts(store, *days[0], days[0][1] + dt.timedelta(days=1)), days,
        lambda d: lookups.status_counts(store, d[0], d[1], d[1] + dt.timedelta(days=1), 3600))
    after = rss_mb()
    for name, r in results.items():
        print(f"{name:32s} n={r['n']:4d}  p50 {r['p50']:8.1f} ms  p99 {r['p99']:8.1f} ms  max {r['max']:8.1f} ms",
              flush=True)
    print(f"RSS {before:.0f} MB before the lookups, {after:.0f} MB after", flush=True)
    if not baseline:
        return
    # the same questions asked of the intents view (GROUP BY over every update), a few samples each
    view = t("intents")
    k = max(3, n // 40)
    old = {
        "by id (view)": (ids[:k], f"SELECT * FROM {view} WHERE intent_id = {{v:String}}"),
        "by tx hash (view)": (txs[:k], f"SELECT * FROM {view} WHERE tx_hash = {{v:String}}"),
        "account's newest 50 (view)": (accounts[:k], f"SELECT * FROM {view} WHERE signer_id = {{v:String}} "
                                                     "OR has(accounts, {v:String}) ORDER BY last_seen DESC LIMIT 50"),
        "solver's newest 50 (view)": (solvers[:k], f"SELECT * FROM {view} WHERE solver_id = {{v:String}} "
                                                   "ORDER BY last_seen DESC LIMIT 50"),
        "counts by status, one day (view)": ([d[0] for d in days[:k]],
                                             f"SELECT toStartOfHour(status_at) h, status, count() FROM {view} "
                                             "WHERE contract_id = {v:String} GROUP BY h, status"),
    }
    for name, (samples, sql) in old.items():
        r = _timed(lambda: None, samples, lambda v: store.query(sql, {"v": v}))
        print(f"{name:32s} n={r['n']:4d}  p50 {r['p50']:8.1f} ms  p99 {r['p99']:8.1f} ms  max {r['max']:8.1f} ms",
              flush=True)
    print(f"RSS {rss_mb():.0f} MB after the view queries", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--store", type=Path, help="an indexed embedded store (chDB path); built when absent")
    p.add_argument("--lake", type=Path, help="a simulated lake to backfill (default benchmarks/out/lookups-lake)")
    p.add_argument("--blocks", type=int, default=10_000)
    p.add_argument("--samples", type=int, default=200)
    p.add_argument("--no-baseline", action="store_true", help="skip the queries on the intents view")
    p.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)  # the measuring child process
    a = p.parse_args()
    if a.measure:
        measure(a.store, a.samples, not a.no_baseline)
        return
    out = ROOT / "benchmarks" / "out"
    store = a.store or out / "lookups-store"
    if a.store is None or not store.exists():
        build(a.lake or out / "lookups-lake", store, a.blocks)
    cmd = [sys.executable, __file__, "--measure", "--store", str(store), "--samples", str(a.samples)]
    subprocess.run(cmd + (["--no-baseline"] if a.no_baseline else []), check=True, env=os.environ)


if __name__ == "__main__":
    main()
