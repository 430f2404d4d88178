"""``intents-indexer status``: checkpoints, head lag and row counts."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import structlog

from indexer.config import Settings
from indexer.decode.rows import DATA_TABLES
from indexer.query import format_table
from indexer.store import streams
from indexer.store.operations import OPERATIONS
from indexer.store.client import Store

log = structlog.get_logger(__name__)


async def collect(settings: Settings, store: Store, *, ask_head: bool = True) -> dict[str, Any]:
    report: dict[str, Any] = {"store": store.dsn, "database": store.database, "checkpoints": [], "tables": {}}
    if not store.table_exists("streams"):
        report["error"] = f"{store.database} has no tables yet: run `intents-indexer migrate` or start indexing"
        return report
    head = None
    if ask_head:
        from indexer.sources import SourceError, open_source

        quick = settings.model_copy(update={"shard_retry_limit": 1})  # status answers now, not after a minute
        try:
            async with open_source(quick) as source:
                head = await asyncio.wait_for(source.final_head(), timeout=15)
        except (SourceError, OSError, TimeoutError) as exc:
            report["head_error"] = str(exc)
    report["head_height"] = head
    for st in streams.read_all(store):
        report["checkpoints"].append({
            "stream": st.stream, "height": st.height, "block_hash": st.block_hash,
            "start_height": st.start_height, "end_height": st.end_height,
            # the operator commands' stream follows no chain: no lag
            "lag_blocks": (head - st.height) if head is not None and st.end_height is None
            and st.stream != OPERATIONS else None,
            "holder": st.holder if st.live else None, "pending": list(st.pending) if st.pending else None,
            "commits": st.commit_seq,
        })
    for table in DATA_TABLES:
        report["tables"][table] = int(store.scalar(f"SELECT count() FROM {store.table(table)}") or 0)
    report["tables"]["intents"] = int(store.scalar(f"SELECT count() FROM {store.table('intents')}") or 0)
    return report


def render(report: dict[str, Any], fmt: str) -> str:
    if fmt == "json":
        return orjson.dumps(report, option=orjson.OPT_INDENT_2).decode()
    out = [f"store: {report['store']} (database {report['database']})"]
    if "error" in report:
        return "\n".join(out + [report["error"]])
    if report.get("head_height") is not None:
        out.append(f"chain head: {report['head_height']}")
    elif report.get("head_error"):
        out.append(f"chain head: unknown ({report['head_error']})")
    out.append("")
    if report["checkpoints"]:
        cols = ["stream", "height", "block_hash", "lag_blocks", "holder"]
        out.append(format_table(cols, [tuple("" if c[k] is None else c[k] for k in cols) for c in report["checkpoints"]]))
    else:
        out.append("no checkpoints yet")
    out.append("")
    out.append(format_table(["table", "rows"], list(report["tables"].items())))
    return "\n".join(out)
