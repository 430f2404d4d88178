"""indexer.store.client: DSNs, and insert_rows round trips through real embedded chDB for every table."""

from __future__ import annotations

import datetime as dt
import json
import socket
import uuid
from pathlib import Path

import pytest

from decodehelpers import MAIN_RECEIPT_ID, SOLVER, TX_HASH, raw_block
from indexer.config import ContractSpec
from indexer.decode.block import BlockDecoder, DecoderConfig
from indexer.decode.rows import COLUMNS, DATA_TABLES, Rows
from indexer.store.client import Store, StoreError, parse_dsn

try:
    from lakebuild import fixture_lake as build_lake
except ImportError:
    from tests.lakebuild import fixture_lake as build_lake

U128_MAX = str(2**128 - 1)
UTC = dt.timezone.utc


def _aware(v: object) -> object:
    """DateTime values as aware UTC datetimes (the client may give naive UTC ones)."""
    if isinstance(v, dt.datetime) and v.tzinfo is None:
        return v.replace(tzinfo=UTC)
    return v


def _select(store: Store, table: str, order: str = "block_height") -> list[dict]:
    cols, rows = store.query(f"SELECT * FROM {store.table(table)} ORDER BY {order}")
    return [{c: _aware(v) for c, v in zip(cols, r)} for r in rows]


def _utc(seconds: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, UTC)


# --- DSNs -------------------------------------------------------------------------------------

def test_parse_dsn_chdb_relative_becomes_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert parse_dsn("chdb://./data") == (f"chdb://{tmp_path.resolve() / 'data'}", None)
    assert parse_dsn("chdb://data/sub") == (f"chdb://{tmp_path.resolve() / 'data' / 'sub'}", None)


def test_parse_dsn_chdb_absolute_and_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert parse_dsn(f"chdb://{tmp_path}/x") == (f"chdb://{tmp_path.resolve()}/x", None)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert parse_dsn("chdb://~/store") == (f"chdb://{tmp_path.resolve()}/store", None)


@pytest.mark.parametrize("dsn, connect, database", [
    ("http://user:pw@ch.example:8123/near_intents", "http://user:pw@ch.example:8123", "near_intents"),
    ("https://ch.example:8443/db1/", "https://ch.example:8443", "db1"),
    ("http://localhost:8123", "http://localhost:8123", None),
    ("http://localhost:8123/", "http://localhost:8123", None),
    ("https://u:p@h:8443/analytics?secure=true", "https://u:p@h:8443?secure=true", "analytics"),
    ("clickhouse://h:9000/db", "clickhouse://h:9000", "db"),
])
def test_parse_dsn_server(dsn: str, connect: str, database: str | None) -> None:
    assert parse_dsn(dsn) == (connect, database)


@pytest.mark.parametrize("dsn", ["postgres://h/db", "/plain/path", "ftp://x", "chdb:/one-slash"])
def test_parse_dsn_rejects_other_schemes(dsn: str) -> None:
    with pytest.raises(StoreError, match="chdb://PATH"):
        parse_dsn(dsn)


def test_server_store_unreachable_gives_a_hint() -> None:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    with pytest.raises(StoreError) as exc:
        Store(f"http://default:pw@127.0.0.1:{port}/mydb")
    assert "check that the server is up" in str(exc.value)


def test_store_database_from_dsn_path_wins(chdb_store_path: Path) -> None:
    s = Store(f"chdb://{chdb_store_path}", database="db_x")
    assert s.embedded and s.database == "db_x"
    assert s.table("blocks") == "`db_x`.`blocks`"


# --- round trips ------------------------------------------------------------------------------

def test_blocks_round_trip(store: Store) -> None:
    ns = 1_777_000_000_123_456_789
    store.insert_rows("blocks", COLUMNS["blocks"], [
        [200_000_000, "hashA", "prevA", ns, "pool.near", 80, [10, 11, 8, 7, 5]],
        [200_000_001, "hashB", "hashA", ns + 600_000_000, "", 0, []],
    ])
    a, b = _select(store, "blocks")
    assert a["block_hash"] == "hashA" and a["prev_hash"] == "prevA" and a["block_timestamp_ns"] == ns
    assert a["shard_ids"] == [10, 11, 8, 7, 5] and a["protocol_version"] == 80
    assert a["block_timestamp"] == dt.datetime(2026, 4, 24, 3, 6, 40, 123000, tzinfo=UTC)  # DEFAULT from the ns
    assert a["block_timestamp"] == _utc(1777000000.123)
    assert b["shard_ids"] == [] and b["author"] == ""


def test_receipts_round_trip_with_uint128(store: Store) -> None:
    row = {
        "block_height": 5, "block_timestamp": "1777000000.123", "block_hash": "bh", "shard_id": 11,
        "index_in_block": 1_100_042, "receipt_id": "rid", "receiver_id": "intents.near",
        "predecessor_id": "relay.near", "signer_id": "relay.near", "tx_hash": "", "method_name": "execute_intents",
        "action_kinds": ["CreateAccount", "Transfer", "FunctionCall"], "args": '{"a":"ü \\"q\\""}',
        "deposit": U128_MAX, "gas_attached": 1_000_000_000_000_000, "gas_burnt": 2**64 - 1,
        "tokens_burnt": "12194367129602600000000", "status": "failure",
        "failure": "Smart contract panicked: deadline has expired", "logs_count": 0,
    }
    store.insert_rows("receipts", COLUMNS["receipts"], [[row[c] for c in COLUMNS["receipts"]]])
    (got,) = _select(store, "receipts")
    assert got["deposit"] == 2**128 - 1
    assert got["tokens_burnt"] == 12194367129602600000000
    assert got["gas_burnt"] == 2**64 - 1
    assert got["block_timestamp"] == _utc(1777000000.123)
    expected = {**row, "deposit": 2**128 - 1, "tokens_burnt": 12194367129602600000000,
                "block_timestamp": _utc(1777000000.123)}
    assert got == expected


def test_events_round_trip(store: Store) -> None:
    data = json.dumps([{"intent_hash": "B6N", "diff": {"nep141:sol.omft.near": "-19000000"}}])
    store.insert_rows("events", COLUMNS["events"], [
        [7, "1777000000.000", 3, "rid", "tx", "intents.near", "intents.near", "dip4", "0.3.1", "intents_executed",
         4, data, "success"],
        [7, "1777000000.999", 3, "rid2", "", "intents.near", "x.near", "dip4", "", "token_diff", 0, "null", "failure"],
    ])
    rows = _select(store, "events", "receipt_id")
    assert json.loads(rows[0]["data"]) == json.loads(data)
    assert rows[0]["log_index"] == 4 and rows[0]["version"] == "0.3.1"
    assert rows[1]["block_timestamp"] == _utc(1777000000.999) and rows[1]["execution_status"] == "failure"


def test_intent_updates_round_trip(store: Store) -> None:
    row = [9, "1777000001.050", (3 << 16) + 2, "intents.near", "intents.near", "rid:1", "failed", "panic \n two lines", "a.near", "",
           ["token_diff", "mt_withdraw"], ["nep245:v2_1.omni.hot.tg:56_11111111111111111111"],
           ["-2541553358444100"], "1click-rango", "", "2026-04-28T15:25:53.999Z", "rid", "tx", "execute_intents",
           10038341571544, 7, "1777000000.450", ["a.near", "b.near"]]
    store.insert_rows("intent_updates", COLUMNS["intent_updates"], [row])
    (got,) = _select(store, "intent_updates")
    assert [got[c] for c in COLUMNS["intent_updates"]] == [9, _utc(1777000001.05), *row[2:-2], _utc(1777000000.45),
                                                           row[-1]]
    # a receipt whose transaction was never seen: no submission
    store.insert_rows("intent_updates", COLUMNS["intent_updates"], [[10, *row[1:-3], None, None, []]])
    _, nulls = store.query(f"SELECT submitted_height, submitted_at FROM {store.table('intent_updates')} "
                           "WHERE block_height = 10")
    assert nulls == [(None, None)]


def test_solver_executions_round_trip_nullable_latency(store: Store) -> None:
    cols = COLUMNS["solver_executions"]
    store.insert_rows("solver_executions", cols, [
        [1, "1777000000.000", "v.near", "s.near", "s.near", "r1", "t1", "solve_intent", ["i1"], 1, "", 10, 1.25],
        [2, "1777000000.600", "v.near", "s.near", "s.near", "r2", "", "solve_intent", [], 0, "solver returned success=false", 0,
         None],
        [3, "1777000001.200", "intents.near", "intents.near", SOLVER, "r3", TX_HASH, "execute_intents", ["a", "b", "c"], 0, "x",
         10038341571544, 0.0],
    ])
    a, b, c = _select(store, "solver_executions")
    assert a["latency_s"] == 1.25 and a["success"] == 1 and a["intent_ids"] == ["i1"]
    assert b["latency_s"] is None and b["intent_ids"] == [] and b["failure"] == "solver returned success=false"
    assert c["latency_s"] == 0.0 and c["gas_burnt"] == 10038341571544 and c["intent_ids"] == ["a", "b", "c"]


def test_dead_letters_round_trip(store: Store) -> None:
    payload = '{"receipt": {"x": "\u00fc\\u0000"}, "bytes": "\ufffd"}'
    store.insert_rows("dead_letters", COLUMNS["dead_letters"], [
        [11, -1, "", "", "block", "block.json undecodable: x", "{not json", 0],
        [11, 3, "rid", "intents.near", "receipt", "receipt undecodable: y", payload, 1],
    ])
    a, b = _select(store, "dead_letters", "seq")
    assert a["shard_id"] == -1 and a["payload"] == "{not json"
    assert b["payload"] == payload and b["kind"] == "receipt" and b["seq"] == 1


def test_insert_nothing_is_a_no_op(store: Store) -> None:
    store.insert_rows("blocks", COLUMNS["blocks"], [])
    assert store.scalar(f"SELECT count() FROM {store.table('blocks')}") == 0


def test_query_scalar_and_command(store: Store) -> None:
    cols, rows = store.query("SELECT {a:UInt8} AS x, {s:String} AS y", {"a": 3, "s": "it's"})
    assert cols == ["x", "y"] and rows == [(3, "it's")]
    assert store.scalar("SELECT 1 WHERE 0") is None
    store.command(f"CREATE TABLE {store.table('scratch')} (x UInt8) ENGINE = Memory")
    assert store.table_exists("scratch")


def test_real_decoded_rows_fit_the_schema(store: Store, tmp_path: Path) -> None:
    """Every row the decoder produces for the real fixture chain inserts and reads back intact."""
    heights = build_lake(tmp_path / "lake", copies=2)
    d = BlockDecoder(DecoderConfig([ContractSpec.parse("intents.near:verifier"), ContractSpec.parse("token.sweat"),
                                    ContractSpec.parse("aurora")], resolve_all_tx=True))
    rows = Rows()
    for h in heights:
        rows.extend(d.decode(raw_block(tmp_path / "lake" / f"{h:012d}")).rows)
    # a dead letter too
    rows.add("dead_letters", [heights[0], 2, "r", "intents.near", "log", "EVENT_JSON payload is not JSON", "EVENT_JSON:{", 0])
    counts = rows.counts()
    assert counts["receipts"] >= 10 and counts["events"] >= 10 and counts["intent_updates"] == 2
    for table in DATA_TABLES:
        store.insert_rows(table, COLUMNS[table], rows.tables[table])
    for table in DATA_TABLES:
        assert store.scalar(f"SELECT count() FROM {store.table(table)}") == len(rows.tables[table]), table
    main = store.query(f"SELECT tx_hash, status, deposit, gas_attached FROM {store.table('receipts')} "
                       "WHERE receipt_id = {r:String}", {"r": MAIN_RECEIPT_ID})[1]
    assert main == [(TX_HASH, "success", 0, 300_000_000_000_000)]
    refunds = store.query(f"SELECT sum(deposit) FROM {store.table('receipts')} WHERE method_name = '' "
                          "AND receiver_id = 'intents.near'")[1][0][0]
    assert refunds == 388526424972700000000 + 12194367129602600000000 + 13914939838970500000000 + 784980458471800000000
    intents = store.query(f"SELECT intent_id, status, solver_id FROM {store.table('intents')} ORDER BY intent_id")[1]
    assert [(s, v) for _, s, v in intents] == [("executed", SOLVER), ("executed", SOLVER)]


def test_two_stores_one_path_are_isolated_by_database(chdb_store_path: Path) -> None:
    from indexer.store import migrations

    a = Store(f"chdb://{chdb_store_path}", database=f"t_{uuid.uuid4().hex[:12]}")
    b = Store(f"chdb://{chdb_store_path}", database=f"t_{uuid.uuid4().hex[:12]}")
    migrations.migrate(a)
    migrations.migrate(b)
    a.insert_rows("blocks", COLUMNS["blocks"], [[1, "h", "p", 1, "", 0, []]])
    assert a.scalar(f"SELECT count() FROM {a.table('blocks')}") == 1
    assert b.scalar(f"SELECT count() FROM {b.table('blocks')}") == 0


def test_reads_of_two_threads_run_at_once(store: Store) -> None:
    """A read does not wait for another thread's read: the second thread sees the first one's
    query running. (With one shared connection it could only look once the first had finished.)"""
    import threading

    marker = f"slow_read_{uuid.uuid4().hex[:8]}"
    slow = threading.Thread(target=store.query, args=(f"SELECT sleepEachRow(0.1) AS {marker} FROM numbers(20)",))
    slow.start()
    seen = 0
    while slow.is_alive() and not seen:
        seen = int(store.scalar(f"SELECT count() FROM system.processes WHERE query LIKE '%AS {marker} FROM%' "
                                "AND query NOT LIKE '%system.processes%'"))
    slow.join()
    assert seen == 1


def test_read_connections_are_bounded_and_closed(chdb_store_path: Path) -> None:
    import threading

    s = Store(f"chdb://{chdb_store_path}", database=f"t_{uuid.uuid4().hex[:12]}", readers=2)
    threads = [threading.Thread(target=s.query, args=("SELECT sleepEachRow(0.05) FROM numbers(4)",))
               for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert 1 <= len(s._readers) <= 2
    s.close()
    assert s._readers == [] and s._idle_readers == []


def test_the_server_config_carries_the_embedded_scheduling_options() -> None:
    import xml.etree.ElementTree as ET

    from indexer.store.client import CHDB_OPTIONS

    root = ET.parse(Path(__file__).parents[1] / "deploy/clickhouse/config.d/mutations.xml").getroot()
    assert {e.tag: e.text for e in root} == CHDB_OPTIONS
    compose = (Path(__file__).parents[1] / "docker-compose.yml").read_text()
    assert "./deploy/clickhouse/config.d/mutations.xml:/etc/clickhouse-server/config.d/mutations.xml:ro" in compose
