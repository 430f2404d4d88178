"""NEAR Lake on S3 (or an S3-compatible mirror), read with aiobotocore.

Layout: one folder per block, ``<12-digit height>/block.json`` plus ``shard_<id>.json`` for
each chunk. The bucket is requester-pays, so every request carries ``RequestPayer=requester``
and every request costs money: listing is paged (1,000 heights per LIST) and the head is found
with a handful of LISTs, never by walking the bucket.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Any, TypeVar

import aiohttp
import botocore.exceptions as bce
import structlog
from aiobotocore.session import get_session
from botocore.config import Config

from indexer import metrics
from indexer.sources.base import (
    BlockSource,
    RawBlock,
    SourceError,
    WaitNotice,
    backoff_delays,
    ordered_prefetch,
    shard_ids,
)

if TYPE_CHECKING:
    from indexer.config import Settings

log = structlog.get_logger(__name__)

T = TypeVar("T")

# S3 error codes that mean "slow down" rather than "broken".
_THROTTLE_CODES = frozenset(
    {"SlowDown", "Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequests", "RequestThrottled"}
)
_AUTH_CODES = frozenset(
    {
        "AccessDenied",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "ExpiredToken",
        "InvalidToken",
        "TokenRefreshRequired",
        "AllAccessDisabled",
        "AccountProblem",
    }
)
_REGION_CODES = frozenset({"PermanentRedirect", "AuthorizationHeaderMalformed", "IllegalLocationConstraintException"})
_NETWORK_ERRORS: tuple[type[BaseException], ...] = (
    bce.ConnectionError,  # EndpointConnectionError, ConnectTimeoutError, ProxyConnectionError
    bce.HTTPClientError,  # ReadTimeoutError, ConnectionClosedError, ResponseStreamingError
    aiohttp.ClientError,  # a body cut off while streaming
    TimeoutError,
)
_HANDLED: tuple[type[BaseException], ...] = (bce.ClientError, bce.NoCredentialsError, bce.PartialCredentialsError, *_NETWORK_ERRORS)

_HINTS = {
    "missing_shard": "block.json lists this shard but the file never appeared; check that the bucket is a complete "
    "NEAR Lake mirror, or raise --shard-retry-limit / --retry-max-delay if its uploader is slow",
    "missing_block": "the folder is listed but block.json never appeared; check that the bucket is a complete NEAR Lake mirror",
    "connection": "check network access to the endpoint (and --lake-endpoint / AWS_ENDPOINT_URL_S3 if you use a mirror), "
    "or use --source neardata",
    "throttled": "S3 keeps throttling; lower --prefetch",
    "server_error": "S3 keeps answering with server errors; try again later or lower --prefetch",
    "access_denied": "check the AWS credentials (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE): the NEAR Lake "
    "bucket is requester-pays, so the account must be allowed to pay for reads; or use --source neardata",
    "no_credentials": "set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE (the NEAR Lake bucket is requester-pays "
    "and refuses anonymous reads), or use --source neardata",
    "no_bucket": "check --lake-bucket, --network and --lake-endpoint",
    "wrong_region": "check --lake-region (NEAR Lake buckets are in eu-central-1) and --lake-endpoint",
    "clock_skew": "S3 refuses signatures from a clock that is off by more than 15 minutes; sync the system clock (NTP)",
    "client_error": "check --lake-bucket, --lake-region and --lake-endpoint",
}


def _classify(exc: BaseException) -> tuple[str, bool]:
    """(reason, transient) of a failed S3 call; reason ``missing`` is refined by the caller."""
    if isinstance(exc, bce.ClientError):
        code = str(exc.response.get("Error", {}).get("Code", ""))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        if code == "NoSuchBucket":
            return "no_bucket", False
        if code in ("NoSuchKey", "404") or status == 404:
            return "missing", True
        if code == "RequestTimeout":  # S3's 400 for a connection that stalled mid-request
            return "connection", True
        if code == "RequestTimeTooSkewed":
            return "clock_skew", False
        if code in _THROTTLE_CODES or status == 429:
            return "throttled", True
        if status >= 500:
            return "server_error", True
        if code in _AUTH_CODES or status == 403:
            return "access_denied", False
        if code in _REGION_CODES or status == 301:
            return "wrong_region", False
        return "client_error", False
    if isinstance(exc, (bce.NoCredentialsError, bce.PartialCredentialsError)):
        return "no_credentials", False
    return "connection", True


def _height_of(prefix: str) -> int | None:
    """Height of a ``<12 digits>/`` common prefix; None for anything else a mirror may hold."""
    if len(prefix) == 13 and prefix[12] == "/" and prefix[:12].isdigit():
        return int(prefix[:12])
    return None


class LakeSource(BlockSource):
    """Blocks from a NEAR Lake bucket. One aiobotocore client, created on first use.

    ``page_size`` is the MaxKeys of each LIST (S3 caps it at 1,000); tests lower it to exercise paging.
    """

    name = "lake"

    def __init__(self, settings: "Settings", *, page_size: int = 1000):
        self.settings = settings
        self.bucket = settings.lake_bucket_name
        self.page_size = page_size
        self._stack: AsyncExitStack | None = None
        self._s3: Any = None
        self._lock = asyncio.Lock()
        # Newest height seen so far: final_head() lists forward from it instead of searching.
        self._head_hint: int | None = None
        self._log = log.bind(source=self.name, bucket=self.bucket)
        # The clock and sleep of retries and polls: tests drive them instead of waiting.
        self._clock = time.monotonic
        self._sleep = asyncio.sleep

    # --- client -------------------------------------------------------------------------------

    async def _client(self) -> Any:
        if self._s3 is None:
            async with self._lock:
                if self._s3 is None:
                    config = Config(
                        # Retries happen here, with backoff and metrics; botocore retrying too would
                        # multiply the attempts and hide them.
                        retries={"total_max_attempts": 1, "mode": "standard"},
                        # Up to prefetch+2 blocks in flight, each fetching all its shards at once.
                        max_pool_connections=min(1024, (self.settings.prefetch + 2) * 10),
                        connect_timeout=10,
                        read_timeout=60,
                        user_agent_extra="near-intents-indexer",
                    )
                    stack = AsyncExitStack()
                    self._s3 = await stack.enter_async_context(
                        get_session().create_client(
                            "s3",
                            region_name=self.settings.lake_region,
                            endpoint_url=self.settings.lake_endpoint,  # None: AWS, or AWS_ENDPOINT_URL_S3
                            config=config,
                        )
                    )
                    self._stack = stack
                    self._log.debug("s3 client created", endpoint=self.endpoint)
        return self._s3

    @property
    def endpoint(self) -> str:
        if self._s3 is not None:
            return str(self._s3.meta.endpoint_url)
        return self.settings.lake_endpoint or f"https://s3.{self.settings.lake_region}.amazonaws.com"

    async def close(self) -> None:
        if self._stack is not None:
            stack, self._stack, self._s3 = self._stack, None, None
            await stack.aclose()

    # --- requests with retries ----------------------------------------------------------------

    async def _retrying(self, what: str, key: str, op: Callable[[], Awaitable[T]], missing: str = "missing", *,
                        awaited: str, **fields: Any) -> T:
        """Run ``op`` until it succeeds, retrying transient failures with bounded exponential backoff.

        ``awaited`` (and ``fields``) say what the operator is kept waiting for."""
        delays = backoff_delays(self.settings)
        notice = WaitNotice(self._log, self.name, awaited, len(delays) + 1, self.settings.wait_log_interval,
                            self._clock, key=key, **fields)
        for attempt in range(len(delays) + 1):
            try:
                return await op()
            except _HANDLED as exc:
                reason, transient = _classify(exc)
                if reason == "missing":
                    reason = missing
                if not transient or attempt == len(delays):
                    metrics.SOURCE_ERRORS.labels(source=self.name, reason=reason).inc()
                    raise self._error(what, key, reason, exc, attempt + 1) from exc
                metrics.SOURCE_RETRIES.labels(source=self.name, reason=reason).inc()
                # Say so at once when the endpoint misbehaves (a late shard is routine: debug only).
                loud = attempt == 0 and reason not in ("missing_shard", "missing_block")
                (self._log.warning if loud else self._log.debug)(
                    "s3 request failed; retrying", key=key, reason=reason, attempt=attempt + 1, retries=len(delays),
                    delay=delays[attempt], error=str(exc))
                notice.retry(attempt + 1, delays[attempt], reason)
                await self._sleep(delays[attempt])
        raise AssertionError("unreachable")

    def _error(self, what: str, key: str, reason: str, exc: BaseException, attempts: int) -> SourceError:
        self._log.warning("s3 request failed", key=key, reason=reason, attempts=attempts, error=str(exc))
        return SourceError(
            f"lake source: {what} s3://{self.bucket}/{key} at {self.endpoint} failed after {attempts} attempt(s) "
            f"({reason}: {exc}); {_HINTS.get(reason, _HINTS['client_error'])}"
        )

    async def _get(self, key: str, missing: str, height: int, shard_id: int | None = None) -> bytes:
        async def once() -> bytes:
            s3 = await self._client()
            resp = await s3.get_object(Bucket=self.bucket, Key=key, RequestPayer="requester")
            # Reading the body inside the retried step: a connection cut mid-body is retried too.
            async with resp["Body"] as body:
                return bytes(await body.read())

        if shard_id is None:
            return await self._retrying("GET", key, once, missing, awaited=f"block {height}", block_height=height)
        return await self._retrying("GET", key, once, missing, awaited=f"block {height} shard {shard_id}",
                                    block_height=height, shard_id=shard_id)

    async def _list(self, start: int, max_keys: int) -> tuple[list[int], bool]:
        """Heights ``>= start`` (one page, ascending) and whether more follow.

        StartAfter is the bare 12-digit ``start``: it sorts just before ``<start>/block.json``, so
        ``start`` itself is listed and ``start - 1`` is not.
        """
        after = f"{start:012d}"

        async def once() -> dict[str, Any]:
            s3 = await self._client()
            resp: dict[str, Any] = await s3.list_objects_v2(
                Bucket=self.bucket, Delimiter="/", StartAfter=after, MaxKeys=max_keys, RequestPayer="requester"
            )
            return resp

        resp = await self._retrying("LIST", f"?start-after={after}", once, awaited=f"the list of blocks from {start}",
                                    from_height=start)
        heights = [h for p in resp.get("CommonPrefixes", []) if (h := _height_of(p["Prefix"])) is not None]
        if heights:
            self._note(heights[-1])
        return heights, bool(resp.get("IsTruncated"))

    def _note(self, height: int) -> None:
        if self._head_hint is None or height > self._head_hint:
            self._head_hint = height

    # --- blocks -------------------------------------------------------------------------------

    async def _fetch(self, height: int) -> RawBlock:
        folder = f"{height:012d}/"
        block = await self._get(folder + "block.json", "missing_block", height)
        # An undecodable block.json has no shard ids: the decoder files it as a dead letter.
        ids = shard_ids(block)
        # Shards are independent objects: fetch them together so one block costs one round trip.
        tasks = [asyncio.ensure_future(self._get(f"{folder}shard_{sid}.json", "missing_shard", height, sid))
                 for sid in ids]
        try:
            shards = await asyncio.gather(*tasks)
        except BaseException:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
        return RawBlock(height=height, block=block, shards=list(shards))

    async def _heights(self, start: int, end: int | None) -> AsyncIterator[int]:
        nxt = start
        while end is None or nxt <= end:
            page, more = await self._list(nxt, self.page_size)
            for h in page:
                if end is not None and h > end:
                    return
                yield h
            if page:
                nxt = page[-1] + 1
            if more:
                continue
            # The listing reached the newest block in the bucket.
            if end is not None:
                if nxt <= end:
                    self._log.info("reached the newest block before the end height", head=nxt - 1, end=end)
                return
            await self._sleep(self.settings.poll_interval)

    async def blocks(self, start: int, end: int | None = None) -> AsyncIterator[RawBlock]:
        async for block in ordered_prefetch(self._heights(start, end), self._fetch, self.settings.prefetch):
            yield block

    # --- head ---------------------------------------------------------------------------------

    async def _first_from(self, height: int) -> int | None:
        page, _ = await self._list(height, 1)
        return page[0] if page else None

    async def final_head(self) -> int:
        """Newest height in the bucket.

        Cost: with a known height (the last listed one) this is usually one LIST of the few
        heights after it. Without one, or when more than a page of heights lies beyond it, it
        gallops forward in doubling steps and then bisects; each probe is a one-key LIST, so a
        cold start on mainnet takes about 45 LISTs once, instead of walking ~1e8 folders.
        """
        lo = self._head_hint
        if lo is None:
            lo = await self._first_from(0)
            if lo is None:
                raise SourceError(
                    f"lake source: bucket s3://{self.bucket} at {self.endpoint} holds no blocks; "
                    "check --lake-bucket, --network and --lake-endpoint"
                )
        page, more = await self._list(lo, self.page_size)
        if page:
            lo = page[-1]
        if not more:
            return lo
        # Invariant from here on: a block exists at lo, and none at or after hi.
        step = self.page_size
        while (found := await self._first_from(lo + step)) is not None:
            lo, step = found, step * 2
        hi = lo + step
        while hi > lo + 1:
            mid = (lo + hi) // 2
            found = await self._first_from(mid)
            if found is None:
                hi = mid
            else:
                lo = found
        self._note(lo)
        return lo
