"""Profile one backfill with pyinstrument and print where the time goes.

    python benchmarks/profile_backfill.py LAKE [--out benchmarks/out/profile.txt]

LAKE is a folder written by `intents-indexer simulate` (its truth.json names the contracts).
The profile covers the ingest loop only (store opened and migrated beforehand); the store
thread's inserts show up as waits in the loop when they hold it back.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("lake", type=Path)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out" / "profile.txt")
    args = parser.parse_args()
    from pyinstrument import Profiler

    from indexer import logs
    from indexer.config import load_settings
    from indexer.pipeline import Pipeline, plan_backfill
    from indexer.sources.files import FilesSource
    from indexer.store import migrations
    from indexer.store.client import Store

    truth = json.loads((args.lake / "truth.json").read_text())
    store_dir = Path(tempfile.mkdtemp(prefix="profile-store-"))
    logs.configure("console", "warning")
    settings = load_settings(source=f"files:{args.lake}", store=f"chdb://{store_dir}", contracts=truth["contracts"],
                             solver_accounts=truth["solver_accounts"])
    store = Store(settings.store, settings.database)
    migrations.migrate(store)
    heights = sorted(int(p.name) for p in args.lake.iterdir() if p.name.isdigit())
    pipeline = Pipeline(settings, store, FilesSource(args.lake, settings), plan_backfill(store, heights[0], heights[-1]))
    profiler = Profiler(interval=0.0005)
    profiler.start()
    progress = asyncio.run(pipeline.run(asyncio.Event()))
    profiler.stop()
    text = profiler.output_text(unicode=True, color=False, show_all=False)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(f"{progress.blocks} blocks, {progress.bytes / 1e6:.0f} MB in {progress.elapsed:.2f} s "
          f"({progress.bytes / 1e6 / progress.elapsed:.0f} MB/s); profile written to {args.out}")
    print(text[:6000])
    shutil.rmtree(store_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
