"""Discarding a batch on 10M receipts rows, with and without the idx_height skip index.

    python benchmarks/store_delete.py [--rows 10000000] [--batches 8] [--heights 2000,10]

A batch left by a crash is discarded with ``indexer.store.writer.delete_rows`` (a count, then a
lightweight DELETE per table) before it is written again. ``receipts`` is ordered by
(receiver_id, block_timestamp, receipt_id), not by height, so only the ``minmax`` index on
block_height (migration 0002, ``idx_height``) lets a delete skip the granules of other heights.
The script fills two databases of one chDB store with the same synthetic receipts (20 per block,
20 receivers, intents.near the busiest; 200-byte args), drops ``idx_height`` in one of them, and
times ``delete_rows`` of batches of ``--heights`` heights at spread-out positions in both.
Prints ms per batch (median and max), the ms of the read that finds the rows, and the granules
it reads.
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from indexer.store import migrations  # noqa: E402
from indexer.store.client import Store  # noqa: E402
from indexer.store.writer import delete_rows  # noqa: E402

BASE = 130_000_000
PER_BLOCK = 20
CHUNK = 1_000_000
OWNER = "intents.near"


def fill(store: Store, rows: int) -> None:
    receivers = "['intents.near','intents.near','intents.near','intents.near','intents.near','token.sweat'," \
                "'earn.kaiching','game.hot.tg','users.kaiching','v2.ref-finance.near','wrap.near','usdt.tether-token.near'," \
                "'aurora','relay.tg','sweat_welcome.near','client.main.wallet','app.nearcrowd.near','v1.signer'," \
                "'spin.hot.tg','tge-lockup.sweat']"
    for lo in range(0, rows, CHUNK):
        n = min(CHUNK, rows - lo)
        store.command(
            f"INSERT INTO {store.table('receipts')} (block_height, block_timestamp, block_hash, shard_id, "
            "index_in_block, receipt_id, receiver_id, predecessor_id, signer_id, tx_hash, method_name, action_kinds, "
            "args, deposit, gas_attached, gas_burnt, tokens_burnt, status, failure, logs_count) "
            f"SELECT {BASE} + intDiv(number, {PER_BLOCK}) AS h, "
            "toDateTime64(1735689600 + h * 0.6 - 130000000 * 0.6, 3, 'UTC'), hex(cityHash64(h)), number % 9, "
            f"number % {PER_BLOCK}, hex(cityHash64(number, 1)), {receivers}[number % 20 + 1], "
            "concat('user', toString(number % 5000), '.near'), 'relay.near', hex(cityHash64(number, 2)), "
            "'execute_intents', ['FunctionCall'], repeat('x', 200), 0, 300000000000000, 2400000000000, "
            "240000000000000000000, if(number % 17 = 0, 'failure', 'success'), '', 3 "
            f"FROM numbers({lo}, {n})")


def granules(store: Store, where: str) -> str:
    _, rows = store.query(f"EXPLAIN indexes = 1 SELECT count() FROM {store.table('receipts')} WHERE {where}")
    text = "\n".join(r[0] for r in rows)
    found = re.findall(r"Granules: (\d+/\d+)", text)
    return found[-1] if found else "?"


def time_deletes(store: Store, heights: int, batches: int, span: int, offset: int
                 ) -> tuple[list[float], list[float], int, str]:
    """ms per whole discard, ms of the read that finds the batch's receipts, rows, granules read."""
    times, reads, removed, step, first = [], [], 0, span // (batches + 1), ""
    for i in range(batches):
        lo = BASE + offset + step * (i + 1)
        hi = lo + heights - 1
        where = f"(receiver_id = '{OWNER}' AND (block_height BETWEEN {lo} AND {hi}))"
        if not first:
            first = granules(store, where)
        started = time.perf_counter()
        store.scalar(f"SELECT count() FROM {store.table('receipts')} WHERE {where}")
        reads.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        removed += delete_rows(store, {"": [(lo, hi)], OWNER: [(lo, hi)]})
        times.append((time.perf_counter() - started) * 1000)
    return times, reads, removed, first


def _sibling(store: Store, database: str) -> Store:
    """Another database on the same chDB connection (one chDB data path per process)."""
    other = Store.__new__(Store)
    other.__dict__.update(store.__dict__)
    other.database = database
    return other


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--batches", type=int, default=8, help="batches discarded per size and table")
    ap.add_argument("--heights", default="2000,10", help="heights per batch (catch-up batch, live batch)")
    ap.add_argument("--store", help="chDB folder (default: a temporary one); tables filled earlier are reused")
    ap.add_argument("--offset", type=int, default=0, help="shift of the discarded heights (a rerun on a kept store)")
    args = ap.parse_args()
    path = args.store or tempfile.mkdtemp(prefix="bench-delete-")
    first = Store(f"chdb://{path}", database="bench_del_idx")
    stores = {"with idx_height": first, "without idx_height": _sibling(first, "bench_del_noidx")}
    for label, store in stores.items():
        if store.table_exists("receipts") and int(store.scalar(
                f"SELECT count() FROM {store.table('receipts')}")) >= args.rows * 0.99:
            print(f"{label}: reusing the receipts of an earlier run", flush=True)
            continue
        store.command(f"DROP DATABASE IF EXISTS `{store.database}`")
        migrations.migrate(store)
        if label.startswith("without"):
            store.command(f"ALTER TABLE {store.table('receipts')} DROP INDEX idx_height")
        started = time.perf_counter()
        fill(store, args.rows)
        parts = store.scalar(f"SELECT count() FROM system.parts WHERE database = '{store.database}' "
                             "AND table = 'receipts' AND active")
        print(f"{label}: {args.rows:,} receipts in {time.perf_counter() - started:.0f} s, {parts} parts", flush=True)
    span = args.rows // PER_BLOCK
    sizes = [int(h) for h in args.heights.split(",")]
    print(f"store chdb://{path}; {span:,} heights, {PER_BLOCK} receipts per height, {args.batches} batches per row")
    print("| table | heights per batch | median ms/batch | max ms/batch | median ms of the read that finds the rows "
          "| rows deleted per batch | granules read |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for k, heights in enumerate(sizes):
        offset = args.offset + sum(sizes[:k]) + 10 * k  # each size discards heights no earlier batch deleted
        for label, store in stores.items():
            times, reads, removed, gran = time_deletes(store, heights, args.batches,
                                                       span - sum(sizes) - 100 - args.offset, offset)
            print(f"| {label} | {heights:,} | {statistics.median(times):,.0f} | {max(times):,.0f} | "
                  f"{statistics.median(reads):,.1f} | {removed // args.batches:,} | {gran} |", flush=True)
    first.close()


if __name__ == "__main__":
    main()
