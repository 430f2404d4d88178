"""Batches of rows -> ClickHouse, then the checkpoint: the exactly-once protocol.

1. Before a stream resumes at height H, rows at or above H (within the stream's range) are
   deleted from every data table: they can only be leftovers of a batch whose checkpoint was
   never written (a crash between the two).
2. A batch is one INSERT per table (one part each, so all or nothing), then the checkpoint.

Together these make a re-run, a restart or a ``kill -9`` at any moment leave the tables exactly
as one clean run would, with no FINAL needed by readers.
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
    def __init__(self, store: Store, stream: str, start_height: int, end_height: int | None):
        self.store = store
        self.stream = stream
        self.start_height = start_height
        self.end_height = end_height

    def discard_from(self, height: int) -> int:
        """Delete rows in [height, end_height]; returns how many there were."""
        cond = f"block_height >= {int(height)}"
        if self.end_height is not None:
            cond += f" AND block_height <= {int(self.end_height)}"
        removed = 0
        for table in DATA_TABLES:
            n = int(self.store.scalar(f"SELECT count() FROM {self.store.table(table)} WHERE {cond}") or 0)
            if n:
                self.store.command(f"DELETE FROM {self.store.table(table)} WHERE {cond}")
                removed += n
        if removed:
            log.info("discarded rows above the checkpoint", rows=removed, from_height=height, stream=self.stream)
        return removed

    def flush(self, rows: Rows, height: int, block_hash: str) -> None:
        """Store a batch and move the checkpoint to ``height``. Runs in the store thread."""
        started = time.perf_counter()
        for table, table_rows in rows.tables.items():
            if table_rows:
                self.store.insert_rows(table, COLUMNS[table], table_rows)
                metrics.ROWS.labels(table=table).inc(len(table_rows))
        checkpoints.write(
            self.store,
            checkpoints.Checkpoint(self.stream, self.start_height, self.end_height, height, block_hash),
        )
        elapsed = time.perf_counter() - started
        metrics.FLUSH_SECONDS.observe(elapsed)
        log.debug("batch stored", height=height, rows=rows.count(), seconds=round(elapsed, 4), stream=self.stream)

    def reset(self) -> None:
        """Start the stream over: checkpoint just below its first height."""
        checkpoints.write(
            self.store,
            checkpoints.Checkpoint(self.stream, self.start_height, self.end_height, self.start_height - 1, ""),
        )
