"""``backfill --workers N``: a range split into N contiguous parts, decoded by N processes.

Each part is its own stream, ``backfill:<from>-<to|head>/<k>of<N>``, so each resumes on its own
and the store protocol keeps them apart like any other streams; each replays the
``--tx-lookback-blocks`` blocks before its start, so its rows are those of one run over the whole
range. Without ``--to`` the head at the first launch is stored as the end of the last part (its
row is written before any other), and a relaunch with the same arguments splits the same way.

Where rows are written depends on the store:

* embedded (chDB): one process per data path. Worker processes fetch and decode, and send each
  sealed batch over a bounded queue to this process, which owns the store and writes every
  stream's batches through its normal ``Writer``, in order;
* a ClickHouse server: each worker process opens the store and runs the whole pipeline of its
  stream (lease, batches, commits) itself.

A stop (SIGINT/SIGTERM to this process) is passed to the workers: each ends its current batch,
which is written, and the backfill exits 3 with the command that resumes it.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import queue as queue_module
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import structlog

from indexer.config import Settings
from indexer.pipeline import Pipeline, Plan, _Batch, plan_backfill
from indexer.sources.base import BlockSource
from indexer.store import streams
from indexer.store.client import Store
from indexer.store.writer import Batch, Writer

log = structlog.get_logger(__name__)

QUEUE_BATCHES_PER_WORKER = 2  # decoded batches waiting for the writer: bounds the parent's memory


class WorkerError(Exception):
    """A worker process failed; the message is its error."""


def part_stream(start: int, end: int | None, k: int, n: int) -> str:
    return f"{streams.backfill_stream(start, end)}/{k}of{n}"


def split(start: int, end: int, n: int) -> list[tuple[int, int]]:
    """``n`` contiguous parts of [start, end] (fewer when the range has fewer heights)."""
    total = end - start + 1
    n = max(1, min(n, total))
    return [(start + i * total // n, start + (i + 1) * total // n - 1) for i in range(n)]


@dataclass
class Part:
    k: int
    stream: str
    low: int
    high: int
    plan: Plan | None  # None: indexed already


@dataclass
class Outcome:
    parts: list[Part]
    heights: dict[str, int] = field(default_factory=dict)  # stream -> last committed height
    blocks: int = 0
    rows: int = 0
    bytes: int = 0
    chain_breaks: int = 0
    started: float = field(default_factory=time.monotonic)

    @property
    def finished(self) -> bool:
        return all(self.heights.get(p.stream, p.low - 1) >= p.high for p in self.parts)

    @property
    def elapsed(self) -> float:
        return max(time.monotonic() - self.started, 1e-9)


async def plan_parts(store: Store, settings: Settings, source: BlockSource, start: int, end: int | None,
                     workers: int, *, reindex: bool = False) -> tuple[int, list[Part]]:
    """(the end height, the parts); the last part first asks the store for an end stored earlier."""
    given = end
    if end is None:
        last = await asyncio.to_thread(streams.read, store, part_stream(start, None, workers, workers))
        end = last.end_height if last is not None and last.end_height is not None else await source.final_head()
        log.info("backfill up to the chain head as of its first launch", to_height=end, workers=workers)
    if end < start:
        return end, []
    ranges = split(start, end, workers)
    n = len(ranges)
    if n != workers and given is None:
        log.warning("fewer heights than workers; using fewer workers", workers=n)
    parts = []
    for k, (lo, hi) in enumerate(ranges, start=1):
        name = part_stream(start, given, k, n)
        plan = await plan_backfill(store, settings, source, lo, hi, reindex=reindex, stream=name)
        parts.append(Part(k, name, lo, hi, plan))
    return end, parts


# --- worker processes ----------------------------------------------------------------------------


class _DecodeOnly(Pipeline):
    """Decodes and batches exactly like a Pipeline, but hands each sealed batch to ``send``."""

    def __init__(self, settings: Settings, source: BlockSource, plan: Plan, send: Any):
        super().__init__(settings, None, source, plan)  # type: ignore[arg-type]
        self._send = send

    async def _open(self) -> None:
        pass  # the parent holds the stream's lease and writer

    async def _flush(self) -> None:
        if self._batch.blocks == 0:
            return
        batch, self._batch = self._batch.sealed(), _Batch()
        await asyncio.to_thread(self._send, batch)  # waits while the queue is full
        self._last_flush = time.monotonic()
        self.progress.rows += batch.rows.count()

    async def _wait_in_flight(self) -> None:
        pass

    async def _renew_lease(self) -> None:
        await asyncio.Event().wait()  # the parent's writer renews with every batch

    async def _close(self) -> None:
        self._executor.shutdown(wait=True)


def _worker(mode: str, settings: Settings, part: Part, out: Any, stop: Any) -> None:
    """Entry of a worker process: decode (``mode`` "decode") or decode and write ("write")."""
    from indexer import logs

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop and says so
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    logs.configure(settings.log_format, settings.log_level)
    structlog.contextvars.bind_contextvars(stream=part.stream)
    try:
        progress = asyncio.run(_work(mode, settings, part, out, stop))
        out.put(("done", part.k, {"blocks": progress.blocks, "bytes": progress.bytes, "rows": progress.rows,
                                  "chain_breaks": progress.chain_breaks, "height": progress.height}))
    except BaseException as exc:  # everything goes back to the parent, which decides the exit code
        out.put(("error", part.k, f"{type(exc).__name__}: {exc}"))


async def _work(mode: str, settings: Settings, part: Part, out: Any, stop_flag: Any):  # type: ignore[no-untyped-def]
    from indexer.sources import open_source

    assert part.plan is not None
    stop = asyncio.Event()

    parent = multiprocessing.parent_process()

    async def watch() -> None:
        while not stop_flag.is_set():
            if parent is not None and not parent.is_alive():
                os._exit(1)  # killed parent (kill -9): nothing reads the queue, whatever is decoded is lost anyway
            await asyncio.sleep(0.05)
        stop.set()

    watcher = asyncio.create_task(watch())
    try:
        async with open_source(settings) as source:
            if mode == "decode":
                return await _DecodeOnly(settings, source, part.plan,
                                         lambda batch: out.put(("batch", part.k, batch))).run(stop)
            store = Store(settings.store, settings.database, settings.cluster)
            try:
                return await Pipeline(settings, store, source, part.plan).run(stop)
            finally:
                store.close()
    finally:
        watcher.cancel()


# --- the parent ----------------------------------------------------------------------------------


class Parallel:
    """Runs the parts' workers and, on the embedded store, writes what they decode."""

    def __init__(self, settings: Settings, store: Store, parts: list[Part], on_progress: Any = None):
        self.settings = settings
        self.store = store
        self.parts = [p for p in parts if p.plan is not None]
        self.outcome = Outcome(parts)
        self.on_progress = on_progress
        self._ctx = multiprocessing.get_context("spawn")  # no fork of a process that runs chDB threads
        self._queue = self._ctx.Queue(maxsize=max(2, QUEUE_BATCHES_PER_WORKER * len(self.parts)))
        self._stop = self._ctx.Event()
        self._writers: dict[int, Writer] = {}
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store")
        for p in parts:
            if p.plan is None:
                self.outcome.heights[p.stream] = p.high
            else:
                self.outcome.heights[p.stream] = p.plan.resume_height - 1

    async def _in_store_thread(self, fn, *args):  # type: ignore[no-untyped-def]
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    async def run(self, stop: asyncio.Event) -> Outcome:
        embedded = self.store.embedded
        try:
            # Every part's stream row is written before any work: the last part's first (it holds
            # the end a relaunch without --to reads back).
            for p in sorted(self.parts, key=lambda p: -p.k):
                self._writers[p.k] = await self._in_store_thread(self._open, p)
            if not embedded:
                for w in self._writers.values():
                    await self._in_store_thread(w.close)  # each worker takes its own stream's lease
                self._writers.clear()
            procs = {p.k: self._ctx.Process(target=_worker, name=f"backfill-{p.k}",
                                            args=("decode" if embedded else "write", self.settings, p,
                                                  self._queue, self._stop), daemon=True)
                     for p in self.parts}
            for proc in procs.values():
                proc.start()
            stopper = asyncio.create_task(self._pass_stop(stop))
            try:
                await self._collect(procs)
            finally:
                stopper.cancel()
                self._stop.set()
                for proc in procs.values():
                    await asyncio.to_thread(proc.join, 30)
                    if proc.is_alive():
                        proc.kill()
        finally:
            for w in self._writers.values():
                await self._in_store_thread(w.close)
            self._executor.shutdown(wait=True)
        if not embedded:  # the workers wrote: read where each got to
            states = {s.stream: s for s in await asyncio.to_thread(streams.read_all, self.store)}
            for p in self.parts:
                if p.stream in states:
                    self.outcome.heights[p.stream] = states[p.stream].height
        return self.outcome

    def _open(self, p: Part) -> Writer:
        s = self.settings
        assert p.plan is not None
        w = Writer.open(self.store, p.plan.spec, ttl=s.lease_ttl, settle=s.lease_settle)
        if p.plan.restart:
            w.lease.update(height=p.plan.start_height - 1, block_hash="")
        return w

    async def _pass_stop(self, stop: asyncio.Event) -> None:
        await stop.wait()
        self._stop.set()

    async def _collect(self, procs: dict[int, Any]) -> None:
        """Write batches as they come; return when every worker is done; raise a worker's error."""
        running = set(procs)
        errors: list[str] = []
        while running:
            try:
                msg = await asyncio.to_thread(self._queue.get, True, 0.5)
            except queue_module.Empty:
                for k in list(running):
                    if not procs[k].is_alive() and self._queue.empty():
                        running.discard(k)
                        errors.append(f"worker {k} exited {procs[k].exitcode} without finishing")
                continue
            kind, k, body = msg
            part = next(p for p in self.parts if p.k == k)
            if kind == "batch":
                await self._write(part, body)
            elif kind == "done":
                running.discard(k)
                self._count(body)
            else:
                running.discard(k)
                errors.append(f"{part.stream}: {body}")
                self._stop.set()  # the others end their batch and stop
        if errors:
            raise WorkerError("; ".join(errors))

    async def _write(self, part: Part, batch: Batch) -> None:
        await self._in_store_thread(self._writers[part.k].flush, batch)
        self.outcome.heights[part.stream] = batch.last_height
        self.outcome.rows += batch.rows.count()
        if self.on_progress is not None:
            self.on_progress(self.outcome)

    def _count(self, body: dict[str, int]) -> None:
        o = self.outcome
        o.blocks += body["blocks"]
        o.bytes += body["bytes"]
        o.chain_breaks += body["chain_breaks"]
        if not self.store.embedded:
            o.rows += body["rows"]
