"""Checkpoint cost per flush, after 0, 100k and 1M checkpoint writes: it stays flat.

    python benchmarks/checkpoint_flush.py [--marks 0,100000,1000000] [--flushes 30] [--streams 5]

A checkpoint write is one row of ``streams`` (ReplacingMergeTree(version), read with FINAL):
every flush writes two (the pending marker and the commit) plus one ``commits`` row. The script
stores that history in bulk (one ``streams`` row and half a ``commits`` row per write, versions
growing, spread over ``--streams`` streams, in inserts of 10k rows that keep every row, as
separate writes would, so background merges collapse them as they would), then times ``Writer.flush`` of batches with no data rows: marker, read of every
stream, commit row, state. That is the whole checkpoint part of a flush. Prints the median and
p90 ms per flush at each mark, right after the writes and after the store merged them.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from indexer import logs  # noqa: E402
from indexer.decode.rows import Rows  # noqa: E402
from indexer.store import migrations, streams  # noqa: E402
from indexer.store.client import Store  # noqa: E402
from indexer.store.writer import Batch, StreamSpec, Writer  # noqa: E402

CHUNK = 10_000
OWNERS = ("", "intents.near")


def write_history(store: Store, first: int, count: int, n_streams: int) -> None:
    """``count`` checkpoint writes as a long run leaves them: growing versions per stream."""
    for lo in range(first, first + count, CHUNK):
        n = min(CHUNK, first + count - lo)
        store.command(
            f"INSERT INTO {store.table('streams')} (stream, version, owners, start_height, end_height, height, "
            "block_hash, pending_low, pending_high, written, commit_seq, fingerprints, reindex, holder, claimed_at, "
            "lease_until) "
            f"SELECT concat('history:', toString(number % {n_streams})), intDiv(number, {n_streams}) + 1, "
            f"{list(OWNERS)}, 100000000, NULL, 100000000 + intDiv(number, {n_streams}), 'hash', "
            "if(number % 2 = 0, 100000000 + intDiv(number, " f"{n_streams}) + 1, NULL), "
            "if(number % 2 = 0, 100000000 + intDiv(number, " f"{n_streams}) + 1, NULL), "
            "[('', 100000000, 100000000 + intDiv(number, " f"{n_streams})), "
            "('intents.near', 100000000, 100000000 + intDiv(number, " f"{n_streams}))], "
            f"intDiv(number, {n_streams}), map(), 0, 'gone:1:x', now64(6), toDateTime64(0, 3, 'UTC') "
            f"FROM numbers({lo}, {n})", settings={"optimize_on_insert": 0})  # each row as its own write left it
        store.command(
            f"INSERT INTO {store.table('commits')} (stream, seq, token, owners, low_height, high_height, "
            "min_block_time, max_block_time, rows, reindex) "
            f"SELECT concat('history:', toString(number % {n_streams})), intDiv(number, {n_streams}), 't', "
            f"{list(OWNERS)}, 1, 2, now64(3), now64(3), map('receipts', 1), 0 "
            f"FROM numbers({lo}, {n}) WHERE number % 2 = 0")


def time_flushes(store: Store, name: str, flushes: int, start: int) -> list[float]:
    spec = StreamSpec(name, OWNERS, start, None, {o: "bench" for o in OWNERS})
    writer = Writer.open(store, spec, ttl=60, settle=0)
    height = writer.state.height
    times = []
    for _ in range(flushes + 3):
        height += 1
        started = time.perf_counter()
        writer.flush(Batch(Rows(), height, height, f"h{height}", height * 10**9, height * 10**9))
        times.append((time.perf_counter() - started) * 1000)
    writer.close()
    return times[3:]  # the first flushes warm caches


def merges(store: Store, on: bool) -> None:
    """Hold merges of ``streams`` back (a part over one byte is never merged) or let them run."""
    settings = "max_bytes_to_merge_at_max_space_in_pool, max_bytes_to_merge_at_min_space_in_pool"
    if on:
        store.command(f"ALTER TABLE {store.table('streams')} RESET SETTING {settings}")
    else:
        store.command(f"ALTER TABLE {store.table('streams')} MODIFY SETTING "
                      + ", ".join(f"{s} = 1" for s in settings.split(", ")))


def settle(store: Store, timeout: float = 300) -> None:
    """Wait until no merge runs in the store: a merge running while timing would be counted too."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and int(store.scalar(
            f"SELECT count() FROM system.merges WHERE database = '{store.database}'")):
        time.sleep(0.2)


def row(label: str, times: list[float], store: Store) -> str:
    parts = int(store.scalar(f"SELECT count() FROM system.parts WHERE database = '{store.database}' "
                             "AND table = 'streams' AND active"))
    rows = int(store.scalar(f"SELECT count() FROM {store.table('streams')}"))
    p90 = sorted(times)[int(len(times) * 0.9) - 1]
    return (f"| {label} | {statistics.median(times):.1f} | {p90:.1f} | {rows:,} | {parts} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--marks", default="0,100000,1000000", help="checkpoint writes before each measurement")
    ap.add_argument("--flushes", type=int, default=30, help="flushes timed at each mark")
    ap.add_argument("--streams", type=int, default=5, help="streams the history is spread over")
    ap.add_argument("--store", help="chDB folder (default: a temporary one)")
    args = ap.parse_args()
    logs.configure("console", "warning")
    path = args.store or tempfile.mkdtemp(prefix="bench-checkpoint-")
    store = Store(f"chdb://{path}", database="bench_checkpoint")
    store.command(f"DROP DATABASE IF EXISTS `{store.database}`")
    migrations.migrate(store)
    # A database without history, timed at every mark too: the machine is shared, so only flushes
    # timed side by side compare.
    control = Store.__new__(Store)
    control.__dict__.update(store.__dict__)
    control.database = "bench_checkpoint_control"
    control.command(f"DROP DATABASE IF EXISTS `{control.database}`")
    migrations.migrate(control)
    print(f"store chdb://{path}; {args.flushes} flushes timed per mark, history over {args.streams} streams")
    print("| checkpoint writes before | median ms/flush | p90 ms/flush | streams rows stored | streams parts |")
    print("| --- | --- | --- | --- | --- |")
    done, start = 0, 200_000_000
    for mark in (int(m) for m in args.marks.split(",")):
        merges(store, False)  # the worst case: no row of the history collapsed yet
        if mark > done:
            started = time.perf_counter()
            write_history(store, done, mark - done, args.streams)
            print(f"  (wrote {mark - done:,} checkpoint rows in {time.perf_counter() - started:.1f} s)", flush=True)
            done = mark
        for label in ("unmerged", "merged", "control"):
            if label == "merged":
                merges(store, True)
                for table in ("streams", "commits"):
                    store.command(f"OPTIMIZE TABLE {store.table(table)} FINAL")
                settle(store)
            target = control if label == "control" else store
            times = time_flushes(target, f"live:{mark}:{label}", args.flushes, start)
            start += args.flushes + 10
            name = "same moment, a database with no history" if label == "control" else label
            print(row(f"{mark:,}, {name}", times, target), flush=True)
    states = streams.read_all(store)
    print(f"streams read back: {len(states)}")
    store.close()


if __name__ == "__main__":
    main()
