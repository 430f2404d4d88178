"""source -> decode -> store: the ingest loop shared by ``run`` and ``backfill``.

The source prefetches concurrently into a bounded queue; the loop decodes blocks in order,
checks ``prev_hash`` continuity, and hands batches to the store thread while it goes on
decoding (one batch in flight at a time). A batch is flushed when it is large, old, or when
the loop has caught up with the chain head; ``store.writer`` commits it under the stream's lease.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import structlog

from indexer import metrics
from indexer.config import Settings
from indexer.decode.block import BlockDecoder, DecodedBlock, DecoderConfig
from indexer.decode.emit import Emitter
from indexer.decode.rows import Rows
from indexer.sources.base import BlockSource, RawBlock
from indexer.decode.fingerprint import fingerprints
from indexer.store import streams
from indexer.store.client import Store
from indexer.store.writer import Batch, StreamSpec, Writer

log = structlog.get_logger(__name__)

MAX_BATCH_AGE = 10.0  # seconds: even a long catch-up checkpoints at least this often


class ChainBreakError(Exception):
    """A block's prev_hash does not match the previous block (fatal with --strict-chain)."""


@dataclass
class Progress:
    start_height: int
    end_height: int | None
    height: int = 0
    blocks: int = 0
    bytes: int = 0
    rows: int = 0
    chain_breaks: int = 0
    started: float = field(default_factory=time.monotonic)

    @property
    def elapsed(self) -> float:
        return max(time.monotonic() - self.started, 1e-9)


@dataclass
class Plan:
    """Which stream to run and where it resumes."""

    spec: StreamSpec
    resume_height: int
    prev_hash: str  # hash of the block before resume_height, '' when unknown
    restart: bool = False  # a finished stream indexed again from its start (--reindex)

    @property
    def stream(self) -> str:
        return self.spec.stream

    @property
    def start_height(self) -> int:
        return self.spec.start_height

    @property
    def end_height(self) -> int | None:
        return self.spec.end_height


def stream_spec(settings: Settings, stream: str, start: int, end: int | None, *, reindex: bool = False) -> StreamSpec:
    config = DecoderConfig.from_settings(settings)
    fps = fingerprints(config)
    return StreamSpec(stream, tuple(sorted(fps)), start, end, fps, reindex)


async def plan_backfill(store: Store, settings: Settings, source: BlockSource, start: int, end: int | None, *,
                        reindex: bool = False, stream: str | None = None) -> Plan | None:
    """The plan of ``backfill --from start [--to end]``; None when that range is indexed already.

    Without ``end`` the stream is ``backfill:<start>-head``: the head at its first launch is stored
    as its end, so an interrupted run resumes instead of starting over. ``stream`` names another
    stream for the range (a part of a parallel backfill).
    """
    stream = stream or streams.backfill_stream(start, end)
    state = await asyncio.to_thread(streams.read, store, stream)
    if end is None:
        end = state.end_height if state is not None and state.end_height is not None else await source.final_head()
        log.info("backfill up to the chain head as of its first launch", stream=stream, to_height=end)
    spec = stream_spec(settings, stream, start, end, reindex=reindex)
    if state is not None and state.height >= end:
        if not reindex:
            log.info("range already indexed; nothing to do (--reindex writes it again)", stream=stream)
            return None
        return Plan(spec, start, "", restart=True)
    if state is not None and state.height >= start:
        log.info("resuming backfill from its checkpoint", stream=stream, height=state.height)
        return Plan(spec, state.height + 1, state.block_hash)
    return Plan(spec, start, "")


async def plan_live(store: Store, settings: Settings, source: BlockSource, start_block: int | None, *,
                    reindex: bool = False) -> Plan:
    state = await asyncio.to_thread(streams.read, store, streams.LIVE)
    if state is not None:
        log.info("resuming from checkpoint", height=state.height, block_hash=state.block_hash)
        return Plan(stream_spec(settings, streams.LIVE, state.start_height, None, reindex=reindex),
                    state.height + 1, state.block_hash)
    if start_block is None:
        start_block = await source.final_head()
        log.info("no checkpoint and no --start-block: starting at the latest final block", height=start_block)
    return Plan(stream_spec(settings, streams.LIVE, start_block, None, reindex=reindex), start_block, "")


@dataclass
class _Batch:
    """Rows decoded since the last flush."""

    rows: Rows = field(default_factory=Rows)
    blocks: int = 0
    first_height: int = 0
    last_height: int = 0
    block_hash: str = ""
    first_ts: int = 0
    last_ts: int = 0
    started: float = 0.0

    def add(self, decoded: DecodedBlock) -> None:
        if self.blocks == 0:
            self.first_height, self.first_ts, self.started = decoded.height, decoded.timestamp_ns, time.monotonic()
        self.rows.extend(decoded.rows)
        self.blocks += 1
        self.last_height = decoded.height
        self.block_hash = decoded.hash or self.block_hash
        self.last_ts = decoded.timestamp_ns or self.last_ts

    def sealed(self) -> Batch:
        return Batch(self.rows, self.first_height, self.last_height, self.block_hash, self.first_ts, self.last_ts)


class Pipeline:
    def __init__(self, settings: Settings, store: Store, source: BlockSource, plan: Plan,
                 on_progress: Callable[[Progress], None] | None = None, *, holder: str | None = None):
        self.settings = settings
        self.store = store
        self.source = source
        self.plan = plan
        self.holder = holder
        self.decoder = BlockDecoder(DecoderConfig.from_settings(settings))
        self.writer: Writer | None = None
        self.on_progress = on_progress
        self.progress = Progress(plan.resume_height, plan.end_height, height=plan.resume_height - 1)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store")
        self._prev_hash = plan.prev_hash
        self._batch = _Batch()
        self._in_flight: asyncio.Future[None] | None = None
        self._last_flush = 0.0
        self._following = False  # at the chain head (live streams)

    async def _in_store_thread(self, fn, *args):  # type: ignore[no-untyped-def]
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    # --- the steps of a run ---------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> Progress:
        try:
            await self._open()
            if await until_stopped(self.warm_up(), stop) is STOPPED:
                return self.progress  # stopped during the replay: nothing was decoded for writing
            renewal = asyncio.create_task(self._renew_lease())
            try:
                await self._ingest(stop)
            finally:
                renewal.cancel()
        finally:
            await self._close()
        return self.progress

    async def _open(self) -> None:
        """Take the stream's lease; a finished stream run again with --reindex starts over."""
        s = self.settings
        self.writer = await self._in_store_thread(
            lambda: Writer.open(self.store, self.plan.spec, ttl=s.lease_ttl, settle=s.lease_settle, holder=self.holder))
        if self.plan.restart:
            await self._in_store_thread(
                lambda: self.writer.lease.update(height=self.plan.start_height - 1, block_hash=""))  # type: ignore[union-attr]

    async def warm_up(self) -> None:
        """Replay the blocks before the resume point, without writing, to rebuild decoder memory.

        The replay is not bounded by the stream's start: a stream that starts inside history links
        receipts to their transactions as one run from further back would."""
        first = max(0, self.plan.resume_height - self.settings.tx_lookback_blocks)
        last = self.plan.resume_height - 1
        if last < first:
            return
        log.info("replaying blocks to rebuild decoder state", from_height=first, to_height=last)
        async for raw in self.source.blocks(first, last):
            decoded = self.decoder.decode(raw)
            if decoded.hash:
                self._prev_hash = decoded.hash

    async def _ingest(self, stop: asyncio.Event) -> None:
        queue: asyncio.Queue[RawBlock | None] = asyncio.Queue(maxsize=self.settings.prefetch)
        producer = asyncio.create_task(self._produce(queue))
        try:
            while not stop.is_set():
                raw = await self._next_block(queue, stop)
                if raw is STOPPED:
                    break
                if raw is _FLUSHED:
                    continue
                if raw is None:  # the source reached end_height, or failed
                    await self._flush()
                    await producer  # re-raises the source's error, after the good rows are stored
                    break
                self._decode(raw)
                b = self._batch
                if (b.rows.count() >= self.settings.batch_rows or b.blocks >= self.settings.batch_blocks
                        or time.monotonic() - b.started >= MAX_BATCH_AGE):
                    self._behind()
                    await self._flush()
            await self._flush()
            await self._wait_in_flight()
        finally:
            producer.cancel()
            try:
                await producer
            except (asyncio.CancelledError, Exception):
                pass
            if self._in_flight is not None and not self._in_flight.done():
                await asyncio.shield(self._in_flight)

    async def _next_block(self, queue: asyncio.Queue[RawBlock | None], stop: asyncio.Event):  # type: ignore[no-untyped-def]
        """The next raw block, None at the end, STOPPED, or _FLUSHED after a flush at the head."""
        if queue.empty() and not self._batch.blocks and self.progress.blocks:
            self._at_head()  # the last batch filled up just as the source ran out of blocks
        if queue.empty() and self._batch.blocks:
            # At the head: flush now unless we flushed very recently (rate limit per table).
            wait = self.settings.flush_interval - (time.monotonic() - self._last_flush)
            if wait <= 0:
                self._at_head()
                await self._flush()
                return _FLUSHED
            try:
                return await asyncio.wait_for(queue.get(), timeout=wait)
            except TimeoutError:
                return _FLUSHED
        try:
            return queue.get_nowait()
        except asyncio.QueueEmpty:
            return await until_stopped(queue.get(), stop)

    def _decode(self, raw: RawBlock) -> None:
        decoded = self.decoder.decode(raw)
        self._check_chain(decoded)
        self._batch.add(decoded)
        self._advance(decoded)

    async def _flush(self) -> None:
        """Hand the batch to the store thread (one batch in flight at a time)."""
        await self._wait_in_flight()
        if self._batch.blocks == 0:
            return
        batch, self._batch = self._batch.sealed(), _Batch()
        self._in_flight = asyncio.ensure_future(self._in_store_thread(self.writer.flush, batch))  # type: ignore[union-attr]
        self._last_flush = time.monotonic()
        self.progress.rows += batch.rows.count()

    async def _wait_in_flight(self) -> None:
        if self._in_flight is not None:
            await self._in_flight
            self._in_flight = None

    async def _renew_lease(self) -> None:
        """Renew the lease between batches, so that a quiet stream keeps it."""
        every = self.settings.lease_ttl / 3
        while True:
            await asyncio.sleep(every)
            await self._in_store_thread(self.writer.renew)  # type: ignore[union-attr]

    async def _close(self) -> None:
        if self.writer is not None:
            await self._in_store_thread(self.writer.close)
        self._executor.shutdown(wait=True)
        structlog.contextvars.unbind_contextvars("block_height", "shard_id", "receipt_id")

    # --- what the operator sees -------------------------------------------------------------

    def _at_head(self) -> None:
        if self.plan.end_height is None and not self._following:
            self._following = True
            height = self.progress.height  # the last block decoded
            log.info(f"caught up at {height}, following the head", height=height, stream=self.plan.stream)

    def _behind(self) -> None:
        if self._following:
            self._following = False
            log.info("fell behind the head; catching up", height=self._batch.last_height, stream=self.plan.stream)

    def _check_chain(self, decoded: DecodedBlock) -> None:
        if self._prev_hash and decoded.prev_hash and decoded.prev_hash != self._prev_hash:
            metrics.CHAIN_BREAKS.inc()
            self.progress.chain_breaks += 1
            log.warning("chain break: prev_hash does not match the previous block", block_height=decoded.height,
                        expected=self._prev_hash, prev_hash=decoded.prev_hash)
            if self.settings.strict_chain:
                raise ChainBreakError(
                    f"block {decoded.height} has prev_hash {decoded.prev_hash}, expected {self._prev_hash} "
                    "(the source skipped or reordered blocks); run without --strict-chain to record and go on"
                )
            # Number it after the block's own dead letters: (block_height, contract_id, seq) is the key.
            out = Emitter.after(decoded.rows, decoded.height)
            out.dead_letter("chain_break", f"prev_hash {decoded.prev_hash} != previous block hash {self._prev_hash}",
                            f'{{"expected":"{self._prev_hash}","prev_hash":"{decoded.prev_hash}"}}')
        if decoded.hash:
            self._prev_hash = decoded.hash

    def _advance(self, decoded: DecodedBlock) -> None:
        p = self.progress
        p.height = decoded.height
        p.blocks += 1
        p.bytes += decoded.bytes
        metrics.BLOCKS.inc()
        metrics.BYTES.inc(decoded.bytes)
        if self.on_progress is not None:
            self.on_progress(p)

    async def _produce(self, queue: asyncio.Queue[RawBlock | None]) -> None:
        try:
            async for raw in self.source.blocks(self.plan.resume_height, self.plan.end_height):
                await queue.put(raw)
        except Exception:
            await queue.put(None)  # wakes the loop, which then re-raises this by awaiting the task
            raise
        await queue.put(None)


STOPPED = object()  # what until_stopped returns when a stop came first
_FLUSHED = object()  # what Pipeline._next_block returns after flushing at the head


async def until_stopped(coro, stop: asyncio.Event):  # type: ignore[no-untyped-def]
    """The coroutine's result, or STOPPED as soon as a stop is requested (the coroutine is then
    cancelled). The coroutine's own error is raised."""
    task = asyncio.ensure_future(coro)
    stopper = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopper.cancel()
        if not task.done():
            task.cancel()
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass
    if task.cancelled():
        return STOPPED
    return task.result()
