"""One rollup job per family: read the commits after the job's cursor, recompute the buckets they
touched, and only then move the cursor.

A crash anywhere before the cursor moves leaves the cursor where it was: the next run reads the
same commits and recomputes the same buckets, which gives the same rows (``buckets.recompute``
deletes before it inserts). Commits are taken in steps, so a long backfill's history is rolled
up in bounded statements and progress is kept step by step.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from indexer import metrics
from indexer.rollup import buckets, cursor
from indexer.rollup import families
from indexer.rollup.economics import ECONOMICS
from indexer.rollup.families import Family
from indexer.store import commits as feed
from indexer.store.client import Store

log = structlog.get_logger(__name__)

COMMITS_PER_STEP = 500
FAMILIES: tuple[Family, ...] = (*families.FAMILIES, *ECONOMICS)


@dataclass
class JobResult:
    job: str
    commits: int = 0
    buckets: int = 0
    seconds: float = 0.0


def run_once(store: Store, family: Family, *, step: int = COMMITS_PER_STEP,
             renew: Callable[[], None] | None = None) -> JobResult:
    """Apply every commit after the cursor; returns what was done. ``renew`` (the rollup lease's)
    runs before each step, so a long catch-up keeps its lease or stops when it lost it."""
    started = time.perf_counter()
    result = JobResult(family.name)
    position = cursor.read(store, family.name)
    while True:
        if renew is not None:
            renew()
        seen = feed.read_since(store, position, limit=step)
        if not seen:
            break
        minutes = buckets.touched_minutes(seen, family.lookahead)
        if minutes:
            result.buckets += buckets.recompute(store, family, minutes)
        moved = feed.advance(position, seen)
        cursor.write(store, family.name, moved, position)  # only after the buckets are written
        position = moved
        result.commits += len(seen)
        if len(seen) < step:
            break
    result.seconds = time.perf_counter() - started
    metrics.ROLLUP_SECONDS.labels(job=family.name).observe(result.seconds)
    metrics.ROLLUP_LAST_SUCCESS.labels(job=family.name).set(time.time())
    if result.commits:
        log.debug("rollup applied commits", job=family.name, commits=result.commits, buckets=result.buckets,
                  seconds=round(result.seconds, 3))
    return result


def run_all(store: Store, families: tuple[Family, ...] = FAMILIES,
            renew: Callable[[], None] | None = None) -> list[JobResult]:
    return [run_once(store, f, renew=renew) for f in families]


def rebuild(store: Store, start: int, end: int, families: tuple[Family, ...] = FAMILIES,
            renew: Callable[[], None] | None = None) -> int:
    """Recompute every bucket of [start, end) (unix seconds) from the base tables; cursors stay.

    For a range whose rows changed outside the change feed (rows edited by hand, a restored
    backup), or after a change to what the rollup tables compute."""
    minutes = buckets.rebuild_minutes(start, end)
    written = 0
    for family in families:
        # a day of minutes at a time, so one statement never spans more than CHUNK_BUCKETS
        for i in range(0, len(sorted_minutes := sorted(minutes)), buckets.CHUNK_BUCKETS):
            if renew is not None:
                renew()
            written += buckets.recompute(store, family, set(sorted_minutes[i:i + buckets.CHUNK_BUCKETS]))
    return written
