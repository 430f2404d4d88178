"""``intents-indexer rewind``: forget what was indexed above a height, so it is indexed again.

For the owners it rewinds (every owner, or one contract), a rewind cuts every stream's committed
``written`` ranges at ``to``, moves back the streams that index those owners (their next batch
starts at ``to + 1``; the live stream's start moves down when ``to`` is below it, so ``run``
re-indexes from ``to + 1`` too), deletes the rows above ``to`` and appends a ``rewind`` row to the
change feed. Afterwards the stored rows are exactly those the remaining ``written`` ranges cover,
as after a clean run up to ``to`` of those owners.

Blocks (owner ``''``) are shared by every contract: a rewind of one contract removes them above
``to`` only when no other contract keeps committed rows above ``to``. Otherwise they stay, written
ranges and all, and the contract's next run writes its own rows next to them.

It runs under the ``operations`` lease (``store.operations``): it refuses while a live stream may
write those owners above ``to``, and a writer refuses to open while it runs. Streams' rows are
changed before any row is deleted: a rewind that dies leaves rows that no written range claims,
under its marker, and the next writer or command deletes them before writing.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import structlog

from indexer.decode.rows import BLOCK_OWNER, OWNER_COLUMN
from indexer.store import commits, operations, streams
from indexer.store.client import Store
from indexer.store.operations import OPERATIONS, Operation, owners_stored, shares_owner
from indexer.store.ownership import ALL_OWNERS, Ranges, merge, subtract
from indexer.store.streams import StreamState

log = structlog.get_logger(__name__)

TOP = 2**63 - 1


@dataclass
class RewindPlan:
    to_height: int
    contract: str | None
    owners: tuple[str, ...]  # (ALL_OWNERS,) for everything; else the contract, and '' with the blocks
    top: int  # the highest height anything of those owners is stored or claimed at
    rows: dict[str, int] = field(default_factory=dict)  # table -> rows that go
    moves: list[tuple[StreamState, StreamState]] = field(default_factory=list)  # (before, after) per changed stream

    @property
    def empty(self) -> bool:
        return not self.moves and not any(self.rows.values())

    @property
    def blocks_too(self) -> bool:
        return ALL_OWNERS in self.owners or BLOCK_OWNER in self.owners

    def describe(self) -> str:
        who = "every contract and the blocks" if self.contract is None else (
            f"{self.contract}" + (" and the blocks (no other contract has rows above it)" if self.blocks_too
                                  else " (blocks stay: other contracts have rows above it)"))
        lines = [f"rewind to height {self.to_height}: remove what was indexed above it for {who}"]
        gone = ", ".join(f"{t} {n}" for t, n in self.rows.items() if n) or "none"
        lines.append(f"  rows to remove: {gone}")
        for before, after in self.moves:
            change = [f"height {before.height} -> {after.height}"] if after.height != before.height else []
            if after.start_height != before.start_height:
                change.append(f"start {before.start_height} -> {after.start_height}")
            lines.append(f"  stream {before.stream}: " + (", ".join(change) or "written ranges cut"))
        lines.append(f"  the next run (or backfill of those streams) indexes again from {self.to_height + 1}")
        return "\n".join(lines)


def _cut(written: Ranges, owners: tuple[str, ...], to: int) -> Ranges:
    """``written`` without anything of ``owners`` above ``to``."""
    above = [(to + 1, TOP)]
    out: Ranges = {}
    for owner, ranges in written.items():
        kept = subtract(ranges, above) if ALL_OWNERS in owners or owner in owners else ranges
        if kept:
            out[owner] = merge(kept)
    return out


def _expand_all(store: Store, written: Ranges, to: int) -> Ranges:
    """``written`` with its '*' ranges (progress from before owners were recorded) above ``to``
    spelled out per owner stored there, so one contract can be taken out of them."""
    star = [r for r in written.get(ALL_OWNERS, []) if r[1] > to]
    if not star:
        return written
    out = {o: list(rs) for o, rs in written.items()}
    out[ALL_OWNERS] = subtract(out[ALL_OWNERS], [(to + 1, TOP)])
    for lo, hi in star:
        part = (max(lo, to + 1), hi)
        for owner in owners_stored(store, part) | {BLOCK_OWNER}:
            out[owner] = merge([*out.get(owner, []), part])
    return {o: rs for o, rs in out.items() if rs}


def _highest(s: StreamState) -> int:
    his = [s.height, *(hi for rs in s.written.values() for _, hi in rs)]
    if s.pending:
        his.append(s.pending[1])
    return max(his)


def _block_hash_at(store: Store, height: int) -> str:
    """Hash of the newest stored block at or below ``height``: what the block after it names."""
    return str(store.scalar(f"SELECT argMax(block_hash, block_height) FROM {store.table('blocks')} "
                            f"WHERE block_height <= {int(height)}") or "")


def _moved(store: Store, s: StreamState, owners: tuple[str, ...], to: int, contract: str | None) -> StreamState:
    written = s.written if contract is None else _expand_all(store, s.written, to)
    after = replace(s, written=_cut(written, owners, to))
    indexes = contract is None or shares_owner(s.owners, (contract,))
    if indexes and s.height > to:
        height = max(to, s.start_height - 1)
        start = s.start_height
        if s.stream == streams.LIVE and to < s.start_height - 1:
            start, height = to + 1, to  # `run` re-indexes from to + 1, below where it first started
        after = replace(after, height=height, start_height=start, block_hash=_block_hash_at(store, height))
    return after


def _others_above(states: list[StreamState], contract: str, to: int) -> bool:
    """Whether a contract other than ``contract`` keeps committed rows above ``to``."""
    for s in states:
        for owner, ranges in s.written.items():
            if owner not in (contract, BLOCK_OWNER) and any(hi > to for _, hi in ranges):
                return True
    return False


def _count(store: Store, owners: tuple[str, ...], low: int, high: int) -> dict[str, int]:
    out = {}
    for table, column in OWNER_COLUMN.items():
        where = f"block_height BETWEEN {int(low)} AND {int(high)}"
        if ALL_OWNERS not in owners:
            if column is None:
                if BLOCK_OWNER not in owners:
                    continue
            else:
                where += " AND " + column + " IN (" + ", ".join(_quote(o) for o in owners) + ")"
        out[table] = int(store.scalar(f"SELECT count() FROM {store.table(table)} WHERE {where}") or 0)
    return out


def _quote(s: str) -> str:
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"


def plan(store: Store, to: int, contract: str | None = None) -> RewindPlan:
    """What a rewind to ``to`` (of ``contract``, or everything) would change; changes nothing."""
    states = [s for s in streams.read_all(store) if s.stream != OPERATIONS]
    if contract is None:
        owners: tuple[str, ...] = (ALL_OWNERS,)
    else:
        expanded = [replace(s, written=_expand_all(store, s.written, to)) for s in states]
        tracked = any(contract in s.owners or contract in s.written for s in expanded)
        # An untracked contract has nothing to rewind, and its rewind must not take the blocks.
        owners = (contract,) if not tracked or _others_above(expanded, contract, to) else (BLOCK_OWNER, contract)
    top = max([to, *(_highest(s) for s in states), _stored_top(store)])
    moves = []
    for s in states:
        after = _moved(store, s, owners, to, contract)
        if after != s:
            moves.append((s, after))
    rows = _count(store, owners, to + 1, top) if top > to else {}
    return RewindPlan(to, contract, owners, top, rows, moves)


def _stored_top(store: Store) -> int:
    return int(store.scalar(f"SELECT max(block_height) FROM {store.table('blocks')}") or 0)


def _block_times(store: Store, low: int, high: int) -> tuple[int, int]:
    _, rows = store.query(f"SELECT min(block_timestamp_ns), max(block_timestamp_ns) FROM {store.table('blocks')} "
                          f"WHERE block_height BETWEEN {int(low)} AND {int(high)}")
    lo, hi = rows[0] if rows else (0, 0)
    return int(lo or 0) // 1_000_000, int(hi or 0) // 1_000_000


def rewind(store: Store, to: int, contract: str | None = None, *, ttl: float = 60.0, settle: float = 2.0,
           holder: str | None = None) -> tuple[RewindPlan, commits.Commit | None]:
    """Rewind to ``to`` under the operations lease; LeaseError when a live stream may write those
    heights. Returns what it did and its change-feed row (None when there was nothing above ``to``)."""
    from indexer.store.writer import delete_rows

    first = plan(store, to, contract)

    def conflicts(s: StreamState) -> bool:
        span = (s.start_height, TOP if s.end_height is None else s.end_height)
        writes_above = span[1] > to or (s.pending is not None and s.pending[1] > to)
        return writes_above and shares_owner(s.owners, first.owners if contract else (ALL_OWNERS,))

    op = Operation.begin(store, first.owners, (to + 1, max(first.top, to + 1)), what=f"cannot rewind to {to}",
                         conflicts=conflicts, ttl=ttl, settle=settle, holder=holder)
    try:
        p = plan(store, to, contract)  # again, under the lease: nothing moves any more
        if p.empty:
            op.commit(commits.REWIND, (), to + 1, max(p.top, to + 1), {})  # changed nothing: rollups skip it
            return p, None
        for before, after in p.moves:  # no stream claims the rows above `to` any more ...
            op.check()
            operations.write_state(store, before, after)
        times = _block_times(store, to + 1, p.top)
        op.check()
        delete_rows(store, {o: [(to + 1, p.top)] for o in p.owners}, why="rewind: deleted rows above its height")
        commit = op.commit(commits.REWIND, p.owners, to + 1, p.top, {t: n for t, n in p.rows.items() if n}, times)
        log.info("rewound", to_height=to, contract=contract, rows=sum(p.rows.values()),
                 streams=[b.stream for b, _ in p.moves])
        return p, commit
    finally:
        op.close()
