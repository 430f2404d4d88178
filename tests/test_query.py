"""indexer.query.run_query against real embedded chDB: formats and read-only refusal."""

from __future__ import annotations

import csv
import io
import json

import pytest

from indexer.decode.rows import COLUMNS
from indexer.query import QueryError, format_table, run_query
from indexer.store.client import Store

BIG = 2**128 - 1


@pytest.fixture
def filled(store: Store) -> Store:
    cols = COLUMNS["receipts"]
    base = dict(zip(cols, [0] * len(cols)))
    rows = []
    for i, (rid, deposit, status) in enumerate([("r1", str(BIG), "success"), ("r2", "5", "failure")]):
        row = {**base, "block_height": 10 + i, "block_timestamp": f"1777000000.{i:03d}", "block_hash": "bh",
               "receipt_id": rid, "receiver_id": "intents.near", "predecessor_id": "p", "signer_id": "s", "tx_hash": "",
               "method_name": "execute_intents", "action_kinds": ["FunctionCall"], "args": '{"a,b": "x\\"y"}',
               "deposit": deposit, "tokens_burnt": "1", "status": status, "failure": "" if i == 0 else "panic, with comma"}
        rows.append([row[c] for c in cols])
    store.insert_rows("receipts", cols, rows)
    return store


def _sql(store: Store, cols: str = "receipt_id, deposit, status, failure") -> str:
    return f"SELECT {cols} FROM {store.table('receipts')} ORDER BY receipt_id"


def test_table_format(filled: Store) -> None:
    out = run_query(filled, _sql(filled, "receipt_id, status, block_height"))
    lines = out.splitlines()
    assert lines[0].split() == ["receipt_id", "status", "block_height"]
    assert set(lines[1].replace(" ", "")) == {"-"}
    assert lines[2].split() == ["r1", "success", "10"]
    assert lines[3].split() == ["r2", "failure", "11"]
    assert lines[-1] == "(2 rows)"
    # columns are aligned
    assert lines[0].index("status") == lines[2].index("success") == lines[3].index("failure")


def test_table_format_one_and_zero_rows(filled: Store) -> None:
    assert run_query(filled, "SELECT 1 AS x").splitlines()[-1] == "(1 row)"
    assert run_query(filled, f"SELECT receipt_id FROM {filled.table('receipts')} WHERE 0").splitlines() == [
        "receipt_id", "----------", "(0 rows)"]


def test_json_format_keeps_big_integers_exact(filled: Store) -> None:
    out = run_query(filled, _sql(filled, "receipt_id, deposit, block_timestamp, action_kinds"), fmt="json")
    data = json.loads(out)
    assert data[0]["receipt_id"] == "r1" and data[0]["deposit"] == str(BIG)  # > 2**63: a string
    assert data[1]["deposit"] == 5
    assert data[0]["block_timestamp"].startswith("2026-04-24T03:06:40")
    assert data[0]["action_kinds"] == ["FunctionCall"]


def test_csv_format(filled: Store) -> None:
    out = run_query(filled, _sql(filled, "receipt_id, deposit, failure, args"), fmt="csv")
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == ["receipt_id", "deposit", "failure", "args"]
    assert rows[1] == ["r1", str(BIG), "", '{"a,b": "x\\"y"}']
    assert rows[2] == ["r2", "5", "panic, with comma", '{"a,b": "x\\"y"}']
    assert not out.endswith("\n") and "\r" not in out
    assert len(out.splitlines()) == 3


def test_views_queryable(filled: Store) -> None:
    assert json.loads(run_query(filled, f"SELECT count() AS n FROM {filled.table('intents')}", fmt="json")) == [{"n": 0}]


@pytest.mark.parametrize("sql", [
    "INSERT INTO {db}.receipts (receipt_id) VALUES ('evil')",
    "DROP TABLE {db}.receipts",
    "TRUNCATE TABLE {db}.receipts",
    "ALTER TABLE {db}.receipts DELETE WHERE 1",
    "DELETE FROM {db}.receipts WHERE 1",
    "CREATE TABLE {db}.x (a UInt8) ENGINE = Memory",
    "DROP DATABASE {db}",
])
def test_writes_are_refused(filled: Store, sql: str) -> None:
    with pytest.raises(QueryError, match="query failed"):
        run_query(filled, sql.format(db=f"`{filled.database}`"))
    assert filled.scalar(f"SELECT count() FROM {filled.table('receipts')}") == 2
    assert filled.table_exists("receipts") and not filled.table_exists("x")


def test_bad_sql_is_a_query_error_with_one_line(filled: Store) -> None:
    with pytest.raises(QueryError) as exc:
        run_query(filled, "SELEC nonsense")
    assert "\n" not in str(exc.value) and str(exc.value).startswith("query failed: ")


def test_readonly_does_not_stick_to_the_store(filled: Store) -> None:
    run_query(filled, "SELECT 1")
    filled.insert_rows("blocks", COLUMNS["blocks"], [[1, "h", "p", 1, "", 0, []]])
    assert filled.scalar(f"SELECT count() FROM {filled.table('blocks')}") == 1


def test_format_table_pure() -> None:
    assert format_table(["a", "long_name"], [(1, None), ("wide value", "x")]).splitlines() == [
        "a           long_name",
        "----------  ---------",
        "1           None",
        "wide value  x",
        "(2 rows)",
    ]


def test_empty_result_keeps_column_names_in_every_format(filled: Store) -> None:
    sql = f"SELECT receipt_id, deposit FROM {filled.table('receipts')} WHERE receipt_id = 'none';"
    assert run_query(filled, sql, fmt="csv") == "receipt_id,deposit"
    assert run_query(filled, sql, fmt="json") == "[]"
    assert run_query(filled, "SHOW TABLES FROM system LIKE 'no_such_table'").splitlines()[-1] == "(0 rows)"


def test_runs_in_the_configured_database(filled: Store) -> None:
    assert json.loads(run_query(filled, "SELECT count() AS n FROM receipts", fmt="json")) == [{"n": 2}]
    assert run_query(filled, "SELECT currentDatabase() AS db", fmt="csv").splitlines() == ["db", filled.database]


def test_the_users_own_format_is_kept(filled: Store) -> None:
    out = run_query(filled, "SELECT receipt_id FROM receipts ORDER BY receipt_id FORMAT JSON;")
    data = json.loads(out)
    assert [r["receipt_id"] for r in data["data"]] == ["r1", "r2"] and data["rows"] == 2
    assert run_query(filled, "select receipt_id from receipts order by receipt_id format CSV", fmt="json") == \
        '"r1"\n"r2"'
    with pytest.raises(QueryError, match="query failed"):  # read-only in this path too
        run_query(filled, "DROP TABLE receipts FORMAT JSON")
    assert filled.table_exists("receipts")


@pytest.mark.parametrize("sql", ["", "   ", " ; ", "\n;\n"])
def test_empty_query_is_refused(filled: Store, sql: str) -> None:
    with pytest.raises(QueryError, match="the query is empty"):
        run_query(filled, sql)
