"""Where each ingest stream got to: the last block whose rows are all stored.

A stream is ``live`` for ``run`` and ``backfill:<from>-<to>`` for a backfill. The checkpoint is
written after the batch's rows, so rows above it may exist only after a crash; the writer
deletes them before resuming.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from indexer.store.client import Store

LIVE = "live"

_COLUMNS = ("stream", "start_height", "end_height", "height", "block_hash", "updated_at")
_clock_lock = threading.Lock()
_last_us = 0


def backfill_stream(start: int, end: int) -> str:
    return f"backfill:{start}-{end}"


@dataclass(frozen=True)
class Checkpoint:
    stream: str
    start_height: int
    end_height: int | None
    height: int
    block_hash: str


def _now_us() -> int:
    """Strictly increasing microseconds, so the newest checkpoint row always wins argMax."""
    global _last_us
    with _clock_lock:
        _last_us = max(_last_us + 1, time.time_ns() // 1000)
        return _last_us


def read(store: Store, stream: str) -> Checkpoint | None:
    _, rows = store.query(
        f"SELECT stream, start_height, end_height, height, block_hash FROM {store.table('checkpoints')} "
        "WHERE stream = {s:String}",
        {"s": stream},
    )
    if not rows:
        return None
    s, start, end, height, block_hash = rows[0]
    return Checkpoint(s, int(start), None if end is None else int(end), int(height), block_hash)


def read_all(store: Store) -> list[Checkpoint]:
    _, rows = store.query(
        f"SELECT stream, start_height, end_height, height, block_hash FROM {store.table('checkpoints')} ORDER BY stream"
    )
    return [Checkpoint(s, int(a), None if e is None else int(e), int(h), bh) for s, a, e, h, bh in rows]


def write(store: Store, cp: Checkpoint) -> None:
    us = _now_us()
    store.insert_rows(
        "checkpoint_log",
        _COLUMNS,
        [[cp.stream, cp.start_height, cp.end_height, cp.height, cp.block_hash, f"{us // 1_000_000}.{us % 1_000_000:06d}"]],
    )
