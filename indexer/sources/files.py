"""A local folder in NEAR Lake layout: ``<12-digit height>/block.json`` + ``shard_<id>.json``."""

from __future__ import annotations

import asyncio
import os
import time
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
_validate = msgspec.json.Decoder(msgspec.Raw).decode
# Files younger than this are checked for being whole JSON before use: a mirror may be writing them.
_RECENT_SECONDS = 10.0


def _complete_json(data: bytes) -> bool:
    try:
        _validate(data)
    except msgspec.DecodeError:
        return False
    return True


def shard_ids(block_json: bytes) -> list[int]:
    """Shard ids of a block, read from its chunks (they are not contiguous on mainnet).

    An undecodable block.json has none: the decoder then files the block as a dead letter.
    """
    try:
        return [c.shard_id for c in _shards_of(block_json).chunks]
    except (msgspec.DecodeError, msgspec.ValidationError):
        return []


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

    async def _read_json(self, path: Path, what: str) -> bytes:
        """The file's bytes, waiting (bounded, with backoff) while it is missing or still being written."""
        for delay in [0.0, *backoff_delays(self.settings)]:
            if delay:
                metrics.SOURCE_RETRIES.labels(source=self.name, reason=what).inc()
                await asyncio.sleep(delay)
            try:
                data = path.read_bytes()
                if time.time() - path.stat().st_mtime < _RECENT_SECONDS and not _complete_json(data):
                    continue  # a mirror is still writing it
                return data
            except FileNotFoundError:
                continue
        metrics.SOURCE_ERRORS.labels(source=self.name, reason=what).inc()
        raise SourceError(f"files source: {path} is missing or incomplete after retries")

    async def _read(self, height: int) -> RawBlock:
        folder = self.root / f"{height:012d}"
        block = await self._read_json(folder / "block.json", "incomplete_block")
        shards = [await self._read_json(folder / f"shard_{sid}.json", "missing_shard") for sid in shard_ids(block)]
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
