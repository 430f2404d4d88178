"""Intent lookups through three layers, nearest first: an in-process LRU with a short TTL, Redis
(shared by every replica, ``api_cache_ttl``), then the store. A layer that misses is filled on the
way back. Values are the response bodies (JSON bytes), so a hit costs no serialisation.

Only found intents are cached: an intent the store does not know yet must appear as soon as a
commit brings it. ``evict`` removes changed intents from both layers (see ``invalidate.py``).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable

from indexer.api import metrics
from indexer.api.backend import Redis, RedisUnavailable

PREFIX = "near_intents:api:intent:"


class LocalCache:
    """A bounded LRU whose entries expire ``ttl`` seconds after they were stored."""

    def __init__(self, size: int, ttl: float, clock: Callable[[], float] = time.monotonic):
        self.size, self.ttl, self._clock = size, ttl, clock
        self._items: OrderedDict[str, tuple[float, bytes]] = OrderedDict()

    def get(self, key: str) -> bytes | None:
        item = self._items.get(key)
        if item is None:
            return None
        if item[0] <= self._clock():
            del self._items[key]
            return None
        self._items.move_to_end(key)
        return item[1]

    def put(self, key: str, value: bytes) -> None:
        if self.ttl <= 0:
            return
        self._items[key] = (self._clock() + self.ttl, value)
        self._items.move_to_end(key)
        while len(self._items) > self.size:
            self._items.popitem(last=False)

    def pop(self, key: str) -> None:
        self._items.pop(key, None)

    def __len__(self) -> int:
        return len(self._items)


class IntentCache:
    def __init__(self, local: LocalCache, redis: Redis | None, ttl: float):
        self.local, self.redis, self.ttl = local, redis, ttl

    async def get(self, key: str, load: Callable[[], Awaitable[bytes | None]]) -> bytes | None:
        value = self.local.get(key)
        if value is not None:
            metrics.CACHE.labels("local", "hit").inc()
            return value
        metrics.CACHE.labels("local", "miss").inc()
        value = await self._from_redis(key)
        if value is None:
            value = await load()
            if value is None:
                return None
            await self._to_redis(key, value)
        self.local.put(key, value)
        return value

    async def _from_redis(self, key: str) -> bytes | None:
        if self.redis is None:
            return None
        try:
            value = await self.redis.call(lambda r: r.get(PREFIX + key))
        except RedisUnavailable:
            return None
        metrics.CACHE.labels("redis", "hit" if value is not None else "miss").inc()
        return value

    async def _to_redis(self, key: str, value: bytes) -> None:
        if self.redis is None:
            return
        try:
            await self.redis.call(lambda r: r.set(PREFIX + key, value, px=int(self.ttl * 1000)))
        except RedisUnavailable:
            pass

    async def evict(self, keys: list[str]) -> None:
        for key in keys:
            self.local.pop(key)
        if self.redis is not None and keys:
            try:
                await self.redis.call(lambda r: r.delete(*(PREFIX + k for k in keys)))
            except RedisUnavailable:
                pass  # its entries expire within api_cache_ttl
