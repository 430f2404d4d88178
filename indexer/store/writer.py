"""Batches of rows -> ClickHouse: the store protocol for any number of writers.

Per batch of heights [low, high] a stream
1. checks its lease and records a pending marker over [low, high] (stamped by the store);
2. reads every stream back (again after ``lease_settle`` seconds on a server when another live
   stream could write the same rows, so its marker has arrived) and applies the overlap rule (``ownership.decide``): which (owner, height) it writes,
   which it leaves to others, where it must delete first;
3. deletes where needed, then inserts one part per table, each with an
   ``insert_deduplication_token`` unique to (stream, lease, commit, attempt, table);
4. appends its row to the change feed (``commits``) and commits: new height, marker cleared,
   the written ranges extended, ``commit_seq`` + 1.

A crash anywhere leaves either the marker (its rows are deleted before anyone writes those
heights again) or a committed batch. Readers never need FINAL and never see a row twice.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace

import structlog

from indexer import metrics
from indexer.decode.rows import COLUMNS, OWNER_COLUMN, Rows
from indexer.store import commits, operations, streams
from indexer.store.client import Store
from indexer.store.ownership import ALL_OWNERS, Decision, Range, Ranges, decide, union
from indexer.store.streams import Lease, LeaseError, StreamState

log = structlog.get_logger(__name__)


class FingerprintError(Exception):
    """The stream would mix rows decoded differently with rows already stored."""


@dataclass(frozen=True)
class StreamSpec:
    """What a stream is: its name, the owners whose rows it writes, its range and decoding."""

    stream: str
    owners: tuple[str, ...]  # tracked contracts and BLOCK_OWNER
    start_height: int
    end_height: int | None
    fingerprints: dict[str, str] = field(default_factory=dict)  # owner -> fingerprint of its decoding
    reindex: bool = False


@dataclass
class Batch:
    rows: Rows
    first_height: int
    last_height: int
    block_hash: str
    first_timestamp_ns: int = 0
    last_timestamp_ns: int = 0


def _rivals(states: list[StreamState], spec: StreamSpec, low: int, high: int) -> bool:
    """Whether another live stream may write some (owner, height) of this batch.

    Without one, nothing can race the marker: a stream that opens later waits ``lease_settle``
    after its first state row, so it sees this marker before it writes anything here.
    """
    mine = set(spec.owners)
    for s in states:
        if s.stream == spec.stream or not s.live or not (mine & set(s.owners) or ALL_OWNERS in s.owners):
            continue
        if s.start_height <= high and (s.end_height is None or s.end_height >= low) and s.height < high:
            return True
    return False


def _hull(batch: Range, leftover: Range | None) -> Range:
    if leftover is None:
        return batch
    return min(batch[0], leftover[0]), max(batch[1], leftover[1])


class Writer:
    """The one writer of a stream in this process; all its calls run in the store thread."""

    def __init__(self, store: Store, spec: StreamSpec, lease: Lease, leftover: Range | None):
        self.store = store
        self.spec = spec
        self.lease = lease
        self.leftover = leftover  # a batch of its own a crash may have left half written
        self._attempt = 0

    @classmethod
    def open(cls, store: Store, spec: StreamSpec, *, ttl: float = 60.0, settle: float = 2.0,
             holder: str | None = None) -> "Writer":
        """Take the stream's lease (LeaseError when held), refusing a different decoding (FingerprintError)."""
        check_fingerprints(streams.read_all(store), spec)
        initial = StreamState(spec.stream, owners=spec.owners, start_height=spec.start_height,
                              end_height=spec.end_height, height=spec.start_height - 1,
                              fingerprints=spec.fingerprints, reindex=spec.reindex)
        lease = Lease.acquire(store, initial, ttl=ttl, settle=settle, holder=holder)
        try:
            operations.check_writer(store, replace(lease.state, owners=spec.owners, start_height=spec.start_height,
                                                   end_height=spec.end_height))
        except LeaseError:
            lease.release()
            raise
        leftover = lease.state.pending
        lease.update(owners=spec.owners, end_height=spec.end_height, fingerprints=spec.fingerprints,
                     reindex=spec.reindex)
        if leftover:
            log.info("resuming after an unfinished batch; its rows are replaced as they are written again",
                     stream=spec.stream, from_height=leftover[0], to_height=leftover[1])
        return cls(store, spec, lease, leftover)

    @property
    def state(self) -> StreamState:
        return self.lease.state

    def flush(self, batch: Batch) -> Decision:
        """Store one batch and commit it. Returns what was written and what was left to others."""
        started = time.perf_counter()
        self.lease.check()
        low, high = batch.first_height, batch.last_height
        # The marker keeps covering a crash's leftover until a commit passes its end: a narrower
        # marker would forget rows a crash left above this batch.
        self.lease.update(marker=True, pending=_hull((low, high), self.leftover), pending_at=None)
        states = streams.read_all(self.store)
        if self.lease.settle and _rivals(states, self.spec, low, high):
            time.sleep(self.lease.settle)  # a rival's marker written at the same time is visible by now
            states = streams.read_all(self.store)
        mine = next(s for s in states if s.stream == self.spec.stream)
        self.lease.state = replace(self.lease.state, pending_at=mine.pending_at)
        decision = decide(self.spec.stream, self.spec.owners, (low, high), mine.pending_at or 0,
                          [s.other() for s in states], leftover=self.leftover, reindex=self.spec.reindex)
        if decision.deletes:
            delete_rows(self.store, decision.deletes)
        rows = batch.rows.only(decision.writes)
        seq = self.state.commit_seq + 1
        self._attempt += 1
        token = f"{self.spec.stream}/{self.lease.holder}/{seq}/{self._attempt}"
        self.lease.check()
        for table, table_rows in rows.tables.items():
            if table_rows:
                try:
                    self.store.insert_rows(table, COLUMNS[table], table_rows, dedup_token=f"{token}/{table}")
                except Exception:
                    metrics.STORE_INSERT_ERRORS.labels(table=table).inc()
                    raise
                metrics.ROWS.labels(table=table).inc(len(table_rows))
        commits.append(self.store, commits.Commit(
            self.spec.stream, seq, tuple(sorted(decision.writes)), low, high,
            batch.first_timestamp_ns // 1_000_000, batch.last_timestamp_ns // 1_000_000, rows.counts(),
            self.spec.reindex), token)
        rest = (high + 1, self.leftover[1]) if self.leftover and high < self.leftover[1] else None
        self.lease.update(height=high, block_hash=batch.block_hash, pending=rest,
                          pending_at=self.state.pending_at if rest else None,
                          written=union(self.state.written, decision.writes), commit_seq=seq)
        if rest is None:
            self.leftover = None
        self._report(batch, rows, decision, time.perf_counter() - started)
        for observe in metrics.COMMITTED_ROWS_OBSERVERS:
            observe(rows)
        return decision

    def _report(self, batch: Batch, rows: Rows, decision: Decision, elapsed: float) -> None:
        metrics.HEAD_HEIGHT.set(batch.last_height)
        if batch.last_timestamp_ns:
            metrics.HEAD_TIMESTAMP.set(batch.last_timestamp_ns / 1e9)
        metrics.FLUSH_SECONDS.observe(elapsed)
        if decision.skipped:
            metrics.STREAM_SKIPPED_HEIGHTS.inc(max(sum(hi - lo + 1 for lo, hi in rs) for rs in decision.skipped.values()))
            log.debug("left heights to other streams", skipped=decision.skipped, stream=self.spec.stream)
        log.debug("batch stored", height=batch.last_height, rows=rows.count(), seconds=round(elapsed, 4),
                  stream=self.spec.stream)

    def renew(self) -> None:
        self.lease.renew()

    def close(self) -> None:
        """Give the stream up (its progress stays)."""
        try:
            self.lease.release()
        except Exception as exc:  # the lease then expires on its own
            log.warning("could not release the stream's lease", stream=self.spec.stream, error=str(exc))


def delete_rows(store: Store, ranges: Ranges, *,
                why: str = "deleted rows of an unfinished batch before writing them again") -> int:
    """Delete the rows of these owners at these heights from every data table; returns how many."""
    removed = 0
    for table, column in OWNER_COLUMN.items():
        conds = []
        for owner, rs in ranges.items():
            if column is None and owner not in ("", ALL_OWNERS):
                continue
            span = " OR ".join(f"block_height BETWEEN {int(lo)} AND {int(hi)}" for lo, hi in rs)
            conds.append(f"({span})" if column is None or owner == ALL_OWNERS
                         else f"({column} = {_quote(owner)} AND ({span}))")
        if not conds:
            continue
        where = " OR ".join(conds)
        n = int(store.scalar(f"SELECT count() FROM {store.table(table)} WHERE {where}") or 0)
        if n:
            store.command(f"DELETE FROM {store.delete_target(table)} WHERE {where}")
            removed += n
    if removed:
        log.info(why, rows=removed, ranges={o: rs for o, rs in ranges.items()})
    return removed


def _quote(s: str) -> str:
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"


def check_fingerprints(states: list[StreamState], spec: StreamSpec) -> None:
    """Refuse to write an owner whose stored rows were decoded differently (unless reindexing)."""
    if spec.reindex:
        return
    for owner, fp in spec.fingerprints.items():
        holders = [s for s in states if s.fingerprints.get(owner) and s.written.get(owner)]
        own = next((s for s in states if s.stream == spec.stream and s.fingerprints.get(owner)), None)
        latest = max(holders, key=lambda s: s.claimed_at, default=None)
        for other in (own, latest):
            if other is not None and other.fingerprints[owner] != fp:
                raise FingerprintError(
                    f"{owner or 'blocks'}: stream {other.stream} stored rows decoded as {other.fingerprints[owner]}, "
                    f"this run decodes them as {fp} (a different decoder version, role or solver accounts); "
                    "re-index the range with --reindex to rewrite those rows, or index into another --database"
                )
