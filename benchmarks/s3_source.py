"""How fast LakeSource reads, and whether the S3 server or the source itself is the limit.

Run by hand:  python benchmarks/s3_source.py [--blocks 300] [--concurrency 1,8,32,64]

Starts moto's S3 server in its own process on 127.0.0.1, uploads real mainnet blocks
(the fixtures, renumbered, with gaps) in NEAR Lake layout, then for each concurrency reads them
all through LakeSource (prefetch = concurrency) and, for comparison, GETs the same objects with
plain aiobotocore at that many concurrent requests. CPU columns: share of one core used by this
process (the client) and by the server process during the run; a column near 100% marks the
side that is the bottleneck (both are single-GIL Python processes).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Awaitable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import structlog  # noqa: E402
from aiobotocore.session import get_session  # noqa: E402
from botocore.config import Config  # noqa: E402

from indexer.config import load_settings  # noqa: E402
from indexer.sources.lake import LakeSource  # noqa: E402
from tests.s3server import block_files, create_bucket, fixture_blocks, moto_process, s3_client, upload_block  # noqa: E402

BUCKET = "near-lake-bench"
REGION = "eu-central-1"
FIRST_HEIGHT = 120_000_000


@dataclass
class Run:
    seconds: float
    items: int
    nbytes: int
    client_cpu: float
    server_cpu: float

    @property
    def rate(self) -> float:
        return self.items / self.seconds

    @property
    def mbps(self) -> float:
        return self.nbytes / self.seconds / 1e6

    def cpu(self, seconds: float) -> str:
        return f"{100 * seconds / self.seconds:.0f}%"


def proc_cpu(pid: int) -> float:
    """User+system CPU seconds of a process, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def upload(endpoint: str, n: int) -> tuple[list[int], list[str]]:
    """Upload n blocks; every 7th height is left out, as skipped heights are on mainnet."""
    blocks = [block_files(folder) for _, folder in fixture_blocks()]
    client = s3_client(endpoint, pool=32)
    create_bucket(client, BUCKET)
    heights: list[int] = []
    h = FIRST_HEIGHT
    while len(heights) < n:
        if h % 7:
            heights.append(h)
        h += 1
    keys = [f"{h:012d}/{name}" for i, h in enumerate(heights) for name in blocks[i % len(blocks)]]
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda ih: upload_block(client, BUCKET, ih[1], blocks[ih[0] % len(blocks)]), enumerate(heights)))
    return heights, keys


async def timed(server_pid: int, coro: Awaitable[tuple[int, int]]) -> Run:
    cpu0, srv0, t0 = time.process_time(), proc_cpu(server_pid), time.perf_counter()
    items, nbytes = await coro
    t1 = time.perf_counter()
    return Run(t1 - t0, items, nbytes, time.process_time() - cpu0, proc_cpu(server_pid) - srv0)


async def read_lake(endpoint: str, heights: list[int], concurrency: int) -> tuple[int, int]:
    settings = load_settings(source="lake", lake_endpoint=endpoint, lake_bucket=BUCKET, prefetch=concurrency)
    count = nbytes = 0
    async with LakeSource(settings) as source:
        async for block in source.blocks(heights[0], heights[-1]):
            count += 1
            nbytes += block.size
    assert count == len(heights), (count, len(heights))
    return count, nbytes


async def read_bare(endpoint: str, keys: list[str], concurrency: int) -> tuple[int, int]:
    config = Config(retries={"total_max_attempts": 1, "mode": "standard"}, max_pool_connections=concurrency)
    queue: asyncio.Queue[str] = asyncio.Queue()
    for k in keys:
        queue.put_nowait(k)
    nbytes = 0

    async def worker(s3: object) -> None:
        nonlocal nbytes
        while not queue.empty():
            key = queue.get_nowait()
            resp = await s3.get_object(Bucket=BUCKET, Key=key, RequestPayer="requester")  # type: ignore[attr-defined]
            async with resp["Body"] as body:
                data = await body.read()
            nbytes += len(data)  # not `nbytes += len(await ...)`: that reads nbytes before the await

    async with get_session().create_client("s3", region_name=REGION, endpoint_url=endpoint, config=config) as s3:
        await asyncio.gather(*(worker(s3) for _ in range(concurrency)))
    return len(keys), nbytes


async def bench(endpoint: str, server_pid: int, heights: list[int], keys: list[str], levels: list[int], repeat: int) -> None:
    await read_lake(endpoint, heights[:20], 8)  # warm-up: imports, connection setup, server caches
    header = (
        f"{'conc':>4} | {'lake blk/s':>10} {'MB/s':>6} {'client':>6} {'server':>6} | "
        f"{'bare GET/s':>10} {'MB/s':>6} {'client':>6} {'server':>6} | {'lake/bare MB/s':>14}"
    )
    print(header)
    print("-" * len(header))
    for c in levels:
        # Best of `repeat` runs: two processes share few cores here, so single runs are noisy.
        lake = max([await timed(server_pid, read_lake(endpoint, heights, c)) for _ in range(repeat)], key=lambda r: r.mbps)
        bare = max([await timed(server_pid, read_bare(endpoint, keys, c)) for _ in range(repeat)], key=lambda r: r.mbps)
        print(
            f"{c:>4} | {lake.rate:>10.1f} {lake.mbps:>6.1f} {lake.cpu(lake.client_cpu):>6} {lake.cpu(lake.server_cpu):>6} | "
            f"{bare.rate:>10.1f} {bare.mbps:>6.1f} {bare.cpu(bare.client_cpu):>6} {bare.cpu(bare.server_cpu):>6} | "
            f"{lake.mbps / bare.mbps:>14.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--blocks", type=int, default=300, help="blocks to upload and read (default 300)")
    parser.add_argument("--concurrency", default="1,8,32,64", help="comma-separated prefetch levels")
    parser.add_argument("--repeat", type=int, default=2, help="runs per cell; the best is shown (default 2)")
    args = parser.parse_args()
    levels = [int(c) for c in args.concurrency.split(",")]
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(30))  # warnings and up
    with moto_process() as (endpoint, pid):
        t0 = time.perf_counter()
        heights, keys = upload(endpoint, args.blocks)
        total = sum(len(v) for b in (block_files(f) for _, f in fixture_blocks()) for v in b.values())
        print(
            f"moto S3 server {endpoint} (pid {pid}); {len(heights)} blocks, {len(keys)} objects, "
            f"~{total / len(fixture_blocks()) / 1e6:.2f} MB/block, uploaded in {time.perf_counter() - t0:.1f} s; "
            f"{os.cpu_count()} CPUs"
        )
        asyncio.run(bench(endpoint, pid, heights, keys, levels, args.repeat))


if __name__ == "__main__":
    main()
