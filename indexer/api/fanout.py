"""Committed changes to every API replica through Redis pub/sub.

With Redis, one replica at a time (the holder of a short lease in Redis) follows the store's
``commits`` feed, evicts the changed intents from Redis and publishes their (contract, intent
id) pairs; every replica, the holder too, receives them, evicts its in-process cache and pushes to
its WebSocket subscribers. The feed position lives in Redis, so the next holder goes on where the
last stopped. When Redis cannot be reached a replica follows the feed itself
(``invalidate.py``), so it stays true to the store either way; around such a switch a subscriber
may be pushed the same state twice (its ``seq`` still grows by one per message).

Without Redis (``run --api-port`` on the embedded store, or a single ``serve``), the replica
follows the feed itself.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import orjson
import structlog

from indexer.api import invalidate, queries
from indexer.api.backend import REDIS_ERRORS, Redis, RedisUnavailable
from indexer.api.cache import IntentCache
from indexer.api.live import Hub
from indexer.store.client import Store

log = structlog.get_logger(__name__)

CHANNEL = "near_intents:api:changes"
LEADER = "near_intents:api:feed_leader"
CURSOR = "near_intents:api:feed_cursor"


async def follow(store: Store, cache: IntentCache, hub: Hub, redis: Redis | None, interval: float,
                 lease: float = 3.0) -> None:
    """Run until cancelled, reading the feed every ``interval`` seconds (``--api-feed-interval``)."""
    if redis is None:
        await invalidate.follow_commits(store, cache, hub.changed, interval)
        return
    listener = asyncio.create_task(_listen(redis.url, cache, hub))
    wakeup = invalidate.Wakeup(store)
    try:
        await _lead(store, cache, hub, redis, interval, lease, wakeup)
    finally:
        wakeup.close()
        listener.cancel()
        try:
            await listener
        except asyncio.CancelledError:
            pass


def _keys(pairs: list[tuple[str, str]]) -> list[str]:
    return [k for contract, i in pairs for k in (f"/{i}", f"{contract}/{i}")]


async def _lead(store: Store, cache: IntentCache, hub: Hub, redis: Redis, interval: float, lease: float,
                wakeup: invalidate.Wakeup) -> None:
    me = uuid.uuid4().hex
    lead_cursor: dict[str, int] | None = None
    local_cursor: dict[str, int] | None = None
    known: dict[str, int] | None = None  # the feed position last seen in Redis: where a fallback starts
    while True:
        try:
            if await redis.call(lambda r: _claim(r, me, int(lease * 1000))):
                if lead_cursor is None:
                    raw = await redis.call(lambda r: r.get(CURSOR))
                    lead_cursor = orjson.loads(raw) if raw else await asyncio.to_thread(queries.commit_heads, store)
                    log.info("following the commits feed for every replica")
                pairs, lead_cursor = await invalidate.collect(store, lead_cursor)
                if pairs:
                    await cache.evict(_keys(pairs))
                    await redis.call(lambda r: r.publish(CHANNEL, orjson.dumps(pairs)))
                saved = orjson.dumps(lead_cursor)
                await redis.call(lambda r: r.set(CURSOR, saved))
                known = lead_cursor
            else:
                lead_cursor = None
                raw = await redis.call(lambda r: r.get(CURSOR))
                known = orjson.loads(raw) if raw else known
            local_cursor = None
        except RedisUnavailable:
            # Redis is away: this replica follows the feed itself until it is back.
            lead_cursor = None
            try:
                if local_cursor is None:  # from the last shared position: changes since are not lost
                    local_cursor = known or await asyncio.to_thread(queries.commit_heads, store)
                pairs, local_cursor = await invalidate.collect(store, local_cursor)
                if pairs:
                    await cache.evict(_keys(pairs))
                    await hub.changed(pairs)
            except Exception as exc:
                log.warning("following commits failed; retrying", error=str(exc).strip()[:300])
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a store hiccup must not end the loop
            log.warning("following commits failed; retrying", error=str(exc).strip()[:300])
        await wakeup.sleep(interval)


async def _claim(r: Any, me: str, lease_ms: int) -> bool:
    """Take the lease, or renew it when this replica holds it."""
    if await r.set(LEADER, me, nx=True, px=lease_ms):
        return True
    holder = await r.get(LEADER)
    if holder is not None and holder.decode() == me:
        await r.pexpire(LEADER, lease_ms)
        return True
    return False


async def _listen(url: str, cache: IntentCache, hub: Hub) -> None:
    """Receive published changes: evict the in-process cache, push to subscribers."""
    import redis.asyncio as aioredis

    while True:
        client = aioredis.from_url(url, health_check_interval=10)  # no read timeout: it waits for messages
        try:
            pubsub = client.pubsub()
            await pubsub.subscribe(CHANNEL)
            async for message in pubsub.listen():
                if message.get("type") != "message":
                    continue
                pairs = [(str(c), str(i)) for c, i in orjson.loads(message["data"])]
                for key in _keys(pairs):
                    cache.local.pop(key)
                await hub.changed(pairs)
        except asyncio.CancelledError:
            raise
        except (*REDIS_ERRORS, orjson.JSONDecodeError, ValueError) as exc:
            log.debug("change channel interrupted; resubscribing", error=str(exc))
            await asyncio.sleep(1.0)
        finally:
            await client.aclose()
