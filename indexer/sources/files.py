"""A local folder in NEAR Lake layout: ``<12-digit height>/block.json`` + ``shard_<id>.json``."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec
import structlog

from indexer import metrics
from indexer.sources.base import BlockSource, RawBlock, SourceError, backoff_delays

if TYPE_CHECKING:
    from indexer.config import Settings

log = structlog.get_logger(__name__)


class _Chunk(msgspec.Struct):
    shard_id: int


class _BlockShards(msgspec.Struct):
    chunks: list[_Chunk]


_shards_of = msgspec.json.Decoder(_BlockShards).decode


def shard_ids(block_json: bytes) -> list[int]:
    """Shard ids of a block, read from its chunks (they are not contiguous on mainnet)."""
    return [c.shard_id for c in _shards_of(block_json).chunks]


class FilesSource(BlockSource):
    name = "files"

    def __init__(self, path: str | os.PathLike[str], settings: "Settings"):
        self.root = Path(path).expanduser()
        self.settings = settings
        if not self.root.is_dir():
            raise SourceError(f"files source: {self.root} is not a folder (expected NEAR Lake layout: <height>/block.json)")

    def _heights(self) -> list[int]:
        out = []
        with os.scandir(self.root) as it:
            for entry in it:
                if entry.is_dir() and len(entry.name) == 12 and entry.name.isdigit():
                    out.append(int(entry.name))
        out.sort()
        return out

    async def final_head(self) -> int:
        heights = self._heights()
        if not heights:
            raise SourceError(f"files source: {self.root} holds no blocks")
        return heights[-1]

    async def _read_shard(self, folder: Path, shard_id: int) -> bytes:
        path = folder / f"shard_{shard_id}.json"
        for delay in [0.0, *backoff_delays(self.settings)]:
            if delay:
                metrics.SOURCE_RETRIES.labels(source=self.name, reason="missing_shard").inc()
                await asyncio.sleep(delay)
            try:
                return path.read_bytes()
            except FileNotFoundError:
                continue
        metrics.SOURCE_ERRORS.labels(source=self.name, reason="missing_shard").inc()
        raise SourceError(f"files source: {path} is missing (block.json lists shard {shard_id})")

    async def _read(self, height: int) -> RawBlock:
        folder = self.root / f"{height:012d}"
        block = (folder / "block.json").read_bytes()
        shards = [await self._read_shard(folder, sid) for sid in shard_ids(block)]
        return RawBlock(height=height, block=block, shards=shards)

    async def blocks(self, start: int, end: int | None = None) -> AsyncIterator[RawBlock]:
        last = start - 1
        while True:
            heights = [h for h in self._heights() if h > last and (end is None or h <= end)]
            for h in heights:
                # Reading from the page cache is faster than handing work to threads.
                yield await self._read(h)
                last = h
            if end is not None and (last >= end or not heights):
                return
            if not heights:
                await asyncio.sleep(self.settings.poll_interval)
