"""Rate limits per client with the ``limits`` library: fixed windows on Redis (shared by every
replica) or in process memory when no Redis is configured.

A client is its API key when it sends one (the ``api_key_header``; stored hashed), else its IP
address: the connecting address, or the first address in ``X-Forwarded-For`` not belonging to a
trusted proxy when the connection comes from one. Every answer carries the IETF draft headers
``RateLimit-Policy: "reads";q=100;w=60`` and ``RateLimit: "reads";r=57;t=42``; a refusal is 429
with ``Retry-After``. When Redis cannot be asked, ``api_limit_policy`` decides: fail-open lets the
request through unlimited, fail-closed refuses it (503); both are counted and logged.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import structlog
from limits import RateLimitItem, parse
from limits.aio.strategies import FixedWindowRateLimiter

from indexer.api import metrics
from indexer.api.backend import REDIS_ERRORS, Redis

log = structlog.get_logger(__name__)


class LimiterUnavailable(Exception):
    """The limit cannot be checked and the policy is fail-closed."""


@dataclass(frozen=True)
class Decision:
    policy: str
    item: RateLimitItem
    allowed: bool
    remaining: int
    reset_in: int  # seconds until the window resets

    def headers(self) -> dict[str, str]:
        window = self.item.get_expiry()
        out = {"RateLimit-Policy": f'"{self.policy}";q={self.item.amount};w={window}',
               "RateLimit": f'"{self.policy}";r={self.remaining};t={self.reset_in}'}
        if not self.allowed:
            out["Retry-After"] = str(max(self.reset_in, 1))
        return out


def _storage(redis_url: str | None) -> Any:
    if redis_url is None:
        from limits.aio.storage import MemoryStorage

        return MemoryStorage()
    from limits.aio.storage import RedisStorage

    uri = "async+" + redis_url if not redis_url.startswith("unix") else "async+redis+" + redis_url
    return RedisStorage(uri, implementation="redispy", key_prefix="near_intents:api:limits", socket_timeout=0.5,
                        socket_connect_timeout=0.5)


class Limiter:
    def __init__(self, policies: dict[str, str], redis_url: str | None, redis: Redis | None, fail_closed: bool):
        self.items = {name: parse(text) for name, text in policies.items()}
        self.storage = _storage(redis_url)
        self.strategy = FixedWindowRateLimiter(self.storage)
        self.redis, self.fail_closed = redis, fail_closed

    @property
    def mode(self) -> str:
        """What the limits do now, for /readyz."""
        if self.redis is None:
            return "enforced in process (no Redis)"
        if self.redis.up:
            return "enforced on Redis"
        return "refusing requests (fail-closed, Redis unreachable)" if self.fail_closed \
            else "not enforced (fail-open, Redis unreachable)"

    async def check(self, policy: str, client: str) -> Decision | None:
        """Count one request; None when it could not be counted and fail-open lets it through."""
        item = self.items[policy]
        if self.redis is not None and not self.redis.available():
            return self._unavailable()
        try:
            allowed = await self.strategy.hit(item, policy, client)
            stats = await self.strategy.get_window_stats(item, policy, client)
        except REDIS_ERRORS as exc:
            if self.redis is not None:
                self.redis.failed(exc)
            return self._unavailable()
        if self.redis is not None:
            self.redis.answered()
        reset_in = max(0, math.ceil(stats.reset_time - time.time()))
        if not allowed:
            metrics.RATE_LIMITED.labels(policy).inc()
        return Decision(policy, item, allowed, max(stats.remaining, 0), reset_in)

    def _unavailable(self) -> None:
        if self.fail_closed:
            metrics.LIMITER_DEGRADED.labels("refused").inc()
            raise LimiterUnavailable("rate limits cannot be checked: Redis is unreachable (fail-closed policy)")
        metrics.LIMITER_DEGRADED.labels("allowed").inc()
        return None

    async def close(self) -> None:
        bridge = getattr(self.storage, "bridge", None)
        client = getattr(bridge, "storage", None)
        if client is not None and hasattr(client, "aclose"):
            await client.aclose()


def client_id(remote: str | None, forwarded_for: str | None, api_key: str | None,
              trusted: Iterable[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> str:
    """Who a request counts against (see the module docstring)."""
    if api_key:
        return "key:" + hashlib.sha256(api_key.encode()).hexdigest()[:32]
    return "ip:" + client_ip(remote, forwarded_for, trusted)


def client_ip(remote: str | None, forwarded_for: str | None,
              trusted: Iterable[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> str:
    nets = list(trusted)
    ip = remote or "unknown"
    if not forwarded_for or not _in(ip, nets):
        return ip
    # Right to left: each trusted proxy appended the address it got the request from.
    for hop in reversed([h.strip() for h in forwarded_for.split(",") if h.strip()]):
        if not _in(hop, nets):
            return hop if _is_ip(hop) else ip
        ip = hop
    return ip


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _in(text: str, nets: list[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> bool:
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        return False
    return any(addr in net for net in nets)
