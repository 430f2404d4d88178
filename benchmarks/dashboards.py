"""Time of every ClickHouse query of the dashboards on 10M base rows, rolled up.

    python benchmarks/dashboards.py [--executions 6000000] [--intents 4000000] [--days 30] [--runs 20]

Base rows are generated inside ClickHouse (INSERT ... SELECT FROM numbers): solver executions of
40 solvers (as benchmarks/rollup.py makes them) and intent updates with their lookup rows, spread
over --days of block time; the rollup tables are then rebuilt from them. Each panel query runs
--runs times for the last 24 hours (1-minute interval, as a 1,440-pixel wide panel asks) and for
the whole range (1-hour interval); the figures are p50 and p99 in ms per query.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from rollup import T0, Feed  # noqa: E402

from indexer.rollup import job  # noqa: E402
from indexer.store import migrations  # noqa: E402
from indexer.store.client import Store  # noqa: E402

DAY = 86400


def _generator():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("dashboards_generate", ROOT / "dashboards" / "generate.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def intent_rows(store: Store, rows: int, start: int, seconds: int) -> None:
    """Intent updates (executed, 5% failed) of 50,000 accounts, and their account/contract lookups."""
    s = store
    ts = f"toDateTime64({start} + (number * {seconds}) / {rows}, 3, 'UTC')"
    h = f"toUInt64(({start} + intDiv(number * {seconds}, {rows}) - {T0}) * 1.65)"
    failed = "(sipHash64(number, 'f') % 20) = 0"
    s.command(
        f"INSERT INTO {s.table('intent_updates')} (block_height, block_timestamp, update_index, contract_id, intent_id, "
        f"status, failure, signer_id, solver_id, kinds, receipt_id, tx_hash, method_name, gas_burnt) "
        f"SELECT {h}, {ts}, 0, 'intents.near', hex(sipHash64(number, 'i')), if({failed}, 'failed', 'executed'), "
        f"if({failed}, 'Smart contract panicked: insufficient balance', ''), "
        f"concat('user-', toString(sipHash64(number, 'a') % 50000), '.near'), "
        f"concat('solver-', toString(sipHash64(number, 's') % 40), '.near'), ['token_diff'], "
        f"hex(sipHash64(number, 'r')), hex(sipHash64(number, 't')), 'execute_intents', 20000000000000 "
        f"FROM numbers({rows})", settings={"max_insert_threads": 2})
    for kind, key in (("account", "concat('user-', toString(sipHash64(number, 'a') % 50000), '.near')"),
                      ("contract", "'intents.near'")):
        s.command(
            f"INSERT INTO {s.table('intent_lookups')} (kind, key, block_height, block_timestamp, update_index, "
            f"contract_id, receiver_id, intent_id, status) SELECT '{kind}', {key}, {h}, {ts}, 0, 'intents.near', "
            f"'intents.near', hex(sipHash64(number, 'i')), if({failed}, 'failed', 'executed') FROM numbers({rows})",
            settings={"max_insert_threads": 2})


def percentiles(samples: list[float]) -> tuple[float, float]:
    samples = sorted(samples)
    return statistics.median(samples) * 1000, samples[min(int(0.99 * len(samples)), len(samples) - 1)] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--executions", type=int, default=6_000_000)
    parser.add_argument("--intents", type=int, default=4_000_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()

    gen = _generator()
    with tempfile.TemporaryDirectory(prefix="dash-bench-") as tmp:
        store = Store(f"chdb://{Path(tmp) / 'store'}", database=f"bench_{uuid.uuid4().hex[:8]}")
        migrations.migrate(store)
        start, seconds = T0, args.days * DAY
        t = time.perf_counter()
        Feed(store, 40).executions(args.executions, start, seconds)
        intent_rows(store, args.intents, start, seconds)
        print(f"{args.executions + args.intents:,} base rows ({args.executions:,} executions, {args.intents:,} intent "
              f"updates) over {args.days} days in {time.perf_counter() - t:.0f} s")
        t = time.perf_counter()
        buckets = job.rebuild(store, start, start + seconds)
        print(f"rollups rebuilt: {buckets:,} buckets in {time.perf_counter() - t:.0f} s")
        store.client.database = store.database  # as the datasource's default database
        end = start + seconds
        ranges = (("last 24h @ 60 s", end - DAY, 60), (f"last {args.days} days @ 3600 s", start, 3600))
        variables = {"contract": ["intents.near"], "solver": [f"solver-{i}.near" for i in range(5)]}
        worst = 0.0
        for name, build in gen.DASHBOARDS.items():
            for title, target in gen.clickhouse_queries(build()):
                for label, lo, interval in ranges:
                    sql = gen.expand(target["rawSql"], lo, end, interval, variables)
                    store.query(sql)  # warm
                    times = []
                    for _ in range(args.runs):
                        t = time.perf_counter()
                        store.query(sql)
                        times.append(time.perf_counter() - t)
                    p50, p99 = percentiles(times)
                    worst = max(worst, p99)
                    print(f"{name:20s} {title[:44]:44s} {label:22s} p50 {p50:7.1f} ms  p99 {p99:7.1f} ms")
        print(f"slowest query p99: {worst:.1f} ms")


if __name__ == "__main__":
    main()
