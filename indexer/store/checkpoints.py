"""Where each ingest stream got to: the last block whose rows are all stored.

A stream is ``live`` for ``run`` and ``backfill:<from>-<to>`` for a backfill. Before a batch's
rows are written the stream records ``pending_height`` (the batch's last height); after them,
the new checkpoint. A crash in between leaves the marker, and the stream deletes exactly
(height, pending_height] before it resumes: never rows another stream wrote.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from indexer.store.client import Store

LIVE = "live"

_COLUMNS = ("stream", "start_height", "end_height", "height", "block_hash", "pending_height", "updated_at")
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
    pending_height: int | None = None


def _now_us() -> int:
    """Strictly increasing microseconds, so the newest checkpoint row always wins argMax."""
    global _last_us
    with _clock_lock:
        _last_us = max(_last_us + 1, time.time_ns() // 1000)
        return _last_us


def read(store: Store, stream: str) -> Checkpoint | None:
    _, rows = store.query(
        f"SELECT stream, start_height, end_height, height, block_hash, pending_height "
        f"FROM {store.table('checkpoints')} WHERE stream = {{s:String}}",
        {"s": stream},
    )
    if not rows:
        return None
    s, start, end, height, block_hash, pending = rows[0]
    return Checkpoint(s, int(start), _opt(end), int(height), block_hash, _opt(pending))


def _opt(value: object) -> int | None:
    return None if value is None else int(value)  # type: ignore[call-overload]


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
        [[cp.stream, cp.start_height, cp.end_height, cp.height, cp.block_hash, cp.pending_height,
          f"{us // 1_000_000}.{us % 1_000_000:06d}"]],
    )
