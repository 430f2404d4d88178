"""Which buckets a set of commits changed, and recomputing buckets from the base tables.

A commit's rows lie between its first and last block time, so the 1-minute buckets it may have
changed are those from ``min_block_time`` to ``max_block_time``. Recomputing a bucket deletes it
and inserts it again from every base row now in it (of every contract and stream), so doing it
twice, or after any other commit, gives the same rows: exact by construction.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from indexer.rollup.families import GRAINS, Family, start_of
from indexer.store.client import Store
from indexer.store.commits import Commit

MINUTE = 60
CHUNK_BUCKETS = 1440  # buckets per statement: a day of minutes


def touched_minutes(commits: Iterable[Commit], lookahead: int = 0) -> set[int]:
    """Unix seconds of the 1-minute buckets the commits may have changed (commits that wrote
    nothing, with no owners, changed none), and ``lookahead`` seconds after them."""
    out: set[int] = set()
    for c in commits:
        # no owners: nothing written; no block times: heights without blocks (an operator command
        # over an empty range), so no rows with a time either
        if not c.owners or max(c.min_block_time_ms, c.max_block_time_ms) <= 0:
            continue
        first_ms = c.min_block_time_ms if c.min_block_time_ms > 0 else c.max_block_time_ms
        last_ms = c.max_block_time_ms if c.max_block_time_ms > 0 else c.min_block_time_ms
        first = first_ms // 1000 // MINUTE * MINUTE
        last = (last_ms // 1000 + lookahead) // MINUTE * MINUTE
        out.update(range(first, last + MINUTE, MINUTE))
    return out


def coarser(minutes: Iterable[int], seconds: int) -> set[int]:
    return {m // seconds * seconds for m in minutes}


def recompute(store: Store, family: Family, minutes: set[int]) -> int:
    """Recompute these minutes, then the hours and days holding them; returns buckets written."""
    written = 0
    for grain, seconds in GRAINS:
        for chunk in _chunks(sorted(coarser(minutes, seconds))):
            _replace(store, family, grain, seconds, chunk)
            written += len(chunk)
    return written


def _chunks(buckets: list[int]) -> Iterable[list[int]]:
    for i in range(0, len(buckets), CHUNK_BUCKETS):
        yield buckets[i:i + CHUNK_BUCKETS]


def _replace(store: Store, family: Family, grain: str, seconds: int, buckets: list[int]) -> None:
    table = store.table(family.table(grain))
    in_list = ", ".join(str(b) for b in buckets)
    where = f"bucket >= {buckets[0]} AND bucket < {buckets[-1] + seconds} AND bucket IN ({in_list})"
    if int(store.scalar(f"SELECT count() FROM {table} WHERE {where}") or 0):
        store.command(f"DELETE FROM {table} WHERE {where}")
    # Each attempt carries its own token: a deduplicating (replicated) table would otherwise drop
    # the re-insert of a bucket identical to the one just deleted.
    store.command(_insert_sql(store, family, grain, seconds, buckets, in_list),
                  settings={"insert_deduplication_token": f"rollup/{family.table(grain)}/{uuid.uuid4().hex}"})


def _insert_sql(store: Store, family: Family, grain: str, seconds: int, buckets: list[int], in_list: str) -> str:
    keys = [expr for _, expr in family.keys]
    lo, hi = buckets[0], buckets[-1] + seconds
    if grain == "1m":
        source = family.source(store, lo, hi) if family.source else store.table(family.base)
        time_col = "block_timestamp"
        aggs = [c.from_base for c in family.columns]
        join = family.array_join
    else:  # from the next finer grain: an hour from its minutes, a day from its hours
        finer = GRAINS[[g for g, _ in GRAINS].index(grain) - 1][0]
        source, time_col = store.table(family.table(finer)), "bucket"
        keys = [name for name, _ in family.keys]
        aggs = [c.from_finer for c in family.columns]
        join = ""
    b = start_of(grain, time_col)
    bounds = (f"{time_col} >= toDateTime({lo}, 'UTC') AND {time_col} < toDateTime({hi}, 'UTC') "
              f"AND toUnixTimestamp({b}) IN ({in_list})")
    group = ", ".join(["rollup_bucket", *(f"rollup_key{i}" for i in range(len(keys)))])
    select = ", ".join([f"{b} AS rollup_bucket", *(f"{k} AS rollup_key{i}" for i, k in enumerate(keys)), *aggs])
    return (f"INSERT INTO {store.table(family.table(grain))} ({', '.join(family.column_names)}) "
            f"SELECT {select} FROM {source} {join} WHERE {bounds} GROUP BY {group}")


def rebuild_minutes(start: int, end: int) -> set[int]:
    """The minutes of [start, end) (unix seconds), for ``rollup --rebuild``."""
    first = start // MINUTE * MINUTE
    return set(range(first, end, MINUTE))
