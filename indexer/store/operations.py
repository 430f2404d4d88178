"""Operator commands (rewind, dead-letters retry) change the store through the store protocol.

A command takes the lease of the stream ``operations`` and marks the owners and heights it changes
as its pending batch, as an ingest stream does, then reads every stream back and refuses when a
live stream may write any of them (``conflicts``). A writer that opens later sees the live marker
and refuses in turn (``check_writer``). Both write before they read, so of a command and a writer
that start together at least one refuses.

A command that dies leaves its marker: writers delete those rows before writing them (the overlap
rule's crashed marker), and the next command finishes what it left: rows under the marker that no
stream's committed ``written`` ranges cover are deleted (``Operation.begin``). Each command ends
with a ``commits`` row of its kind, so rollups learn which heights changed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import structlog

from indexer.store import commits, streams
from indexer.store.client import Store
from indexer.store.ownership import ALL_OWNERS, Range, Ranges, covering, merge, subtract
from indexer.store.streams import Lease, LeaseError, StreamState

log = structlog.get_logger(__name__)

OPERATIONS = "operations"  # the stream every operator command writes under


def live_elsewhere(store: Store, s: StreamState) -> bool:
    """Whether ``s`` is held by a running process. On the embedded store only one process opens
    the data path, so a lease of another process is stale by construction (as ``Lease.acquire``)."""
    if not s.live or not s.holder:
        return False
    return not (store.embedded and not streams.same_process(s.holder))


def shares_owner(a: tuple[str, ...] | frozenset[str], b: tuple[str, ...] | frozenset[str]) -> bool:
    return bool(set(a) & set(b)) or ALL_OWNERS in a or ALL_OWNERS in b


def _span(s: StreamState) -> Range:
    return s.start_height, (2**63 if s.end_height is None else s.end_height)


def overlaps(a: Range, b: Range) -> bool:
    return a[0] <= b[1] and b[0] <= a[1]


def check_writer(store: Store, state: StreamState) -> None:
    """Refuse (LeaseError) a stream about to write while an operator command changes its owners
    and heights. Called by ``Writer.open`` after it holds its own lease."""
    op = streams.read(store, OPERATIONS)
    if op is None or op.pending is None or not live_elsewhere(store, op):
        return
    if shares_owner(state.owners, op.owners) and overlaps(_span(state), op.pending):
        left = max(0.0, (op.lease_until - store.now_us()) / 1e6)
        raise LeaseError(
            f"an operator command ({op.holder}) is changing heights {op.pending[0]}..{op.pending[1]} of "
            f"{_owners_text(op.owners)}, which stream {state.stream} writes; start this again when it has finished "
            f"(its lease expires in {left:.0f} s)")


def _owners_text(owners: tuple[str, ...]) -> str:
    if ALL_OWNERS in owners:
        return "every contract"
    return ", ".join(o or "blocks" for o in owners)


def held_message(rivals: list[StreamState], what: str) -> str:
    names = "; ".join(f"stream {s.stream} held by {s.holder}" for s in rivals)
    return (f"{what}: {names} is running and may write those heights; stop it (or wait for its lease to expire "
            "if it is gone), then run this again")


def _writing_under(s: StreamState, leftover: Range | None, owners: tuple[str, ...]) -> bool:
    """Whether ``s`` is writing a batch under a dead command's marker: finishing that command
    deletes the rows there that no commit covers, which a batch in flight has not committed yet."""
    return (leftover is not None and s.pending is not None and overlaps(s.pending, leftover)
            and shares_owner(s.owners, owners))


@dataclass
class Operation:
    """This process's hold on the ``operations`` stream, with its marker over what it changes."""

    store: Store
    lease: Lease
    token: str

    @classmethod
    def begin(cls, store: Store, owners: tuple[str, ...], heights: Range, *, what: str,
              conflicts: Callable[[StreamState], bool], ttl: float = 60.0, settle: float = 2.0,
              holder: str | None = None) -> "Operation":
        """Take the lease, mark ``owners`` x ``heights``, refuse (LeaseError) when a live stream
        ``conflicts``; a marker left by a command that died is finished first."""
        initial = StreamState(OPERATIONS, owners=owners, start_height=0, end_height=None, height=0)
        lease = Lease.acquire(store, initial, ttl=ttl, settle=settle, holder=holder)
        leftover, left_owners = lease.state.pending, lease.state.owners
        marked = tuple(sorted(set(owners) | (set(left_owners) if leftover else set())))
        span = (min(heights[0], leftover[0]), max(heights[1], leftover[1])) if leftover else heights
        lease.update(marker=True, owners=marked, pending=span, pending_at=None)
        if lease.settle:
            time.sleep(lease.settle)  # a writer that opened at the same time is visible by now
        rivals = [s for s in streams.read_all(store)
                  if s.stream != OPERATIONS and live_elsewhere(store, s)
                  and (conflicts(s) or _writing_under(s, leftover, left_owners))]
        if rivals:
            lease.update(owners=left_owners, pending=leftover)  # a crash's marker stays until finished
            lease.release()
            raise LeaseError(held_message(rivals, what))
        op = cls(store, lease, f"{OPERATIONS}/{lease.holder}/{lease.state.commit_seq + 1}")
        if leftover:
            op.finish_leftover(left_owners, leftover)
        return op

    def finish_leftover(self, owners: tuple[str, ...], heights: Range) -> None:
        """Delete the rows a command that died left under its marker and no commit covers."""
        from indexer.store.writer import delete_rows

        states = [s for s in streams.read_all(self.store) if s.stream != OPERATIONS]
        if ALL_OWNERS in owners:
            owners = tuple(sorted(owners_stored(self.store, heights) | {""}))
        ranges: Ranges = {}
        for owner in owners:
            todo = [heights]
            for s in states:
                todo = subtract(todo, covering(s.written, owner))
            if todo:
                ranges[owner] = merge(todo)
        log.info("finishing what an operator command left unfinished", owners=list(owners), from_height=heights[0],
                 to_height=heights[1])
        if ranges:
            delete_rows(self.store, ranges, why="deleted rows an interrupted operator command left")

    @property
    def commit_seq(self) -> int:
        return self.lease.state.commit_seq + 1

    def commit(self, kind: str, owners: tuple[str, ...], low: int, high: int, rows: dict[str, int],
               block_times_ms: tuple[int, int] = (0, 0), then: Callable[[], None] | None = None) -> commits.Commit:
        """Append the change-feed row, run ``then`` (what may only go once the row is there), and
        clear the marker: the command is done."""
        c = commits.Commit(OPERATIONS, self.commit_seq, tuple(owners), low, high, block_times_ms[0],
                           block_times_ms[1], rows, False, kind)
        self.lease.check()
        commits.append(self.store, c, self.token)
        if then is not None:
            then()
        self.lease.update(pending=None, pending_at=None, commit_seq=c.seq)
        return c

    def check(self) -> None:
        self.lease.check()

    def close(self) -> None:
        try:
            self.lease.release()
        except Exception as exc:  # the lease then expires on its own
            log.warning("could not release the operations lease", error=str(exc))


def owners_stored(store: Store, heights: Range) -> set[str]:
    """The owners that have rows at these heights, in any data table (blocks' owner '' aside)."""
    from indexer.decode.rows import OWNER_COLUMN

    found: set[str] = set()
    for table, column in OWNER_COLUMN.items():
        if column is None:
            continue
        _, rows = store.query(f"SELECT DISTINCT {column} FROM {store.table(table)} "
                              f"WHERE block_height BETWEEN {int(heights[0])} AND {int(heights[1])}")
        found.update(str(r[0]) for r in rows)
    return found


def write_state(store: Store, before: StreamState, after: StreamState) -> None:
    """Store another (not running) stream's new state, as the next version of its row."""
    streams.write(store, replace(after, version=before.version + 1))
