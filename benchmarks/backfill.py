"""End-to-end backfill speed and memory: local Lake folder -> embedded ClickHouse.

    python benchmarks/backfill.py [--blocks 3000] [--reference-blocks 150] [--memory-blocks 20000]

Builds realistic lakes with `intents-indexer simulate` (mainnet-sized blocks: intents.near and
workshop traffic plus unrelated receipts) and measures, each in a fresh process (one chDB data
path per process; start-up and migrations excluded):

* project pipeline, tracked contracts acting in most shards (--tracked-shard-fraction 0.9)
* project pipeline, tracked contracts acting in few shards (--tracked-shard-fraction 0.1)
* reference pipeline: the same store, batching and row building, decoding with
  near-lake-framework 0.1.3 (benchmarks/reference.py), on the first --reference-blocks blocks
* memory: peak RSS (VmHWM) after 1k, 10k and 20k blocks of one backfill

Prints blocks/s, MB/s, rows/s and peak RSS per run, and the ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


def rss_mb(field: str = "VmHWM") -> float:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return 0.0


def simulate(out: Path, blocks: int, fraction: float, noise: int, seed: int = 7) -> dict:
    if not (out / "truth.json").exists():
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "indexer", "simulate", "--out", str(out), "--blocks", str(blocks),
                        "--seed", str(seed), "--tracked-shard-fraction", str(fraction),
                        "--noise-bytes-per-block", str(noise)], check=True, stdout=subprocess.DEVNULL)
        print(f"  simulated {blocks} blocks into {out.name} in {time.perf_counter() - started:.1f} s", flush=True)
    return json.loads((out / "truth.json").read_text())


def measure(lake: Path, store: Path, reference: bool, limit: int | None, checkpoints: list[int]) -> dict:
    """Runs inside a fresh process: one backfill, timed from the first block to the last flush."""
    from indexer import logs
    from indexer.config import load_settings
    from indexer.decode.block import DecoderConfig
    from indexer.pipeline import Pipeline, plan_backfill
    from indexer.sources.files import FilesSource
    from indexer.store import migrations
    from indexer.store.client import Store

    truth = json.loads((lake / "truth.json").read_text())
    contracts = truth["contracts"]
    solvers = truth.get("solver_accounts", [])
    heights = sorted(int(p.name) for p in lake.iterdir() if p.name.isdigit())
    if limit:
        heights = heights[:limit]
    logs.configure("console", "warning")
    settings = load_settings(source=f"files:{lake}", store=f"chdb://{store}", contracts=contracts,
                             solver_accounts=solvers)
    db = Store(settings.store, settings.database)
    migrations.migrate(db)
    plan = plan_backfill(db, heights[0], heights[-1])
    rss_at: dict[int, float] = {}

    def on_progress(p) -> None:  # type: ignore[no-untyped-def]
        for mark in checkpoints:  # skipped heights: the count passes a mark at the last block of its range
            if mark not in rss_at and (p.blocks >= mark or p.height >= heights[-1]):
                rss_at[mark] = rss_mb()

    pipeline = Pipeline(settings, db, FilesSource(lake, settings), plan, on_progress)
    if reference:
        from reference import ReferenceDecoder

        pipeline.decoder = ReferenceDecoder(DecoderConfig.from_settings(settings))
    started = time.perf_counter()
    progress = asyncio.run(pipeline.run(asyncio.Event()))
    elapsed = time.perf_counter() - started
    rows = int(db.scalar(f"SELECT count() FROM {db.table('receipts')}") or 0)
    rows += int(db.scalar(f"SELECT count() FROM {db.table('events')}") or 0)
    return {"blocks": progress.blocks, "mb": progress.bytes / 1e6, "seconds": elapsed, "rows": progress.rows,
            "blocks_s": progress.blocks / elapsed, "mb_s": progress.bytes / 1e6 / elapsed,
            "rows_s": progress.rows / elapsed, "peak_rss_mb": rss_mb(), "rss_at": rss_at}


def run_measure(lake: Path, work: Path, name: str, reference: bool = False, limit: int | None = None,
                checkpoints: tuple[int, ...] = (), repeat: int = 1) -> dict:
    """Best of ``repeat`` runs, each in a fresh process with a fresh store (machines here are shared)."""
    best: dict | None = None
    for attempt in range(repeat):
        store = work / f"store-{name.replace(' ', '-').replace(',', '')}-{attempt}"
        shutil.rmtree(store, ignore_errors=True)
        cmd = [sys.executable, __file__, "--measure", str(lake), "--store", str(store),
               "--checkpoints", ",".join(map(str, checkpoints))]
        if reference:
            cmd.append("--reference")
        if limit:
            cmd += ["--limit", str(limit)]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        shutil.rmtree(store, ignore_errors=True)
        result = json.loads(out.strip().splitlines()[-1])
        if best is None or result["mb_s"] > best["mb_s"]:
            best = result
    assert best is not None
    print(f"  {name:<28} {best['blocks']:>6} blocks {best['mb']:>8.0f} MB {best['seconds']:>7.2f} s "
          f"{best['blocks_s']:>8.0f} blocks/s {best['mb_s']:>7.1f} MB/s {best['rows_s']:>9.0f} rows/s "
          f"peak RSS {best['peak_rss_mb']:.0f} MB", flush=True)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--blocks", type=int, default=3000)
    parser.add_argument("--noise", type=int, default=600_000, help="unrelated bytes per block (mainnet-sized)")
    parser.add_argument("--reference-blocks", type=int, default=150)
    parser.add_argument("--memory-blocks", type=int, default=20000, help="0 skips the memory run")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--repeat", type=int, default=2, help="runs per measurement; the best is reported")
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--store", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--reference", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--limit", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--checkpoints", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        marks = [int(x) for x in args.checkpoints.split(",") if x]
        print(json.dumps(measure(args.measure, args.store, args.reference, args.limit, marks)))
        return

    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench-backfill-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"work folder: {work}  (one core per process; {os.cpu_count()} cores here)")
    most = work / "lake-most"
    few = work / "lake-few"
    simulate(most, args.blocks, 0.9, args.noise)
    simulate(few, args.blocks, 0.1, args.noise)
    print("\nbackfill, start-up excluded:")
    r_most = run_measure(most, work, "project, most shards", repeat=args.repeat)
    r_few = run_measure(few, work, "project, few shards", repeat=args.repeat)
    r_ref = run_measure(most, work, "reference (near-lake-fw)", reference=True, limit=args.reference_blocks)
    print(f"\n  most shards: {r_most['mb_s']:.0f} MB/s (target >= 200), {r_most['mb_s'] / r_ref['mb_s']:.0f}x reference "
          f"(target >= 30x)")
    print(f"  few shards:  {r_few['mb_s']:.0f} MB/s (target >= 500), {r_few['mb_s'] / r_ref['mb_s']:.0f}x reference")
    if args.memory_blocks:
        mem = work / "lake-memory"
        simulate(mem, args.memory_blocks, 0.35, 150_000, seed=11)
        marks = tuple(m for m in (1000, 10000, 20000) if m <= args.memory_blocks)
        r_mem = run_measure(mem, work, f"memory, {args.memory_blocks} blocks", checkpoints=marks)
        print("  peak RSS by blocks indexed: " + ", ".join(f"{k}: {v:.0f} MB" for k, v in sorted(
            (int(k), v) for k, v in r_mem["rss_at"].items())) + " (target < 600 MB, flat)")


if __name__ == "__main__":
    main()
