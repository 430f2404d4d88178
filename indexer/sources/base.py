"""The contract every block source fulfils, and the machinery they share.

Every source module depends on this one alone; the factory that picks a source from the
settings lives in :mod:`indexer.sources.factory`.
"""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import msgspec

if TYPE_CHECKING:
    from indexer.config import Settings


class _Chunk(msgspec.Struct):
    shard_id: int


class _BlockShards(msgspec.Struct):
    chunks: list[_Chunk]


_shards_of = msgspec.json.Decoder(_BlockShards).decode


class SourceError(Exception):
    """A source cannot deliver; the message names the source and what to check."""


@dataclass(slots=True)
class RawBlock:
    """One block as the Lake stores it: ``block.json`` and one ``shard_<id>.json`` per chunk.

    Bytes stay undecoded here so that the decoder can skip shards it has no use for.
    """

    height: int
    block: bytes
    shards: list[bytes] = field(default_factory=list)

    @property
    def size(self) -> int:
        return len(self.block) + sum(len(s) for s in self.shards)


class BlockSource(ABC):
    """Yields blocks in height order from ``start`` to ``end`` (inclusive; None = follow the head)."""

    name: str = "source"

    @abstractmethod
    def blocks(self, start: int, end: int | None = None) -> AsyncIterator[RawBlock]:
        """Blocks with ``start <= height <= end``, ascending; skipped heights are simply absent."""

    @abstractmethod
    async def final_head(self) -> int:
        """Height of the newest final block the source can serve."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""

    async def __aenter__(self) -> "BlockSource":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


async def ordered_prefetch(
    heights: AsyncIterator[int],
    fetch: Callable[[int], Awaitable[RawBlock | None]],
    concurrency: int,
) -> AsyncIterator[RawBlock]:
    """Fetch up to ``concurrency`` heights at once and yield the results in the heights' order.

    ``fetch`` returns None for a height that turned out to have no block.
    """
    pending: asyncio.Queue[asyncio.Task[RawBlock | None] | None] = asyncio.Queue(maxsize=concurrency)

    async def feed() -> None:
        try:
            async for h in heights:
                await pending.put(asyncio.ensure_future(fetch(h)))
        finally:
            await pending.put(None)

    feeder = asyncio.create_task(feed())
    try:
        while True:
            task = await pending.get()
            if task is None:
                break
            block = await task
            if block is not None:
                yield block
        await feeder  # surfaces an exception raised while listing heights
    finally:
        feeder.cancel()
        while not pending.empty():
            t = pending.get_nowait()
            if t is not None:
                t.cancel()


class WaitNotice:
    """Makes one wait of a source visible: an info line on its first retry, then one every ``interval`` s.

    A late shard or an unreachable host is retried for a minute or more; logged at debug only,
    the operator would see nothing all that time. ``clock`` is the source's, so that tests can
    drive it.
    """

    def __init__(self, logger: Any, source: str, awaited: str, tries: int, interval: float,
                 clock: Callable[[], float] = time.monotonic, **fields: Any):
        self._log = logger  # bound to the source's name
        self.source = source
        self.awaited = awaited
        self.tries = tries
        self._interval = interval
        self._clock = clock
        self._fields = fields
        self._next_at: float | None = None

    def retry(self, attempt: int, delay: float, reason: str) -> None:
        """Try ``attempt`` (1-based) failed for ``reason``; the next one comes in ``delay`` seconds."""
        now = self._clock()
        if self._next_at is not None and now < self._next_at:
            return
        self._next_at = now + self._interval
        self._log.info(f"waiting for {self.awaited} from the {self.source} source: try {attempt} of {self.tries} "
                       f"failed ({reason}), next try in {delay:g} s", awaited=self.awaited, attempt=attempt,
                       tries=self.tries, next_try_s=delay, reason=reason, **self._fields)


def backoff_delays(settings: "Settings") -> list[float]:
    """Exponential retry delays, bounded in count by ``shard_retry_limit`` and in size by ``retry_max_delay``."""
    delays, delay = [], settings.retry_base_delay
    for _ in range(settings.shard_retry_limit):
        delays.append(min(delay, settings.retry_max_delay))
        delay = min(delay * 2, settings.retry_max_delay)  # capped as it goes: 2**1024 overflows a float
    return delays


def shard_ids(block_json: bytes) -> list[int]:
    """Shard ids of a block, read from its chunks (they are not contiguous on mainnet).

    An undecodable block.json has none: the decoder then files the block as a dead letter.
    """
    try:
        return [c.shard_id for c in _shards_of(block_json).chunks]
    except (msgspec.DecodeError, msgspec.ValidationError):
        return []
