"""``intents-indexer query``: read-only SQL, printed as a table, JSON or CSV."""

from __future__ import annotations

import csv
import io
from typing import Any

import orjson

from indexer.store.client import Store


class QueryError(Exception):
    pass


def _cell(v: Any) -> Any:
    if isinstance(v, (bytes, bytearray)):
        return v.decode(errors="replace")
    if hasattr(v, "isoformat"):
        return v.isoformat()
    if isinstance(v, int) and abs(v) >= 2**63:
        return str(v)
    if isinstance(v, (list, tuple)):
        return [_cell(x) for x in v]
    return v


def run_query(store: Store, sql: str, fmt: str = "table") -> str:
    try:
        # readonly=2 refuses writes and DDL but lets the client set its own query settings.
        columns, rows = store.query(sql, settings={"readonly": 2})
    except Exception as exc:
        raise QueryError(f"query failed: {str(exc).strip().splitlines()[0][:500]}") from None
    if not columns and not rows:
        columns = _columns_of_empty_result(store, sql)
    rows = [tuple(_cell(v) for v in row) for row in rows]
    if fmt == "json":
        return orjson.dumps([dict(zip(columns, row)) for row in rows], option=orjson.OPT_INDENT_2).decode()
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows(rows)
        return buf.getvalue().rstrip("\n")
    return format_table(columns, rows)


def _columns_of_empty_result(store: Store, sql: str) -> list[str]:
    """Column names of a query that returned no rows: embedded chDB gives none with an empty result."""
    try:
        _, described = store.query(f"DESCRIBE TABLE ({sql.strip().rstrip(';')})", settings={"readonly": 2})
    except Exception:  # not a SELECT (SHOW ..., EXPLAIN ...): leave the header empty
        return []
    return [str(r[0]) for r in described]


def format_table(columns: list[str], rows: list[tuple[Any, ...]]) -> str:
    text = [[str(c) for c in columns]] + [[str(v) for v in row] for row in rows]
    widths = [max(len(r[i]) for r in text) for i in range(len(columns))]
    lines = ["  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in text]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines.append(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")
    return "\n".join(lines)
