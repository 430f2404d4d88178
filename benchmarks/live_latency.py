"""Live latency: time from a block becoming available to its rows being queryable.

    python benchmarks/live_latency.py [--blocks 100] [--interval 0.6]

A writer thread publishes one block every --interval seconds into a Lake folder (written
aside, then renamed into place, as a mirror would); the daemon's pipeline follows that folder
(`files:` source) into embedded ClickHouse; a poller asks the store every 10 ms for the newest
stored height. Prints p50/p90/p99/max of (first seen in the store - published).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from indexer import logs  # noqa: E402
from indexer.config import load_settings  # noqa: E402
from indexer.pipeline import Pipeline, plan_live  # noqa: E402
from indexer.sources.files import FilesSource  # noqa: E402
from indexer.store import migrations  # noqa: E402
from indexer.store.client import Store  # noqa: E402
from lakebuild import fixture_lake  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--blocks", type=int, default=100)
    parser.add_argument("--interval", type=float, default=0.6)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="live-latency-"))
    staged = work / "staged"
    heights = fixture_lake(staged, copies=(args.blocks + 3) // 4)[: args.blocks]
    live = work / "live"
    live.mkdir()
    settings = load_settings(source=f"files:{live}", store=f"chdb://{work / 'store'}", poll_interval=0.02,
                             contracts=["intents.near:verifier", "token.sweat", "earn.kaiching", "users.kaiching"],
                             log_level="warning")
    logs.configure("console", "warning")
    store = Store(settings.store, settings.database)
    migrations.migrate(store)
    published: dict[int, float] = {}
    seen: dict[int, float] = {}

    def publish() -> None:
        for h in heights:
            tmp = work / f"tmp-{h}"
            shutil.copytree(staged / f"{h:012d}", tmp)
            published[h] = time.monotonic()
            os.rename(tmp, live / f"{h:012d}")
            time.sleep(args.interval)

    def poll(stop: threading.Event) -> None:
        last = 0
        while not stop.is_set():
            top = int(store.scalar(f"SELECT max(block_height) FROM {store.table('blocks')}") or 0)
            now = time.monotonic()
            for h in heights:
                if last < h <= top:
                    seen[h] = now
            last = max(last, top)
            time.sleep(0.01)

    async def follow(stop: asyncio.Event) -> None:
        source = FilesSource(live, settings)
        plan = await plan_live(store, source, heights[0])
        await Pipeline(settings, store, source, plan).run(stop)

    async def drive() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(follow(stop))
        writer = threading.Thread(target=publish)
        writer.start()
        while writer.is_alive() or len(seen) < len(heights):
            await asyncio.sleep(0.05)
            if not writer.is_alive() and time.monotonic() - max(published.values()) > 5:
                break
        stop.set()
        await task

    poll_stop = threading.Event()
    poller = threading.Thread(target=poll, args=(poll_stop,))
    poller.start()
    asyncio.run(drive())
    poll_stop.set()
    poller.join()
    lat = sorted(seen[h] - published[h] for h in heights if h in seen)
    q = statistics.quantiles(lat, n=100)
    print(f"blocks: {len(lat)}/{len(heights)} every {args.interval}s")
    print(f"latency p50 {q[49]*1000:.0f} ms  p90 {q[89]*1000:.0f} ms  p99 {q[98]*1000:.0f} ms  max {lat[-1]*1000:.0f} ms")
    store.close()
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
