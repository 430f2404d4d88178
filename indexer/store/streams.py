"""Ingest streams: one row each in ``streams``, holding progress, the lease and what it wrote.

A stream is ``live`` for ``run`` and ``backfill:<from>-<to>`` (``backfill:<from>-head`` when
no end was given) for a backfill. Its row is replaced on every change; the newest ``version``
wins (``FINAL``), so reading every stream costs O(streams), whatever the history. Versions come
from the lease holder, the only writer of its row, and only grow: no clock decides.

The lease (holder, ``lease_until`` in the store's clock) makes one process the writer of a
stream. It is renewed with every commit and by a timer while idle. A second process on the same
stream is refused with the holder's name; an expired lease is taken over. On the embedded store
only one process can open the data path, so a lease held by another process is stale by
construction and taken over at once.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from dataclasses import dataclass, field, replace

import structlog

from indexer.store.client import Store
from indexer.store.ownership import Other, Range, Ranges

log = structlog.get_logger(__name__)

LIVE = "live"
# The lease of the rollup jobs (indexer/rollup/lease.py): a row of this table, but no ingest
# stream (it writes no heights), so ``read_all`` leaves it out.
ROLLUPS = "rollups"

COLUMNS = ("stream", "version", "owners", "start_height", "end_height", "height", "block_hash", "pending_low",
           "pending_high", "pending_at", "written", "commit_seq", "fingerprints", "reindex", "holder",
           "claimed_at", "lease_until")
# A new pending marker leaves pending_at out: the store stamps it with its own clock on arrival.
_MARKER_COLUMNS = tuple(c for c in COLUMNS if c != "pending_at")


class LeaseError(Exception):
    """Another process holds the stream, or this process lost its lease."""


def backfill_stream(start: int, end: int | None) -> str:
    return f"backfill:{start}-{'head' if end is None else end}"


@dataclass(frozen=True)
class StreamState:
    stream: str
    version: int = 0
    owners: tuple[str, ...] = ()
    start_height: int = 0
    end_height: int | None = None
    height: int = 0  # last height whose batch committed (start_height - 1 before the first)
    block_hash: str = ""
    pending: Range | None = None
    pending_at: int | None = None  # store microseconds
    written: Ranges = field(default_factory=dict)
    commit_seq: int = 0
    fingerprints: dict[str, str] = field(default_factory=dict)
    reindex: bool = False
    holder: str = ""
    claimed_at: int = 0  # store microseconds
    lease_until: int = 0  # store microseconds
    live: bool = False  # lease_until is still ahead of the store's clock (as read)

    def other(self) -> Other:
        return Other(self.stream, frozenset(self.owners), self.written, self.pending, self.pending_at, self.live)

    def row(self, *, marker: bool = False) -> list[object]:
        written = [[o, lo, hi] for o, rs in sorted(self.written.items()) for lo, hi in rs]
        values = {
            "stream": self.stream, "version": self.version, "owners": list(self.owners),
            "start_height": self.start_height, "end_height": self.end_height, "height": self.height,
            "block_hash": self.block_hash,
            "pending_low": None if self.pending is None else self.pending[0],
            "pending_high": None if self.pending is None else self.pending[1],
            "pending_at": _ts(self.pending_at), "written": written, "commit_seq": self.commit_seq,
            "fingerprints": self.fingerprints, "reindex": int(self.reindex), "holder": self.holder,
            "claimed_at": _ts(self.claimed_at), "lease_until": _ts(self.lease_until, 3),
        }
        return [values[c] for c in (_MARKER_COLUMNS if marker else COLUMNS)]


def _ts(us: int | None, digits: int = 6) -> str | None:
    if us is None:
        return None
    text = f"{us // 1_000_000}.{us % 1_000_000:06d}"
    return text[: len(text) - (6 - digits)]


_SELECT = (
    "SELECT stream, version, owners, start_height, end_height, height, block_hash, pending_low, pending_high, "
    "toUnixTimestamp64Micro(pending_at), written, commit_seq, fingerprints, reindex, holder, "
    "toUnixTimestamp64Micro(claimed_at), toUnixTimestamp64Micro(toDateTime64(lease_until, 6)), "
    "lease_until > now64(3) FROM {table} FINAL"
)


def read_all(store: Store) -> list[StreamState]:
    """Every stream that writes heights: the ingest streams and the operator commands'."""
    _, rows = store.query(_SELECT.format(table=store.table("streams")) + " WHERE stream != {r:String} ORDER BY stream",
                          {"r": ROLLUPS})
    return [_state(r) for r in rows]


def read(store: Store, stream: str) -> StreamState | None:
    _, rows = store.query(_SELECT.format(table=store.table("streams")) + " WHERE stream = {s:String}", {"s": stream})
    return _state(rows[0]) if rows else None


def _state(r: tuple) -> StreamState:  # type: ignore[type-arg]
    (stream, version, owners, start, end, height, block_hash, plo, phi, pat, written, seq, fps, reindex, holder,
     claimed, until, live) = r
    ranges: Ranges = {}
    for owner, lo, hi in written:
        ranges.setdefault(owner, []).append((int(lo), int(hi)))
    return StreamState(
        stream=stream, version=int(version), owners=tuple(owners), start_height=int(start),
        end_height=None if end is None else int(end), height=int(height), block_hash=block_hash,
        pending=None if plo is None else (int(plo), int(phi)), pending_at=None if pat is None else int(pat),
        written=ranges, commit_seq=int(seq), fingerprints=dict(fps), reindex=bool(reindex), holder=holder,
        claimed_at=int(claimed or 0), lease_until=int(until or 0), live=bool(live),
    )


def write(store: Store, state: StreamState, *, marker: bool = False) -> None:
    """Store ``state`` (one row). ``marker``: a new pending marker, stamped by the store on arrival."""
    store.insert_rows("streams", _MARKER_COLUMNS if marker else COLUMNS, [state.row(marker=marker)])


def new_holder() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def same_process(holder: str) -> bool:
    host, _, rest = holder.partition(":")
    return host == socket.gethostname() and rest.partition(":")[0] == str(os.getpid())


class Lease:
    """This process's hold on one stream; every state change of the stream goes through it."""

    def __init__(self, store: Store, state: StreamState, holder: str, ttl: float, settle: float):
        self.store = store
        self.state = state
        self.holder = holder
        self.ttl_us = int(ttl * 1_000_000)
        self.settle = settle

    @classmethod
    def acquire(cls, store: Store, initial: StreamState, *, ttl: float = 60.0, settle: float = 2.0,
                holder: str | None = None) -> "Lease":
        """Take the stream (created from ``initial`` when new); LeaseError when someone holds it."""
        holder = holder or new_holder()
        settle = 0.0 if store.embedded else settle  # one process per embedded path: nothing to wait for
        current = read(store, initial.stream)
        if current is not None and current.holder and current.holder != holder and current.live:
            if not (store.embedded and not same_process(current.holder)):
                raise LeaseError(_held_message(store, current))
            log.info("taking over the lease of a process that no longer runs", stream=current.stream,
                     holder=current.holder)
        now = store.now_us()
        base = current or replace(initial, claimed_at=now)
        lease = cls(store, replace(base, version=base.version + 1, holder=holder), holder, ttl, settle)
        lease._write(now)
        if settle:
            time.sleep(settle)  # a rival that wrote at the same time is visible by now
        won = read(store, initial.stream)
        if won is None or won.holder != holder:
            raise LeaseError(_held_message(store, won) if won else f"stream {initial.stream} vanished while taking it")
        lease.state = replace(won, live=True)
        return lease

    def _write(self, now: int | None = None, *, marker: bool = False) -> None:
        now = self.store.now_us() if now is None else now
        self.state = replace(self.state, lease_until=now + self.ttl_us)
        write(self.store, self.state, marker=marker)

    def check(self) -> None:
        """Raise LeaseError when the lease ran out: another process may have taken the stream."""
        if self.store.embedded:
            return  # no other process can reach this store
        if self.store.now_us() >= self.state.lease_until:
            raise LeaseError(f"lease on stream {self.state.stream} expired (not renewed within "
                             f"{self.ttl_us / 1e6:g} s); stopping so that no two processes write it")

    def update(self, *, marker: bool = False, **changes: object) -> None:
        """Store the stream's new state (the next version) and extend the lease."""
        self.state = replace(self.state, version=self.state.version + 1, **changes)  # type: ignore[arg-type]
        self._write(marker=marker)

    def renew(self) -> None:
        self.check()
        self.update()

    def release(self) -> None:
        now = self.store.now_us()
        self.state = replace(self.state, version=self.state.version + 1, holder="", lease_until=now, live=False)
        write(self.store, self.state)


def _held_message(store: Store, s: StreamState) -> str:
    left = max(0.0, (s.lease_until - store.now_us()) / 1e6)
    return (f"stream {s.stream} is being written by {s.holder} (lease expires in {left:.0f} s); stop that "
            "process, or wait for the lease to expire if it is gone, then start this one again")
