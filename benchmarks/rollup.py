"""Rollup job time and /metrics scrape time on synthetic solver executions.

    python benchmarks/rollup.py [--rows 1000000] [--history 10000000] [--solvers 40] [--scrapes 2000]

Rows are generated inside ClickHouse (INSERT ... SELECT FROM numbers), spread evenly over a day of
block time per million rows (about mainnet's rate of intents.near executions), with one `commits`
row per 20 minutes of blocks, as a backfill with 2,000-block batches writes them. Figures:

* new rows: one job run over 1M new execution rows (every bucket they touch recomputed);
* idle: a run with no new commits;
* head tick: a run after one commit of one block at the head, in the last minute of the new rows'
  day (its minute, its hour and its day of --rows executions recomputed);
* the same new-rows run and head tick again after --history rows of older days are stored and
  rolled up: the job reads only the buckets the commits touched, so history must not change them;
* scrape: the gauge refresh (the background loop's queries, which also render the gauges' text)
  and the /metrics body (``metrics.render``) with --solvers solvers of a day of executions and
  the live counters and histograms a daemon holds after a day (every solver label, ten kinds of
  intents in every status), p50/p99 of --scrapes scrapes.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from indexer import metrics  # noqa: E402
from indexer.exporter import install  # noqa: E402
from indexer.rollup import job  # noqa: E402
from indexer.rollup.families import FAMILIES, SOLVER_STATS  # noqa: E402
from indexer.store import migrations  # noqa: E402
from indexer.store.client import Store  # noqa: E402

DAY = 86400
BLOCKS_PER_SECOND = 1.65
T0 = 1_767_225_600  # 2026-01-01T00:00:00Z


class Feed:
    """Synthetic base rows and their commits for one stream."""

    def __init__(self, store: Store, solvers: int):
        self.store = store
        self.solvers = solvers
        self.seq = 0
        self.offset = 0  # rows generated so far: numbers keep receipts distinct

    def executions(self, rows: int, start: int, seconds: int) -> None:
        """``rows`` executions spread over [start, start + seconds), committed per 20 minutes."""
        s, n = self.store, rows
        s.command(
            f"INSERT INTO {s.table('solver_executions')} (block_height, block_timestamp, contract_id, receiver_id, "
            f"solver_id, receipt_id, tx_hash, method_name, intent_ids, success, failure, gas_burnt, latency_s) "
            f"SELECT toUInt64(({start} + intDiv(number * {seconds}, {n}) - {T0}) * {BLOCKS_PER_SECOND}) AS h, "
            f"toDateTime64({start} + (number * {seconds}) / {n}, 3, 'UTC'), 'intents.near', 'intents.near', "
            # a skewed mix: a few solvers do most executions, as on mainnet
            f"concat('solver-', toString(toUInt32(sqrt(sipHash64(number + {self.offset}) % {self.solvers ** 2}))), "
            f"'.near'), hex(sipHash64(number + {self.offset}, 'r')), '', 'execute_intents', [], "
            f"(sipHash64(number + {self.offset}, 's') % 10) != 0, if((sipHash64(number + {self.offset}, 's') % 10) = 0, "
            f"'Smart contract panicked: deadline has expired', ''), "
            f"5000000000000 + sipHash64(number + {self.offset}, 'g') % 300000000000000, NULL FROM numbers({n})",
            settings={"max_insert_threads": 2})
        blocks = max(1, int(seconds * BLOCKS_PER_SECOND))
        s.command(
            f"INSERT INTO {s.table('blocks')} (block_height, block_hash, prev_hash, block_timestamp_ns, author, "
            f"protocol_version, shard_ids) SELECT toUInt64(({start} - {T0}) * {BLOCKS_PER_SECOND}) + number, "
            f"hex(sipHash64(number + {self.offset}, 'b')), '', toUInt64(({start} + number / {BLOCKS_PER_SECOND}) * 1e9), "
            f"'node.near', 83, [0] FROM numbers({blocks})")
        self.offset += n
        for lo in range(start, start + seconds, 1200):
            self.commit(lo, min(lo + 1200, start + seconds) - 1)

    def commit(self, lo: int, hi: int) -> None:
        s = self.store
        self.seq += 1
        low, high = int((lo - T0) * BLOCKS_PER_SECOND), int((hi - T0) * BLOCKS_PER_SECOND)
        s.command(f"INSERT INTO {s.table('commits')} (stream, seq, token, owners, low_height, high_height, "
                  f"min_block_time, max_block_time, rows, reindex) VALUES ('bench', {self.seq}, '{uuid.uuid4().hex}', "
                  f"['', 'intents.near'], {low}, {high}, toDateTime64({lo}, 3, 'UTC'), toDateTime64({hi}.999, 3, 'UTC'), "
                  f"map(), 0)")
        s.command(f"INSERT INTO {s.table('streams')} (stream, version, owners, start_height, height, block_hash, "
                  f"written, commit_seq, holder, claimed_at, lease_until) VALUES ('bench', {self.seq}, "
                  f"['intents.near'], 0, {high}, '', [], {self.seq}, '', now64(6), now64(3))")


CPU: list[float] = []  # process CPU seconds of the last timed() calls (chDB runs in this process)


def timed(fn):  # type: ignore[no-untyped-def]
    """Wall seconds of fn; its CPU seconds (every thread, chDB's included) go to CPU: on a shared
    machine the CPU time is the work done, the wall time also counts waiting for a core."""
    started, cpu = time.perf_counter(), time.process_time()
    result = fn()
    CPU.append(time.process_time() - cpu)
    return time.perf_counter() - started, result


def run_jobs(store: Store) -> tuple[float, float, int]:
    """(seconds of all jobs, seconds of solver_stats, buckets solver_stats wrote)."""
    total = 0.0
    solver = (0.0, 0)
    cpu = 0.0
    for family in FAMILIES:
        seconds, result = timed(lambda f=family: job.run_once(store, f))
        total += seconds
        cpu += CPU[-1]
        if family is SOLVER_STATS:
            solver = (seconds, result.buckets)
    CPU.append(cpu)
    return total, solver[0], solver[1]


def scenario(store: Store, feed: Feed, rows: int, day_start: int, label: str) -> list[tuple[str, str]]:
    out = []
    seconds, _ = timed(lambda: feed.executions(rows, day_start, DAY * max(1, rows // 1_000_000)))
    out.append((f"{label}: insert {rows:,} execution rows (not part of the job)", f"{seconds:.1f} s"))
    total, solver, buckets = run_jobs(store)
    out.append((f"{label}: job run over {rows:,} new execution rows ({feed.seq} commits so far)",
                f"{total:.2f} s wall, {CPU[-1]:.2f} s CPU (solver_stats {solver:.2f} s wall, {buckets:,} buckets)"))
    idle, idle_cpu = [], []
    for _ in range(5):
        idle.append(run_jobs(store)[0])
        idle_cpu.append(CPU[-1])
    out.append((f"{label}: idle run (no new commits), median of 5",
                f"{statistics.median(idle) * 1000:.1f} ms wall, {statistics.median(idle_cpu) * 1000:.1f} ms CPU"))
    head, head_cpu = [], []
    for i in range(5):  # head blocks in the last minute of the new rows: their day holds all of them
        at = day_start + DAY * max(1, rows // 1_000_000) - 30 + i
        feed.executions(3, at, 1)
        head.append(run_jobs(store)[0])
        head_cpu.append(CPU[-1])
    out.append((f"{label}: head tick (one commit of 1 s at the head: its minute, hour and day), median of 5",
                f"{statistics.median(head) * 1000:.0f} ms wall, {statistics.median(head_cpu) * 1000:.0f} ms CPU"))
    return out


def live_counters(solvers: int) -> None:
    """Give every live counter and histogram the label sets a day of the daemon leaves behind."""
    from indexer.exporter import counters

    kinds = ["token_diff", "transfer", "ft_withdraw", "mt_withdraw", "native_withdraw", "nft_withdraw",
             "add_public_key", "token_diff+transfer", "intent", "solve"]
    for contract in ("intents.near", "verifier.workshop.near"):
        for kind in kinds:
            for status in ("pending", "verified", "executing", "executed", "completed", "failed", "expired"):
                counters.INTENTS_PROCESSED.labels(contract=contract, kind=kind, status=status).inc(1000)
            counters.GAS_USED.labels(contract=contract, kind=kind).observe(3.5e12)
        counters.PROCESSING_SECONDS.labels(contract=contract).observe(2.0)
        for i in range(min(solvers, 20) + 1):
            counters.SOLVER_EXECUTION_SECONDS.labels(contract=contract, solver=f"solver-{i}.near").observe(1.5)


def scrape(store: Store, scrapes: int, solvers: int) -> list[tuple[str, str]]:
    exporter = install(20)
    live_counters(solvers)
    refresh = [timed(lambda: exporter.gauges.refresh(store))[0] for _ in range(5)]
    refresh_cpu = statistics.median(CPU[-5:])
    times, cpu = [], []
    size = 0
    for _ in range(scrapes):
        started, c0 = time.perf_counter(), time.thread_time()
        body = metrics.render()
        times.append(time.perf_counter() - started)
        cpu.append(time.thread_time() - c0)
        size = len(body)
    from indexer.exporter import counters

    commit = [timed(counters._rerender)[0] for _ in range(50)]
    commit_cpu = statistics.median(CPU[-50:])
    times.sort()
    cpu.sort()
    p = lambda q, xs=times: xs[min(int(q * len(xs)), len(xs) - 1)] * 1000  # noqa: E731
    solvers = store.scalar(f"SELECT uniqExact(solver_id) FROM {store.table('solver_stats_1m')} WHERE solver_id != '*'")
    return [
        (f"gauge refresh (background loop) with {solvers} solvers, median of 5",
         f"{statistics.median(refresh) * 1000:.0f} ms wall, {refresh_cpu * 1000:.0f} ms CPU"),
        (f"scrape: the /metrics body ({size:,} bytes), {scrapes} scrapes",
         f"wall p50 {p(0.5):.2f} ms, p99 {p(0.99):.2f} ms; CPU p50 {p(0.5, cpu):.2f} ms, p99 {p(0.99, cpu):.2f} ms"),
        ("rendering the committed-row counters after a commit (writer thread), median of 50",
         f"{statistics.median(commit) * 1000:.1f} ms wall, {commit_cpu * 1000:.1f} ms CPU"),
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--history", type=int, default=10_000_000)
    ap.add_argument("--solvers", type=int, default=40)
    ap.add_argument("--scrapes", type=int, default=2000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-rollup-") as tmp:
        store = Store(f"chdb://{tmp}", database="bench")
        migrations.migrate(store)
        feed = Feed(store, args.solvers)
        results = scenario(store, feed, args.rows, T0 + 30 * DAY, "empty store")
        results += scrape(store, args.scrapes, args.solvers)
        if args.history:
            seconds, _ = timed(lambda: feed.executions(args.history, T0, DAY * max(1, args.history // 1_000_000)))
            total, _, _ = run_jobs(store)
            results.append((f"history: {args.history:,} older rows inserted and rolled up",
                            f"insert {seconds:.1f} s, rollup {total:.1f} s"))
            results += scenario(store, feed, args.rows, T0 + 40 * DAY, f"after {args.history:,} rows of history")
        store.close()
    width = max(len(k) for k, _ in results)
    for k, v in results:
        print(f"{k:<{width}}  {v}")


if __name__ == "__main__":
    main()
