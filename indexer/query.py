"""``intents-indexer query``: read-only SQL, printed as a table, JSON or CSV."""

from __future__ import annotations

import csv
import io
import re
from typing import Any

import orjson

from indexer.store.client import Store


class QueryError(Exception):
    pass


# A FORMAT clause closing the user's SQL: ClickHouse then writes the output itself, and the client
# must not append its own FORMAT (two FORMAT clauses are a syntax error).
_OWN_FORMAT = re.compile(r"\bFORMAT\s+([A-Za-z][A-Za-z0-9_]*)\s*$", re.IGNORECASE)

_READ_ONLY = {"readonly": 2}  # refuses writes and DDL but lets the client set its own query settings


def own_format(sql: str) -> str | None:
    """The format named by a FORMAT clause at the end of ``sql``, or None."""
    m = _OWN_FORMAT.search(_strip(sql))
    return m.group(1) if m else None


def _strip(sql: str) -> str:
    return sql.strip().rstrip(";").strip()


def _use_database(store: Store) -> None:
    """Run queries in the configured database, so that ``FROM receipts`` means its table; a
    database that does not exist yet leaves the server's default (fully-qualified names still work)."""
    exists = store.scalar("SELECT count() FROM system.databases WHERE name = {db:String}", {"db": store.database})
    if exists:
        store.use_database(store.database)


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
    """The result of read-only ``sql`` as text: a table, JSON or CSV, or as ClickHouse writes the
    format named by the query's own FORMAT clause (which then wins over ``fmt``)."""
    sql = _strip(sql)
    if not sql:
        raise QueryError("the query is empty: give SQL, e.g. \"SELECT count() FROM receipts\"")
    try:
        _use_database(store)
        if own_format(sql):
            return store.client.raw_query(sql, settings=_READ_ONLY).decode(errors="replace").rstrip("\n")
        columns, rows = store.query(sql, settings=_READ_ONLY)
    except Exception as exc:
        raise QueryError(f"query failed: {str(exc).strip().splitlines()[0][:500]}") from None
    if not columns and not rows:
        columns = _columns_of_empty_result(store, sql)
    return render(columns, rows, fmt)


def render(columns: list[str], rows: list[tuple[Any, ...]] | list[list[Any]], fmt: str) -> str:
    """Rows as an aligned table, a JSON list of objects, or CSV with a header."""
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


_CUT = {"reason": 100, "payload": 60}  # table format: long texts cut to these widths


def list_dead_letters(store: Store, *, kind: str | None = None, since: int | None = None, limit: int = 100,
                      fmt: str = "table") -> str:
    """Dead letters, newest first, optionally of one kind and from a height on."""
    if not store.table_exists("dead_letters"):
        raise QueryError(f"{store.database} has no tables yet: run `intents-indexer migrate` or start indexing")
    # A retry killed before its change-feed row leaves new dead letters that are not there yet.
    where, params = [f"(retry_token = '' OR retry_token IN (SELECT token FROM {store.table('commits')}))"], {}
    if kind:
        where.append("kind = {kind:String}")
        params["kind"] = kind
    if since is not None:
        where.append("block_height >= {since:UInt64}")
        params["since"] = since
    sql = (f"SELECT block_height, shard_id, receipt_id, contract_id, kind, reason, payload "
           f"FROM {store.table('dead_letters')} {'WHERE ' + ' AND '.join(where) if where else ''} "
           f"ORDER BY block_height DESC, seq LIMIT {int(limit)}")
    columns, rows = store.query(sql, params)
    if fmt == "table":
        cut = [_CUT.get(c) for c in columns]
        rows = [tuple(_shorten(v, w) for v, w in zip(row, cut)) for row in rows]
    return render(columns, rows, fmt)


def _shorten(value: Any, width: int | None) -> Any:
    if width is None or not isinstance(value, str):
        return value
    value = " ".join(value.split())  # one line per dead letter
    return value if len(value) <= width else value[: width - 3] + "..."


def _columns_of_empty_result(store: Store, sql: str) -> list[str]:
    """Column names of a query that returned no rows: embedded chDB gives none with an empty result."""
    try:
        _, described = store.query(f"DESCRIBE TABLE ({sql})", settings=_READ_ONLY)
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
