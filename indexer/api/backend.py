"""The API's Redis connection, and whether it answers.

A Redis that stops answering must not make every request wait for its timeout: after a failure
the connection is considered down and left alone for ``retry_after`` seconds, then tried again.
Going down and coming back are logged once each and shown by the ``near_intents_api_redis_up``
gauge and /readyz.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import structlog

from indexer.api import metrics

log = structlog.get_logger(__name__)
T = TypeVar("T")

# What redis-py raises when the server is away or too slow.
try:
    from redis.exceptions import ConnectionError as _RedisConnectionError
    from redis.exceptions import TimeoutError as _RedisTimeoutError

    REDIS_ERRORS: tuple[type[BaseException], ...] = (_RedisConnectionError, _RedisTimeoutError, OSError)
except ImportError:  # pragma: no cover - redis is a dependency
    REDIS_ERRORS = (OSError,)


class RedisUnavailable(Exception):
    """Redis is down (or was a moment ago): the caller falls back."""


class Redis:
    """One redis.asyncio client with an up/down state."""

    def __init__(self, url: str, timeout: float = 0.5, retry_after: float = 1.0,
                 clock: Callable[[], float] = time.monotonic):
        import redis.asyncio as aioredis

        self.url = url
        self.client: Any = aioredis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout,
                                             retry_on_timeout=False)
        self.retry_after = retry_after
        self._clock = clock
        self._down_since: float | None = None
        self.error: str | None = None
        metrics.REDIS_UP.set(1)

    @property
    def up(self) -> bool:
        return self._down_since is None

    def available(self) -> bool:
        """Up, or down long enough ago to be tried again."""
        return self._down_since is None or self._clock() - self._down_since >= self.retry_after

    async def call(self, fn: Callable[[Any], Awaitable[T]]) -> T:
        """``fn(client)``, or RedisUnavailable when Redis is down or fails now."""
        if not self.available():
            raise RedisUnavailable(self.error or "redis unreachable")
        try:
            result = await fn(self.client)
        except REDIS_ERRORS as exc:
            self.failed(exc)
            raise RedisUnavailable(str(exc)) from exc
        self.answered()
        return result

    def failed(self, exc: BaseException) -> None:
        first = self._down_since is None
        self._down_since = self._clock()
        self.error = str(exc) or type(exc).__name__
        metrics.REDIS_UP.set(0)
        if first:
            log.warning("redis unreachable", error=self.error)

    def answered(self) -> None:
        if self._down_since is not None:
            log.info("redis reachable again")
        self._down_since = None
        self.error = None
        metrics.REDIS_UP.set(1)

    async def ping(self) -> bool:
        """Try now, whatever the state: for /readyz."""
        try:
            await self.client.ping()
        except REDIS_ERRORS as exc:
            self.failed(exc)
            return False
        self.answered()
        return True

    async def close(self) -> None:
        await self.client.aclose()
