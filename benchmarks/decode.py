"""Decode speed on the mainnet fixture bytes: this project's path vs near-lake-framework vs orjson.

    python benchmarks/decode.py [--rounds N]

Every variant decodes the same bytes (all block.json and shard_*.json files of
tests/fixtures/lake-mainnet) in the same process, one core, and prints MB/s and blocks/s:

* project (default contracts): what `run`/`backfill` do with intents.near tracked: shards that
  never mention a tracked account are skipped, the rest decoded with msgspec views.
* project (resolve-all-tx): every shard decoded (every receipt linked to its transaction).
* project (busy contracts tracked): accounts that act in every fixture block are tracked, so
  receipts, events and rows are really produced.
* near-lake-framework 0.1.3: Block.from_json + IndexerShard.from_json (dataclasses-json).
* orjson.loads: bare JSON parsing of every file, the bar to approach.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from indexer.config import ContractSpec  # noqa: E402
from indexer.decode.block import BlockDecoder, DecoderConfig  # noqa: E402
from indexer.sources.base import RawBlock  # noqa: E402
from indexer.sources.files import shard_ids  # noqa: E402

FIXTURES = ROOT / "tests" / "fixtures" / "lake-mainnet"
BUSY = ["intents.near:verifier", "token.sweat", "earn.kaiching", "users.kaiching", "game.hot.tg"]


def load_blocks() -> list[RawBlock]:
    blocks = []
    for folder in sorted(FIXTURES.iterdir()):
        block = (folder / "block.json").read_bytes()
        shards = [(folder / f"shard_{sid}.json").read_bytes() for sid in shard_ids(block)]
        blocks.append(RawBlock(int(folder.name), block, shards))
    return blocks


def measure(name: str, fn, blocks: list[RawBlock], rounds: int) -> float:
    total = sum(b.size for b in blocks)
    fn(blocks)  # warm-up
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        for _ in range(rounds):
            fn(blocks)
        best = min(best, time.perf_counter() - started)
    mb_s = total * rounds / best / 1e6
    print(f"{name:<40} {mb_s:>10.1f} MB/s {len(blocks) * rounds / best:>10.1f} blocks/s")
    return mb_s


def project(contracts: list[str], resolve_all: bool = False):
    decoder = BlockDecoder(DecoderConfig([ContractSpec.parse(c) for c in contracts], resolve_all_tx=resolve_all))

    def run(blocks: list[RawBlock]) -> None:
        for b in blocks:
            decoder.decode(b)

    return run


def bare_orjson(blocks: list[RawBlock]) -> None:
    for b in blocks:
        orjson.loads(b.block)
        for s in b.shards:
            orjson.loads(s)


def near_lake_framework(blocks: list[RawBlock]) -> None:
    for b in blocks:
        Block.from_json(b.block)
        for s in b.shards:
            IndexerShard.from_json(s)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    from near_lake_framework.near_primitives import Block, IndexerShard

    logging.disable(logging.CRITICAL)  # near-lake-framework configures INFO logging at import
    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))
    blocks = load_blocks()
    print(f"{len(blocks)} mainnet blocks, {sum(b.size for b in blocks) / 1e6:.2f} MB of Lake JSON, "
          f"{args.rounds} rounds, best of 3\n")
    orj = measure("orjson.loads (every file)", bare_orjson, blocks, args.rounds)
    ours = measure("project (intents.near tracked)", project(["intents.near:verifier"]), blocks, args.rounds)
    full = measure("project (resolve-all-tx)", project(["intents.near:verifier"], True), blocks, args.rounds)
    busy = measure("project (busy contracts tracked)", project(BUSY), blocks, args.rounds)
    nlf = measure("near-lake-framework 0.1.3", near_lake_framework, blocks, max(1, args.rounds // 10))
    print()
    print(f"project / orjson            {ours / orj:6.2f}x   (target >= 0.5x)")
    print(f"project / near-lake-fw      {ours / nlf:6.1f}x   (target >= 30x)")
    print(f"resolve-all-tx / orjson     {full / orj:6.2f}x")
    print(f"busy contracts / orjson     {busy / orj:6.2f}x")
    print(f"busy contracts / near-lake  {busy / nlf:6.1f}x")
