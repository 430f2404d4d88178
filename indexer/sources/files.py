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
from indexer.sources.base import BlockSource, RawBlock, SourceError, WaitNotice, backoff_delays, shard_ids

if TYPE_CHECKING:
    from indexer.config import Settings

log = structlog.get_logger(__name__)


_validate = msgspec.json.Decoder(msgspec.Raw).decode
# Files younger than this are checked for being whole JSON before use: a mirror may be writing them.
_RECENT_SECONDS = 10.0


def _complete_json(data: bytes) -> bool:
    try:
        _validate(data)
    except msgspec.DecodeError:
        return False
    return True


class FilesSource(BlockSource):
    name = "files"

    def __init__(self, path: str | os.PathLike[str], settings: "Settings"):
        self.root = Path(path).expanduser()
        self.settings = settings
        self._delays = backoff_delays(settings)
        self._log = log.bind(source=self.name)
        # The clock and sleep of retries and polls: tests drive them instead of waiting.
        self._clock = time.monotonic
        self._sleep = asyncio.sleep
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

    def _try_read(self, path: Path) -> bytes | None:
        """The file's bytes, or None while it is missing or (freshly written and) not yet whole JSON."""
        try:
            data = path.read_bytes()
            if time.time() - path.stat().st_mtime < _RECENT_SECONDS and not _complete_json(data):
                return None  # a mirror is still writing it
            return data
        except FileNotFoundError:
            return None

    def _read_now(self, height: int) -> tuple[bytes | None, list[int], list[bytes | None]]:
        """One block's files as they are now.

        Read in the event loop's thread: from the page cache a read costs less than handing it
        to a worker thread and back (benchmarks/README.md has the comparison)."""
        folder = self.root / f"{height:012d}"
        block = self._try_read(folder / "block.json")
        if block is None:
            return None, [], []
        sids = shard_ids(block)
        return block, sids, [self._try_read(folder / f"shard_{sid}.json") for sid in sids]

    async def _wait_for(self, path: Path, reason: str, height: int, shard_id: int | None = None) -> bytes:
        awaited = f"block {height}" if shard_id is None else f"block {height} shard {shard_id}"
        fields = {"block_height": height} if shard_id is None else {"block_height": height, "shard_id": shard_id}
        notice = WaitNotice(self._log, self.name, awaited, len(self._delays) + 1, self.settings.wait_log_interval,
                            self._clock, path=str(path), **fields)
        for attempt, delay in enumerate(self._delays, 1):
            metrics.SOURCE_RETRIES.labels(source=self.name, reason=reason).inc()
            notice.retry(attempt, delay, reason)
            await self._sleep(delay)
            data = self._try_read(path)
            if data is not None:
                return data
        metrics.SOURCE_ERRORS.labels(source=self.name, reason=reason).inc()
        raise SourceError(f"files source: {path} is missing or incomplete after {len(self._delays)} retries")

    async def _read(self, height: int) -> RawBlock:
        folder = self.root / f"{height:012d}"
        block, sids, shards = self._read_now(height)
        if block is None:
            block = await self._wait_for(folder / "block.json", "incomplete_block", height)
            sids = shard_ids(block)
            shards = [self._try_read(folder / f"shard_{sid}.json") for sid in sids]
        for i, sid in enumerate(sids):
            if shards[i] is None:
                shards[i] = await self._wait_for(folder / f"shard_{sid}.json", "missing_shard", height, sid)
        return RawBlock(height=height, block=block, shards=shards)  # type: ignore[arg-type]

    async def blocks(self, start: int, end: int | None = None) -> AsyncIterator[RawBlock]:
        last = start - 1
        while True:
            heights = [h for h in self._heights() if h > last and (end is None or h <= end)]
            for h in heights:
                yield await self._read(h)
                last = h
            if end is not None and (last >= end or not heights):
                return
            if not heights:
                await self._sleep(self.settings.poll_interval)
