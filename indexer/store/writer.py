"""Batches of rows -> ClickHouse, then the checkpoint: the exactly-once protocol.

1. Before a batch's rows are written, the stream records the batch's last height as
   ``pending_height`` on its checkpoint; after them, the new checkpoint. A batch is one INSERT
   per table (one part each, so all or nothing).
2. A stream that resumes deletes what a crash may have left: rows in (checkpoint,
   pending_height]. A backfill, which will write its whole remaining range, clears
   [resume, end] instead, replacing whatever another stream wrote there.
3. The live stream never clears ahead of itself: before each batch it replaces only the
   heights of that batch, and only when another stream has written some of them.

Together these make a re-run, a restart or a ``kill -9`` at any moment leave the tables exactly
as one clean run would, with no FINAL needed by readers, and no stream ever deletes rows it is
not about to write again.
"""

from __future__ import annotations

import time

import structlog

from indexer import metrics
from indexer.decode.rows import COLUMNS, DATA_TABLES, Rows
from indexer.store import checkpoints
from indexer.store.client import Store

log = structlog.get_logger(__name__)


class Writer:
    def __init__(self, store: Store, stream: str, start_height: int, end_height: int | None,
                 committed_height: int | None = None, committed_hash: str = ""):
        self.store = store
        self.stream = stream
        self.start_height = start_height
        self.end_height = end_height
        self.height = start_height - 1 if committed_height is None else committed_height
        self.block_hash = committed_hash

    def _checkpoint(self, height: int, block_hash: str, pending: int | None = None) -> checkpoints.Checkpoint:
        return checkpoints.Checkpoint(self.stream, self.start_height, self.end_height, height, block_hash, pending)

    def discard(self, low: int, high: int | None) -> int:
        """Delete rows with low <= block_height <= high (no upper bound when None); returns how many."""
        cond = f"block_height >= {int(low)}"
        if high is not None:
            cond += f" AND block_height <= {int(high)}"
        removed = 0
        for table in DATA_TABLES:
            n = int(self.store.scalar(f"SELECT count() FROM {self.store.table(table)} WHERE {cond}") or 0)
            if n:
                self.store.command(f"DELETE FROM {self.store.table(table)} WHERE {cond}")
                removed += n
        if removed:
            log.info("replaced rows before writing", rows=removed, from_height=low, to_height=high,
                     stream=self.stream)
        return removed

    def _written_by_others(self, low: int, high: int) -> bool:
        """Whether another stream may have rows in [low, high] (from its checkpoints)."""
        return any(
            cp.stream != self.stream and cp.start_height <= high and max(cp.height, cp.pending_height or 0) >= low
            for cp in checkpoints.read_all(self.store)
        )

    def flush(self, rows: Rows, first_height: int, height: int, block_hash: str, *, replace: bool = False,
              timestamp_ns: int = 0) -> None:
        """Store a batch of heights first_height..height and move the checkpoint. Runs in the store thread.

        ``replace``: first delete rows of these heights that another stream wrote (the live stream).
        ``timestamp_ns``: the last block's timestamp, for the head gauges.
        """
        started = time.perf_counter()
        checkpoints.write(self.store, self._checkpoint(self.height, self.block_hash, pending=height))
        if replace and self._written_by_others(first_height, height):
            self.discard(first_height, height)
        for table, table_rows in rows.tables.items():
            if table_rows:
                self.store.insert_rows(table, COLUMNS[table], table_rows)
                metrics.ROWS.labels(table=table).inc(len(table_rows))
        checkpoints.write(self.store, self._checkpoint(height, block_hash))
        self.height, self.block_hash = height, block_hash
        metrics.HEAD_HEIGHT.set(height)
        if timestamp_ns:
            metrics.HEAD_TIMESTAMP.set(timestamp_ns / 1e9)
        elapsed = time.perf_counter() - started
        metrics.FLUSH_SECONDS.observe(elapsed)
        log.debug("batch stored", height=height, rows=rows.count(), seconds=round(elapsed, 4), stream=self.stream)

    def reset(self) -> None:
        """Start the stream over: checkpoint just below its first height."""
        self.height, self.block_hash = self.start_height - 1, ""
        checkpoints.write(self.store, self._checkpoint(self.height, self.block_hash))
