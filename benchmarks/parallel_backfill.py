"""Speed-up of ``backfill --workers 2`` over one process, on a simulated lake.

    python benchmarks/parallel_backfill.py [--blocks 2000] [--noise 600000] [--workers 1,2] [--repeat 1]

Simulates a lake with `intents-indexer simulate` (mainnet-sized blocks, tracked contracts in 90 %
of the shards, so decoding is the bound), then runs the real command
``intents-indexer backfill --source files:LAKE --from A --to B [--workers N]`` into a fresh
embedded store per run, and times the whole command (start-up, migrations, worker start-up and
warm-up replays included). Prints wall seconds, blocks/s, MB/s and the speed-up over one worker;
the rows written must be the same for every run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def simulate(out: Path, blocks: int, noise: int) -> dict:
    if not (out / "truth.json").exists():
        subprocess.run([sys.executable, "-m", "indexer", "simulate", "--out", str(out), "--blocks", str(blocks),
                        "--seed", "7", "--tracked-shard-fraction", "0.9", "--noise-bytes-per-block", str(noise),
                        "--quiet"], check=True, stdout=subprocess.DEVNULL, cwd=ROOT)
    return json.loads((out / "truth.json").read_text())


def backfill(lake: Path, truth: dict, store: Path, workers: int) -> tuple[float, dict]:
    heights = sorted(int(p.name) for p in lake.iterdir() if p.name.isdigit())
    args = [sys.executable, "-m", "indexer", "backfill", "--source", f"files:{lake}", "--from", str(heights[0]),
            "--to", str(heights[-1]), "--store", f"chdb://{store}", "--no-progress", "--log-format", "json",
            "--workers", str(workers)]
    for c in truth["contracts"]:
        args += ["--contract", c]
    for s in truth.get("solver_accounts", []):
        args += ["--solver-account", s]
    env = {k: v for k, v in os.environ.items() if not k.startswith("INDEXER_")}
    started = time.perf_counter()
    proc = subprocess.run(args, capture_output=True, text=True, env=env, cwd=ROOT)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"backfill --workers {workers} exited {proc.returncode}:\n{proc.stderr[-3000:]}")
    summary = next(json.loads(line) for line in reversed(proc.stderr.splitlines())
                   if line.startswith("{") and '"backfill finished"' in line)
    return elapsed, summary


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--blocks", type=int, default=2000)
    ap.add_argument("--noise", type=int, default=600_000, help="unrelated bytes per block (mainnet-sized)")
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--repeat", type=int, default=1, help="runs per worker count; the fastest is reported")
    ap.add_argument("--workdir", type=Path, help="keeps the simulated lake between runs")
    args = ap.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench-parallel-"))
    lake = work / f"lake-{args.blocks}-{args.noise}"
    truth = simulate(lake, args.blocks, args.noise)
    mb = sum(f.stat().st_size for f in lake.rglob("*.json") if f.name != "truth.json") / 1e6
    print(f"lake {lake}: {args.blocks} heights, {mb:,.0f} MB; {os.cpu_count()} CPUs")
    print("| workers | wall s | blocks/s | MB/s | rows | speed-up |")
    print("| --- | --- | --- | --- | --- | --- |")
    base = None
    rows = set()
    for n in (int(w) for w in args.workers.split(",")):
        best = None
        for attempt in range(args.repeat):
            store = work / f"store-{n}-{attempt}"
            shutil.rmtree(store, ignore_errors=True)
            elapsed, summary = backfill(lake, truth, store, n)
            shutil.rmtree(store, ignore_errors=True)
            if best is None or elapsed < best[0]:
                best = (elapsed, summary)
        assert best is not None
        elapsed, summary = best
        base = base or elapsed
        rows.add(summary["rows"])
        print(f"| {n} | {elapsed:.1f} | {summary['blocks'] / elapsed:,.0f} | {mb / elapsed:,.1f} | "
              f"{summary['rows']:,} | {base / elapsed:.2f}x |", flush=True)
    if len(rows) != 1:
        raise SystemExit(f"runs wrote different row counts: {sorted(rows)}")


if __name__ == "__main__":
    main()
