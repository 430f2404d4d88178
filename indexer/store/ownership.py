"""Which rows a batch may write: the overlap rule of the store protocol, as pure interval logic.

Rows belong to (owner, height) (``indexer.decode.rows.OWNER_COLUMN``). For each (owner, height)
of its batch, a stream

1. leaves it alone when some stream's committed ``written`` ranges cover it: those rows are
   stored already (``*`` covers every owner: progress recorded before owners were tracked);
2. leaves it alone when another live stream (lease not expired) marked a pending batch over it
   *earlier* than this one: that stream writes it; of two markers the earlier wins, and each
   stream reads the others' markers only after writing its own, so exactly one writes;
3. otherwise writes it, deleting first where rows may already be there without a commit: a
   pending marker of a stream that is no longer live (a crash), or this stream's own leftover.

A reindexing stream skips rule 1 and deletes first everywhere in its batch.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

ALL_OWNERS = "*"

Range = tuple[int, int]  # inclusive heights
Ranges = dict[str, list[Range]]  # owner -> sorted, disjoint ranges


def merge(ranges: Iterable[Range]) -> list[Range]:
    out: list[Range] = []
    for lo, hi in sorted(ranges):
        if out and lo <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


def subtract(ranges: list[Range], cut: Iterable[Range]) -> list[Range]:
    out = list(ranges)
    for clo, chi in cut:
        nxt: list[Range] = []
        for lo, hi in out:
            if chi < lo or clo > hi:
                nxt.append((lo, hi))
                continue
            if lo < clo:
                nxt.append((lo, clo - 1))
            if chi < hi:
                nxt.append((chi + 1, hi))
        out = nxt
    return out


def intersect(ranges: list[Range], other: Iterable[Range]) -> list[Range]:
    out = []
    for lo, hi in ranges:
        for olo, ohi in other:
            a, b = max(lo, olo), min(hi, ohi)
            if a <= b:
                out.append((a, b))
    return merge(out)


def union(a: Mapping[str, list[Range]], b: Mapping[str, list[Range]]) -> Ranges:
    return {o: merge([*a.get(o, []), *b.get(o, [])]) for o in set(a) | set(b) if a.get(o) or b.get(o)}


def covering(ranges: Mapping[str, list[Range]], owner: str) -> list[Range]:
    return [*ranges.get(owner, []), *ranges.get(ALL_OWNERS, [])]


@dataclass(frozen=True)
class Other:
    """What one stream's state says about the heights it holds."""

    stream: str
    owners: frozenset[str]
    written: Mapping[str, list[Range]]
    pending: Range | None
    pending_at: int | None  # store microseconds
    live: bool


@dataclass(frozen=True)
class Decision:
    writes: Ranges  # owner -> ranges this batch writes
    deletes: Ranges  # owner -> ranges to delete before writing (a subset of writes)
    skipped: Ranges  # owner -> ranges left to other streams


def decide(me: str, owners: Iterable[str], batch: Range, my_pending_at: int, streams: Iterable[Other],
           *, leftover: Range | None = None, reindex: bool = False) -> Decision:
    """What stream ``me`` writes of ``batch``. ``streams`` are all streams as just read back (``me``
    among them); ``leftover`` is the pending marker ``me`` found when it started: a batch of its
    own that a crash may have left half written."""
    streams = list(streams)
    writes: Ranges = {}
    deletes: Ranges = {}
    skipped: Ranges = {}
    for owner in owners:
        todo = [batch]
        if not reindex:
            for s in streams:
                todo = subtract(todo, covering(s.written, owner))
        for s in streams:
            if (s.stream != me and s.live and s.pending is not None and _holds(s, owner)
                    and (s.pending_at or 0, s.stream) < (my_pending_at, me)):
                todo = subtract(todo, [s.pending])
        if not todo:
            skipped[owner] = [batch]
            continue
        writes[owner] = todo
        left = subtract([batch], todo)
        if left:
            skipped[owner] = left
        dirty = [batch] if reindex else [
            s.pending for s in streams
            if s.stream != me and s.pending is not None and _holds(s, owner) and not s.live
        ] + ([leftover] if leftover else [])
        gone = intersect(todo, dirty)
        if gone:
            deletes[owner] = gone
    return Decision(writes, deletes, skipped)


def _holds(s: Other, owner: str) -> bool:
    return owner in s.owners or ALL_OWNERS in s.owners
