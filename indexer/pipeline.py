"""source -> decode -> store: the ingest loop shared by ``run`` and ``backfill``.

The source prefetches concurrently into a bounded queue; the loop decodes blocks in order,
checks ``prev_hash`` continuity, and hands batches to the store thread while it goes on
decoding (one batch in flight at a time). A batch is flushed when it is large, old, or when
the loop has caught up with the chain head; the checkpoint follows its rows.
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
from indexer.store import checkpoints
from indexer.store.client import Store
from indexer.store.writer import Writer

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
    stream: str
    start_height: int  # first height of the stream (warm-up never reaches below it)
    end_height: int | None
    resume_height: int
    prev_hash: str  # hash of the block before resume_height, '' when unknown
    discard: tuple[int, int | None] | None = None  # heights to clear before resuming
    replace_batches: bool = False  # clear each batch's heights first where another stream wrote them


def plan_backfill(store: Store, start: int, end: int) -> Plan:
    stream = checkpoints.backfill_stream(start, end)
    cp = checkpoints.read(store, stream)
    if cp is not None and cp.height >= end:
        log.info("range already indexed; indexing it again", stream=stream)
        Writer(store, stream, start, end).reset()
        cp = None
    # A backfill writes its whole remaining range, so it clears that range first: leftovers of its
    # own crashed batch and whatever another stream wrote there alike.
    if cp is not None and cp.height >= start:
        log.info("resuming backfill from its checkpoint", stream=stream, height=cp.height)
        return Plan(stream, start, end, cp.height + 1, cp.block_hash, discard=(cp.height + 1, end))
    return Plan(stream, start, end, start, "", discard=(start, end))


async def plan_live(store: Store, source: BlockSource, start_block: int | None) -> Plan:
    cp = checkpoints.read(store, checkpoints.LIVE)
    # The live stream has no end: it clears only what its own crashed batch may have left, and
    # replaces other streams' rows batch by batch as it reaches their heights.
    if cp is not None:
        log.info("resuming from checkpoint", height=cp.height, block_hash=cp.block_hash)
        leftovers = (cp.height + 1, cp.pending_height) if cp.pending_height is not None else None
        return Plan(checkpoints.LIVE, cp.start_height, None, cp.height + 1, cp.block_hash, discard=leftovers,
                    replace_batches=True)
    if start_block is None:
        start_block = await source.final_head()
        log.info("no checkpoint and no --start-block: starting at the latest final block", height=start_block)
    return Plan(checkpoints.LIVE, start_block, None, start_block, "", replace_batches=True)


class Pipeline:
    def __init__(self, settings: Settings, store: Store, source: BlockSource, plan: Plan,
                 on_progress: Callable[[Progress], None] | None = None):
        self.settings = settings
        self.store = store
        self.source = source
        self.plan = plan
        self.decoder = BlockDecoder(DecoderConfig.from_settings(settings))
        self.writer = Writer(store, plan.stream, plan.start_height, plan.end_height,
                             committed_height=plan.resume_height - 1, committed_hash=plan.prev_hash)
        self.on_progress = on_progress
        self.progress = Progress(plan.resume_height, plan.end_height, height=plan.resume_height - 1)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store")
        self._prev_hash = plan.prev_hash

    async def _in_store_thread(self, fn, *args):  # type: ignore[no-untyped-def]
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def warm_up(self) -> None:
        """Replay the blocks just before the resume point, without writing, to rebuild decoder memory."""
        first = max(self.plan.start_height, self.plan.resume_height - self.settings.tx_lookback_blocks)
        last = self.plan.resume_height - 1
        if last < first:
            return
        log.info("replaying blocks to rebuild decoder state", from_height=first, to_height=last)
        async for raw in self.source.blocks(first, last):
            decoded = self.decoder.decode(raw)
            if decoded.hash:
                self._prev_hash = decoded.hash

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
            # Number it after the block's own dead letters: (block_height, seq) is the table's key.
            out = Emitter(decoded.rows, decoded.height, _dead_seq=len(decoded.rows.tables["dead_letters"]))
            out.dead_letter("chain_break", f"prev_hash {decoded.prev_hash} != previous block hash {self._prev_hash}",
                            f'{{"expected":"{self._prev_hash}","prev_hash":"{decoded.prev_hash}"}}')
        if decoded.hash:
            self._prev_hash = decoded.hash

    async def run(self, stop: asyncio.Event) -> Progress:
        if self.plan.discard is not None:
            await self._in_store_thread(self.writer.discard, *self.plan.discard)
        if await until_stopped(self.warm_up(), stop) is STOPPED:
            self._executor.shutdown(wait=True)
            return self.progress  # stopped during the replay: nothing was decoded for writing
        queue: asyncio.Queue[RawBlock | None] = asyncio.Queue(maxsize=self.settings.prefetch)
        producer = asyncio.create_task(self._produce(queue))
        batch = Rows()
        batch_blocks = 0
        batch_started = time.monotonic()
        last_flush = 0.0
        in_flight: asyncio.Future[None] | None = None
        last_height, last_hash, last_ts = self.plan.resume_height - 1, self._prev_hash, 0
        first_height = self.plan.resume_height

        async def flush() -> None:
            nonlocal batch, batch_blocks, in_flight, last_flush
            if in_flight is not None:
                await in_flight
                in_flight = None
            if batch_blocks == 0:
                return
            rows, first, height, block_hash, ts = batch, first_height, last_height, last_hash, last_ts
            batch, batch_blocks = Rows(), 0
            in_flight = asyncio.ensure_future(
                self._in_store_thread(self._store, rows, first, height, block_hash, ts))
            last_flush = time.monotonic()
            self.progress.rows += rows.count()

        try:
            while not stop.is_set():
                if queue.empty() and batch_blocks:
                    # At the head: flush now unless we flushed very recently (rate limit per table).
                    wait = self.settings.flush_interval - (time.monotonic() - last_flush)
                    if wait <= 0:
                        await flush()
                        continue
                    try:
                        raw = await asyncio.wait_for(queue.get(), timeout=wait)
                    except TimeoutError:
                        continue
                else:
                    try:
                        raw = queue.get_nowait()
                    except asyncio.QueueEmpty:
                        raw = await until_stopped(queue.get(), stop)
                    if raw is STOPPED:
                        break
                if raw is None:  # the source reached end_height, or failed
                    await flush()
                    await producer  # re-raises the source's error, after the good rows are stored
                    break
                decoded = self.decoder.decode(raw)
                if batch_blocks == 0:
                    batch_started = time.monotonic()
                    first_height = raw.height
                self._check_chain(decoded)
                batch.extend(decoded.rows)
                batch_blocks += 1
                last_height = decoded.height
                last_hash = decoded.hash or last_hash
                last_ts = decoded.timestamp_ns or last_ts
                self._advance(decoded)
                if (batch.count() >= self.settings.batch_rows or batch_blocks >= self.settings.batch_blocks
                        or time.monotonic() - batch_started >= MAX_BATCH_AGE):
                    await flush()
            await flush()
            if in_flight is not None:
                await in_flight
        finally:
            producer.cancel()
            try:
                await producer
            except (asyncio.CancelledError, Exception):
                pass
            if in_flight is not None and not in_flight.done():
                await asyncio.shield(in_flight)
            self._executor.shutdown(wait=True)
            structlog.contextvars.unbind_contextvars("block_height", "shard_id", "receipt_id")
        return self.progress

    def _store(self, rows: Rows, first_height: int, height: int, block_hash: str, timestamp_ns: int) -> None:
        self.writer.flush(rows, first_height, height, block_hash, replace=self.plan.replace_batches,
                          timestamp_ns=timestamp_ns)

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
