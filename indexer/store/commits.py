"""The change feed: ``commits`` holds one row per committed batch of every stream.

A row says what kind of change it is (``kind``: an ingest ``batch``, an operator's ``rewind`` or
dead-letter ``retry``), which stream committed (``stream``, its ``seq``: 1, 2, 3 ... per stream), which
owners and heights it wrote (``owners``, ``low_height``..``high_height``), the block times they
span and how many rows each table got. Rows of a commit are the rows of those owners at those
heights. A consumer (rollups, the API) keeps a cursor per stream and asks for what came after
it. A commit row is written before its stream's state moves; a row whose seq is above its
stream's ``commit_seq`` belongs to a batch that did not commit (a crash) and is never returned;
when the stream then commits that seq, the newer row is the one that counts.
"""

from __future__ import annotations

from dataclasses import dataclass

from indexer.store.client import Store

COLUMNS = ("stream", "seq", "token", "owners", "low_height", "high_height", "min_block_time", "max_block_time",
           "rows", "reindex", "kind")

BATCH = "batch"  # rows an ingest stream wrote
REWIND = "rewind"  # rows of its owners above low_height - 1 removed (``rows``: how many per table)
RETRY = "retry"  # the rows of retried dead letters' receipts replaced


@dataclass(frozen=True)
class Commit:
    stream: str
    seq: int
    owners: tuple[str, ...]
    low_height: int
    high_height: int
    min_block_time_ms: int
    max_block_time_ms: int
    rows: dict[str, int]
    reindex: bool
    kind: str = BATCH


def append(store: Store, c: Commit, token: str) -> None:
    store.insert_rows("commits", COLUMNS, [[
        c.stream, c.seq, token, list(c.owners), c.low_height, c.high_height, _ms(c.min_block_time_ms),
        _ms(c.max_block_time_ms), c.rows, int(c.reindex), c.kind,
    ]], dedup_token=f"{token}/commits")


def _ms(ms: int) -> str:
    if ms <= 0:  # no block times (an operator command over heights with no blocks): "0.000" reads as a date
        return "1970-01-01 00:00:00.000"
    return f"{ms // 1000}.{ms % 1000:03d}"


def read_since(store: Store, cursor: dict[str, int] | None = None, limit: int = 10_000) -> list[Commit]:
    """Committed batches after ``cursor`` (stream -> last seq seen), in (stream, seq) order.

    The streams' committed seqs are read first (one row per stream), so the commits query names
    each stream's (seq after the cursor .. committed seq) range on the sort key: a reader far
    into the feed reads only what came after its cursor, and an idle one reads no commit at all."""
    cursor = cursor or {}
    _, states = store.query(f"SELECT stream, commit_seq FROM {store.table('streams')} FINAL")
    params: dict[str, object] = {}
    ranges = []
    for i, (stream, committed) in enumerate(sorted(states)):
        if int(committed) > cursor.get(stream, 0):
            params[f"s{i}"], params[f"lo{i}"], params[f"hi{i}"] = stream, cursor.get(stream, 0), int(committed)
            ranges.append(f"(c.stream = {{s{i}:String}} AND c.seq > {{lo{i}:UInt64}} AND c.seq <= {{hi{i}:UInt64}})")
    if not ranges:
        return []
    _, rows = store.query(
        f"SELECT c.stream, c.seq, argMax(c.owners, c.committed_at), argMax(c.low_height, c.committed_at), "
        f"argMax(c.high_height, c.committed_at), argMax(toUnixTimestamp64Milli(c.min_block_time), c.committed_at), "
        f"argMax(toUnixTimestamp64Milli(c.max_block_time), c.committed_at), argMax(c.rows, c.committed_at), "
        f"argMax(c.reindex, c.committed_at), argMax(c.kind, c.committed_at) "
        f"FROM {store.table('commits')} AS c WHERE {' OR '.join(ranges)} "
        f"GROUP BY c.stream, c.seq ORDER BY c.stream, c.seq LIMIT {int(limit)}",
        params,
    )
    return [Commit(s, int(q), tuple(o), int(lo), int(hi), int(a), int(b), dict(r), bool(x), k)
            for s, q, o, lo, hi, a, b, r, x, k in rows]


def advance(cursor: dict[str, int], seen: list[Commit]) -> dict[str, int]:
    out = dict(cursor)
    for c in seen:
        out[c.stream] = max(out.get(c.stream, 0), c.seq)
    return out
