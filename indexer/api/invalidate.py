"""Keep the caches true to the store: follow the ``commits`` change feed and evict every intent a
committed batch changed, from the in-process cache and from Redis, so that a GET after a commit
never answers with the state before it (within ``interval`` seconds of the commit).

Without Redis a replica follows the feed itself; with Redis one replica follows it for all and
publishes what changed (``fanout.py``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog

from indexer.api import metrics, queries
from indexer.api.cache import IntentCache
from indexer.store import commits
from indexer.store.client import Store

log = structlog.get_logger(__name__)


OnChange = Callable[[list[tuple[str, str]]], Awaitable[None]]


class Wakeup:
    """The pause between two reads of the feed: ``interval`` seconds, or less when this process
    writes a stream's state (how a batch commits) through ``store``: with the API inside the
    daemon, its commits are pushed without waiting for the next read."""

    def __init__(self, store: Store):
        self._loop = asyncio.get_running_loop()
        self._event = asyncio.Event()
        self.close = store.observe_writes(self._written)

    def _written(self, table: str) -> None:
        if table == "streams":
            try:
                self._loop.call_soon_threadsafe(self._event.set)
            except RuntimeError:  # the loop is closed: nobody is waiting any more
                pass

    async def sleep(self, interval: float) -> None:
        try:
            await asyncio.wait_for(self._event.wait(), interval)
        except TimeoutError:
            pass
        # Cleared after the wait: a commit during the read that follows wakes the next pause.
        self._event.clear()


async def follow_commits(store: Store, cache: IntentCache, on_change: OnChange | None,
                         interval: float) -> None:
    """Run until cancelled; a store that does not answer is retried at the next tick.
    ``on_change`` gets the (contract, intent id) pairs of each committed batch, after eviction."""
    cursor: dict[str, int] | None = None
    wakeup = Wakeup(store)
    try:
        while True:
            try:
                if cursor is None:
                    cursor = await asyncio.to_thread(queries.commit_heads, store)
                cursor = await _step(store, cache, cursor, on_change)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # a store hiccup must not end the loop
                log.warning("following commits failed; retrying", error=str(exc).strip()[:300])
            await wakeup.sleep(interval)
    finally:
        wakeup.close()


async def collect(store: Store, cursor: dict[str, int]) -> tuple[list[tuple[str, str]], dict[str, int]]:
    """The (contract, intent id) pairs the batches committed after ``cursor`` changed, and the
    cursor after them."""
    seen = await asyncio.to_thread(commits.read_since, store, cursor)
    if not seen:
        return [], cursor
    pairs: list[tuple[str, str]] = []
    for c in seen:
        pairs += await asyncio.to_thread(queries.intents_changed, store, list(c.owners), c.low_height,
                                         c.high_height)
    pairs = list(dict.fromkeys(pairs))
    metrics.INVALIDATIONS.inc(len(pairs))
    return pairs, commits.advance(cursor, seen)


async def _step(store: Store, cache: IntentCache, cursor: dict[str, int], on_change: OnChange | None
                ) -> dict[str, int]:
    pairs, cursor = await collect(store, cursor)
    if pairs:
        await cache.evict([k for contract, i in pairs for k in (f"/{i}", f"{contract}/{i}")])
        if on_change is not None:
            await on_change(pairs)
    return cursor
