"""FastNEAR's neardata HTTP API: the whole StreamerMessage of a block in one GET.

``GET /v0/block/{h}`` answers ``{"block": ..., "shards": [...]}``, or ``null`` for a skipped
height; old heights redirect to an archive host. ``GET /v0/last_block/final`` redirects to
``/v0/block/{newest final height}``, so reading its Location gives the head without a body.
Heights just past the head make the server hold the request until the block exists, and more
than ~10 past it answer 404 ``BLOCK_DOES_NOT_EXIST``. This source therefore never asks past the
head it knows: at the head it polls ``last_block/final`` every ``poll_interval`` (a tiny
redirect, no block body) and only then requests the new heights.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

import aiohttp
import msgspec
import structlog
from yarl import URL

from indexer import metrics
from indexer.sources.base import BlockSource, RawBlock, SourceError, WaitNotice, backoff_delays, ordered_prefetch

if TYPE_CHECKING:
    from indexer.config import Settings

log = structlog.get_logger(__name__)

T = TypeVar("T")


class _Message(msgspec.Struct):
    # Raw keeps the exact bytes of each part, so splitting costs one scan and no object building.
    block: msgspec.Raw
    shards: list[msgspec.Raw]


class _Header(msgspec.Struct):
    height: int


class _HeadBlock(msgspec.Struct):
    header: _Header


class _HeadMessage(msgspec.Struct):
    block: _HeadBlock


_decode_message = msgspec.json.Decoder(_Message | None).decode
_decode_head = msgspec.json.Decoder(_HeadMessage).decode
_BLOCK_PATH = re.compile(r"/v0/block/(\d+)/?$")
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_MAX_HOPS = 4

_HINTS = {
    "connection": "check network access or use --source lake/files:PATH",
    "throttled": "neardata keeps throttling (its bandwidth is shared); lower --prefetch",
    "server_error": "neardata keeps answering with server errors; try again later or use --source lake",
    "not_ready": "neardata does not have a block it announced as final yet; try again later",
    "bad_response": "the answer is not a neardata block; check --neardata-url",
    "out_of_range": "the height is outside what this network's neardata serves; check --network and the start height",
    "http_error": "check --neardata-url",
}


class _HttpFailure(Exception):
    """A response that is not the expected one, classified."""

    def __init__(self, reason: str, transient: bool, detail: str):
        super().__init__(detail)
        self.reason = reason
        self.transient = transient


def _classify_status(status: int, body: bytes) -> _HttpFailure:
    snippet = body[:200].decode("utf-8", "replace")
    detail = f"HTTP {status}: {snippet}"
    if status == 404:
        kind = _error_type(body)
        if kind == "BLOCK_DOES_NOT_EXIST":
            return _HttpFailure("not_ready", True, detail)
        if kind in ("BLOCK_HEIGHT_TOO_LOW", "BLOCK_HEIGHT_TOO_HIGH"):
            return _HttpFailure("out_of_range", False, detail)
        return _HttpFailure("http_error", False, detail)
    if status == 429:
        return _HttpFailure("throttled", True, detail)
    if status >= 500:
        # Includes 500 "The block is not cached", which clears once the cache fills.
        return _HttpFailure("server_error", True, detail)
    return _HttpFailure("http_error", False, detail)


class _ErrorBody(msgspec.Struct):
    type: str = ""


def _error_type(body: bytes) -> str:
    try:
        return msgspec.json.decode(body, type=_ErrorBody).type
    except (msgspec.DecodeError, msgspec.ValidationError):
        return ""


def split_message(body: bytes) -> tuple[bytes, list[bytes]] | None:
    """``(block bytes, [shard bytes...])`` of a neardata StreamerMessage; None for ``null``."""
    msg = _decode_message(body)
    if msg is None:
        return None
    return bytes(msg.block), [bytes(s) for s in msg.shards]


class NeardataSource(BlockSource):
    """Blocks from a neardata server (``settings.neardata_base_url``), over one aiohttp session."""

    name = "neardata"

    def __init__(self, settings: "Settings"):
        self.settings = settings
        self.base = settings.neardata_base_url
        self._session: aiohttp.ClientSession | None = None
        self._log = log.bind(source=self.name, base=self.base)
        # The clock and sleep of retries and polls: tests drive them instead of waiting.
        self._clock = time.monotonic
        self._sleep = asyncio.sleep

    def _http(self) -> aiohttp.ClientSession:
        # Created on first use so that it binds to the running event loop.
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=60),
                # ordered_prefetch keeps up to prefetch+2 requests in flight; a few spare for head polls.
                connector=aiohttp.TCPConnector(limit=self.settings.prefetch + 4),
                headers={"User-Agent": "near-intents-indexer"},
                trust_env=True,  # honour HTTPS_PROXY like the AWS SDK does
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    async def _retrying(self, url: str, op: Callable[[], Awaitable[T]], *, awaited: str, **fields: Any) -> T:
        """Run ``op`` until it succeeds, retrying transient failures with bounded exponential backoff.

        ``awaited`` (and ``fields``) say what the operator is kept waiting for."""
        delays = backoff_delays(self.settings)
        notice = WaitNotice(self._log, self.name, awaited, len(delays) + 1, self.settings.wait_log_interval,
                            self._clock, url=url, **fields)
        for attempt in range(len(delays) + 1):
            try:
                return await op()
            except _HttpFailure as exc:
                reason, transient, error = exc.reason, exc.transient, str(exc)
            except (aiohttp.TooManyRedirects, aiohttp.InvalidURL) as exc:
                reason, transient, error = "http_error", False, f"{type(exc).__name__}: {exc}"
            except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, TimeoutError) as exc:
                reason, transient, error = "connection", True, f"{type(exc).__name__}: {exc}"
            if not transient or attempt == len(delays):
                metrics.SOURCE_ERRORS.labels(source=self.name, reason=reason).inc()
                self._log.warning("neardata request failed", url=url, reason=reason, attempts=attempt + 1, error=error)
                if reason == "connection":
                    raise SourceError(f"neardata source: cannot reach {url}: {error}; {_HINTS['connection']}")
                raise SourceError(
                    f"neardata source: GET {url} failed after {attempt + 1} attempt(s) ({reason}: {error}); "
                    f"{_HINTS.get(reason, _HINTS['http_error'])}"
                )
            metrics.SOURCE_RETRIES.labels(source=self.name, reason=reason).inc()
            # Say so at once when the host misbehaves (a block not served yet is routine: debug only).
            loud = attempt == 0 and reason != "not_ready"
            (self._log.warning if loud else self._log.debug)(
                "neardata request failed; retrying", url=url, reason=reason, attempt=attempt + 1, retries=len(delays),
                delay=delays[attempt], error=error)
            notice.retry(attempt + 1, delays[attempt], reason)
            await self._sleep(delays[attempt])
        raise AssertionError("unreachable")

    # --- blocks -------------------------------------------------------------------------------

    async def _fetch(self, height: int) -> RawBlock | None:
        url = f"{self.base}/v0/block/{height}"

        async def once() -> RawBlock | None:
            async with self._http().get(url) as resp:  # follows the redirect of old heights to the archive
                body = await resp.read()
                if resp.status != 200:
                    raise _classify_status(resp.status, body)
            try:
                parts = split_message(body)
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                raise _HttpFailure("bad_response", True, f"{exc}: {body[:120]!r}") from None
            if parts is None:
                return None  # a skipped height
            return RawBlock(height=height, block=parts[0], shards=parts[1])

        return await self._retrying(url, once, awaited=f"block {height}", block_height=height)

    async def _heights(self, start: int, end: int | None) -> AsyncIterator[int]:
        head = await self.final_head()
        h = start
        while end is None or h <= end:
            if h > head:
                newer = await self.final_head()
                if newer <= head:
                    if end is not None:
                        self._log.info("reached the final head before the end height", head=head, end=end)
                        return
                    await self._sleep(self.settings.poll_interval)
                    continue
                head = newer
            yield h
            h += 1

    async def blocks(self, start: int, end: int | None = None) -> AsyncIterator[RawBlock]:
        async for block in ordered_prefetch(self._heights(start, end), self._fetch, self.settings.prefetch):
            yield block

    # --- head ---------------------------------------------------------------------------------

    async def final_head(self) -> int:
        """Height named by the ``last_block/final`` redirect (its Location, not the block body)."""
        start = f"{self.base}/v0/last_block/final"

        async def once() -> int:
            url = URL(start)
            for _ in range(_MAX_HOPS):
                async with self._http().get(url, allow_redirects=False) as resp:
                    if resp.status in _REDIRECTS and "Location" in resp.headers:
                        url = resp.url.join(URL(resp.headers["Location"]))
                        if m := _BLOCK_PATH.search(url.path):
                            return int(m.group(1))
                        continue  # e.g. an archive host pointing at the main host's last_block
                    body = await resp.read()
                    if resp.status != 200:
                        raise _classify_status(resp.status, body)
                # A proxy in between may have followed the redirect itself: read the height from the body.
                try:
                    return _decode_head(body).block.header.height
                except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                    raise _HttpFailure("bad_response", True, f"{exc}: {body[:120]!r}") from None
            raise _HttpFailure("bad_response", False, f"more than {_MAX_HOPS} redirects from {start}")

        return await self._retrying(start, once, awaited="the final head")
