"""Where a rollup job is in the change feed: per stream, the last commit seq it applied.

Stored in ``rollup_cursors`` (one row per job and stream, newest ``version`` wins), so a restart
or a kill -9 resumes at the first commit whose buckets may not have been written.
"""

from __future__ import annotations

from indexer.store.client import Store

COLUMNS = ("job", "stream", "seq", "version")


def read(store: Store, job: str) -> dict[str, int]:
    _, rows = store.query(
        f"SELECT stream, seq FROM {store.table('rollup_cursors')} FINAL WHERE job = {{job:String}}", {"job": job})
    return {stream: int(seq) for stream, seq in rows}


def write(store: Store, job: str, cursor: dict[str, int], before: dict[str, int]) -> None:
    """Store the streams whose seq moved (one insert: the whole move is stored, or none of it)."""
    moved = [[job, stream, seq] for stream, seq in sorted(cursor.items()) if before.get(stream) != seq]
    if not moved:
        return
    version = store.now_us()
    store.insert_rows("rollup_cursors", COLUMNS, [[*m, version] for m in moved],
                      dedup_token=f"rollup-cursor/{job}/{version}")
