"""indexer.store.migrations against real embedded chDB (one session path, one database per test)."""

from __future__ import annotations

import datetime as dt
import hashlib
import shutil
import uuid
from pathlib import Path

import pytest

from indexer.decode.rows import COLUMNS
from indexer.store import migrations
from indexer.store.client import Store
from indexer.store.migrations import DEFAULT_DIR, Migration, MigrationError

TABLES = {"blocks", "receipts", "events", "intent_updates", "solver_executions", "dead_letters", "streams", "commits",
          "schema_migrations", "intent_lookups", "intent_status_counts", "rollup_cursors",
          *(f"{n}_{g}" for n in ("solver_stats", "intent_stats", "receipt_stats", "block_stats", "token_flows",
                                  "solver_costs", "bridge_flows") for g in ("1m", "1h", "1d"))}
VIEWS = {"intents"}


@pytest.fixture
def fresh(chdb_store_path: Path) -> Store:
    """An empty (unmigrated) database."""
    return Store(f"chdb://{chdb_store_path}", database=f"t_{uuid.uuid4().hex[:12]}")


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A copy of the real migrations folder that tests may change."""
    dst = tmp_path / "migrations"
    shutil.copytree(DEFAULT_DIR, dst)
    return dst


def _applied_rows(store: Store) -> list[tuple]:
    _, rows = store.query(f"SELECT version, name, checksum FROM {store.table('schema_migrations')} ORDER BY version")
    return rows


def test_migrate_applies_all_and_records_versions(fresh: Store) -> None:
    files = sorted(p for p in DEFAULT_DIR.iterdir() if p.suffix == ".sql")
    done = migrations.migrate(fresh)
    assert [m.path for m in done] == files
    assert [m.version for m in done] == [int(f.name[:4]) for f in files]
    assert _applied_rows(fresh) == [
        (m.version, m.name, hashlib.sha256(m.path.read_text().encode()).hexdigest()) for m in done]
    assert done[0].name == "initial"
    assert migrations.applied(fresh) == {m.version: (m.name, m.checksum) for m in done}


def test_migrate_twice_applies_nothing(fresh: Store) -> None:
    assert migrations.migrate(fresh)
    assert migrations.migrate(fresh) == []
    assert migrations.pending(fresh) == []
    assert len(_applied_rows(fresh)) == len(migrations.discover())


def test_all_tables_and_views_exist(store: Store) -> None:
    _, rows = store.query("SELECT name, engine FROM system.tables WHERE database = {db:String}", {"db": store.database})
    engines = dict(rows)
    assert set(engines) == TABLES | VIEWS
    assert {n for n, e in engines.items() if e == "View"} == VIEWS
    for name in TABLES | VIEWS:
        assert store.table_exists(name)
    assert not store.table_exists("nope")
    # every column the decoder writes exists, in a table of that name
    for table, cols in COLUMNS.items():
        _, rows = store.query("SELECT name FROM system.columns WHERE database = {db:String} AND table = {t:String}",
                              {"db": store.database, "t": table})
        assert set(cols) <= {r[0] for r in rows}, table


def test_edited_applied_migration_is_refused(fresh: Store, folder: Path) -> None:
    migrations.migrate(fresh, folder)
    path = folder / "0001_initial.sql"
    path.write_text(path.read_text() + "\n-- a harmless looking edit\n")
    with pytest.raises(MigrationError) as exc:
        migrations.migrate(fresh, folder)
    msg = str(exc.value)
    assert "0001_initial.sql" in msg and fresh.database in msg
    assert "restore the file" in msg and "new migration file with the next number" in msg
    with pytest.raises(MigrationError):
        migrations.pending(fresh, folder)


def test_new_migration_file_applies_only_itself(fresh: Store, folder: Path) -> None:
    migrations.migrate(fresh, folder)
    (folder / "0099_extra.sql").write_text(
        "-- add a table\nCREATE TABLE IF NOT EXISTS ${database}.extra (x UInt8, s String DEFAULT 'a;b')\n"
        "ENGINE = MergeTree ORDER BY x;\n\nINSERT INTO ${database}.extra (x) VALUES (7);\n")
    (folder / "README.md").write_text("not a migration")
    (folder / "2_bad_name.sql").write_text("SELECT 1")
    done = migrations.migrate(fresh, folder)
    assert [(m.version, m.name) for m in done] == [(99, "extra")]
    assert fresh.query(f"SELECT x, s FROM {fresh.table('extra')}")[1] == [(7, "a;b")]
    assert [r[0] for r in _applied_rows(fresh)] == [*(m.version for m in migrations.discover()), 99]


def test_database_placeholder_substitution(chdb_store_path: Path) -> None:
    name = f"t-dash.{uuid.uuid4().hex[:8]}"  # needs quoting
    s = Store(f"chdb://{chdb_store_path}", database=name)
    migrations.migrate(s)
    assert s.table_exists("intent_updates") and s.table_exists("intents")
    m = migrations.discover()[0]
    stmts = m.statements("x_db")
    assert not any("${database}" in st for st in stmts)
    assert stmts[0] == "CREATE DATABASE IF NOT EXISTS `x_db`"
    assert any(st.startswith("CREATE TABLE IF NOT EXISTS `x_db`.blocks") for st in stmts)
    assert not any(st.lstrip().startswith("--") for st in stmts)
    assert all(not st.endswith(";") for st in stmts)


def test_statement_splitting() -> None:
    m = Migration(9, "t", Path("0009_t.sql"), "-- c1\nSELECT ';' AS x;\n  -- c2\nSELECT 2;SELECT 3\n;\n\n")
    assert m.statements("d") == ["SELECT ';' AS x", "SELECT 2;SELECT 3"]


def test_discover_errors(tmp_path: Path) -> None:
    with pytest.raises(MigrationError, match="not found"):
        migrations.discover(tmp_path / "nope")
    (tmp_path / "0001_a.sql").write_text("SELECT 1")
    (tmp_path / "0001_b.sql").write_text("SELECT 2")
    with pytest.raises(MigrationError, match="share a number"):
        migrations.discover(tmp_path)


# --- views ------------------------------------------------------------------------------------

def _aware(v: object) -> object:
    """DateTime values as aware UTC datetimes (the client may give naive UTC ones)."""
    if isinstance(v, dt.datetime) and v.tzinfo is None:
        return v.replace(tzinfo=dt.timezone.utc)
    return v


def _update(height: int, idx: int, intent: str, status: str, ts: str, **kw) -> list:
    row = {"block_height": height, "block_timestamp": ts, "update_index": idx, "contract_id": "verifier.near", "receiver_id": "verifier.near",
           "intent_id": intent, "status": status, "failure": "", "signer_id": "", "solver_id": "", "kinds": [],
           "tokens": [], "amounts": [], "referral": "", "action": "", "deadline": "", "receipt_id": f"r{height}",
           "tx_hash": "", "method_name": "", "gas_burnt": height * 10, "submitted_height": None,
           "submitted_at": None, "accounts": []}
    row.update(kw)
    return [row[c] for c in COLUMNS["intent_updates"]]


def test_intents_view_latest_status_wins_descriptive_fields_kept(store: Store) -> None:
    rows = [
        _update(100, 0, "i1", "pending", "1777000000.000", signer_id="alice.near", solver_id="s.near", action="swap",
                tokens=["wrap.near", "usdt.near"], amounts=["1000", "3"], deadline="123", tx_hash="TXA",
                kinds=["swap"], referral="fe"),
        _update(100, 1, "i1", "verified", "1777000000.000", tx_hash="TXA"),
        _update(102, 0, "i1", "executing", "1777000001.200", solver_id="s.near", signer_id="alice.near",
                tx_hash="TXB"),
        _update(103, 5, "i1", "completed", "1777000001.800"),
        # the same block, a lower update index: must lose to index 5
        _update(103, 4, "i1", "failed", "1777000001.800", failure="nope"),
        _update(200, 0, "i2", "pending", "1777000060.000", signer_id="bob.near"),
        _update(201, 0, "i2", "failed", "1777000060.600", failure="execution failed at solver"),
        _update(300, 0, "i3", "executed", "1777000120.000", signer_id="carol.near", tx_hash="TXC"),
    ]
    store.insert_rows("intent_updates", COLUMNS["intent_updates"], rows[::-1])  # insertion order is irrelevant
    cols, got = store.query(f"SELECT * FROM {store.table('intents')} ORDER BY intent_id")
    view = {r[cols.index("intent_id")]: {c: _aware(v) for c, v in zip(cols, r)} for r in got}
    i1, i2, i3 = view["i1"], view["i2"], view["i3"]
    assert i1["status"] == "completed" and i1["failure"] == ""
    assert (i1["signer_id"], i1["solver_id"], i1["action"], i1["deadline"], i1["referral"]) == (
        "alice.near", "s.near", "swap", "123", "fe")
    assert i1["tokens"] == ["wrap.near", "usdt.near"] and i1["amounts"] == ["1000", "3"] and i1["kinds"] == ["swap"]
    assert i1["tx_hash"] == "TXA"  # the first transaction that touched it
    assert i1["receipt_id"] == "r103" and i1["block_height"] == 103
    assert i1["first_seen"].timestamp() == pytest.approx(1777000000.0)
    assert i1["last_seen"].timestamp() == pytest.approx(1777000001.8)
    assert i1["verified_at"].timestamp() == pytest.approx(1777000000.0)
    assert i1["completed_at"].timestamp() == pytest.approx(1777000001.8)
    assert i1["latency_s"] == pytest.approx(1.8)
    assert i2["status"] == "failed" and i2["failure"] == "execution failed at solver"
    assert i2["signer_id"] == "bob.near" and i2["completed_at"] is None and i2["latency_s"] is None
    assert i3["status"] == "executed" and i3["completed_at"] is not None
    assert i3["latency_s"] is None  # never verified
    # gas of each receipt that moved the intent, once per receipt (r100 carried two updates)
    assert (i1["gas_burnt"], i2["gas_burnt"], i3["gas_burnt"]) == (1000 + 1020 + 1030, 2000 + 2010, 3000)


def test_intents_view_lifecycle_executed_is_final_attempts_and_times(store: Store) -> None:
    sub = {"submitted_height": 99, "submitted_at": "1776999999.400"}
    rows = [
        # executed, then replayed twice by later transactions: "nonce was already used"
        _update(100, 0, "r", "executed", "1777000000.000", signer_id="a.near", tx_hash="T1", **sub),
        _update(150, 0, "r", "failed", "1777000030.000", failure="nonce was already used", tx_hash="T2",
                submitted_height=149, submitted_at="1777000029.400"),
        _update(160, 0, "r", "failed", "1777000036.000", failure="nonce was already used"),
        # failed, then retried and executed
        _update(200, 0, "f", "failed", "1777000060.000", failure="insufficient balance", **sub),
        _update(210, 0, "f", "executed", "1777000066.000"),
        # failed only, transaction never seen
        _update(300, 0, "x", "failed", "1777000120.000", failure="deadline has expired"),
    ]
    store.insert_rows("intent_updates", COLUMNS["intent_updates"], rows)
    cols, got = store.query(f"SELECT * FROM {store.table('intents')} ORDER BY intent_id")
    view = {r[cols.index("intent_id")]: {c: _aware(v) for c, v in zip(cols, r)} for r in got}
    r, f, x = view["r"], view["f"], view["x"]
    assert (r["status"], r["failure"], r["attempts"], r["receipt_id"]) == ("executed", "", 3, "r100")
    assert r["executed_at"].timestamp() == pytest.approx(1777000000.0) == r["status_at"].timestamp()
    assert r["first_failed_at"].timestamp() == pytest.approx(1777000030.0)
    assert (r["submitted_height"], r["submitted_at"].timestamp()) == (99, pytest.approx(1776999999.4))
    assert r["latency_s"] == pytest.approx(0.6)  # submission -> execution
    assert (f["status"], f["failure"], f["attempts"], f["receipt_id"]) == ("executed", "", 2, "r210")
    assert f["first_failed_at"].timestamp() == pytest.approx(1777000060.0)
    assert f["latency_s"] == pytest.approx(66.6)
    assert (x["status"], x["failure"], x["attempts"]) == ("failed", "deadline has expired", 1)
    assert x["executed_at"] is None and x["completed_at"] is None and x["latency_s"] is None
    assert x["submitted_at"] is None and x["submitted_height"] is None
    assert r["verified_at"] is None and x["verified_at"] is None  # never verified: NULL, not 1970


def test_store_protocol_migration_keeps_rows_and_turns_checkpoints_into_streams(fresh: Store, folder: Path) -> None:
    """A store indexed before the store protocol: its rows stay and its progress is not redone."""
    for later in sorted(folder.glob("000[2-9]_*.sql")):
        later.rename(later.with_suffix(".later"))
    migrations.migrate(fresh, folder)
    cols = ("stream", "start_height", "end_height", "height", "block_hash", "updated_at")
    fresh.insert_rows("checkpoint_log", cols, [
        ["live", 100, None, 150, "h150", "1777000000.000001"],
        ["live", 100, None, 120, "h120", "1777000000.000003"],  # newer row, lower height: it wins
        ["backfill:1-50", 1, 50, 50, "h50", "1777000000.000000"],
    ])
    old_update = [9, "1777000001.050", 7, "intents.near", "i1", "executed", "", "a.near", "", [], [], [], "", "",
                  "", "rid", "tx", "execute_intents", 5]
    later_columns = ("receiver_id", "submitted_height", "submitted_at", "accounts")
    fresh.insert_rows("intent_updates", tuple(c for c in COLUMNS["intent_updates"] if c not in later_columns),
                      [old_update])
    fresh.insert_rows("dead_letters", COLUMNS["dead_letters"][:8], [[9, -1, "", "", "chain_break", "r", "{}", 0]])
    for later in sorted(folder.glob("*.later")):
        later.rename(later.with_suffix(".sql"))
    migrations.migrate(fresh, folder)
    _, rows = fresh.query(f"SELECT stream, owners, start_height, end_height, height, block_hash, written "
                          f"FROM {fresh.table('streams')} FINAL ORDER BY stream")
    assert rows == [("backfill:1-50", ["*"], 1, 50, 50, "h50", [("*", 1, 50)]),
                    ("live", ["*"], 100, None, 120, "h120", [("*", 100, 120)])]
    _, ups = fresh.query(f"SELECT update_index, contract_id, receiver_id, intent_id FROM {fresh.table('intent_updates')}")
    assert ups == [(7, "intents.near", "intents.near", "i1")]
    assert fresh.scalar(f"SELECT count() FROM {fresh.table('dead_letters')}") == 1
    assert not fresh.table_exists("checkpoint_log") and not fresh.table_exists("checkpoints")


def test_operator_commands_migration_keeps_dead_letters_and_commits(fresh: Store, folder: Path) -> None:
    """0003: dead letters written before it have no receipt context; commits before it are batches."""
    for later in sorted(folder.glob("000[3-9]_*.sql")):
        later.rename(later.with_suffix(".later"))
    migrations.migrate(fresh, folder)
    fresh.insert_rows("dead_letters", COLUMNS["dead_letters"][:8], [[9, 0, "r1", "intents.near", "args", "x", "{}", 0]])
    fresh.insert_rows("commits", ("stream", "seq", "token", "owners", "low_height", "high_height", "min_block_time",
                                  "max_block_time", "rows", "reindex"),
                      [["live", 1, "t", ["intents.near"], 1, 9, "1777000000.000", "1777000001.000", {}, 0]])
    for later in sorted(folder.glob("*.later")):
        later.rename(later.with_suffix(".sql"))
    migrations.migrate(fresh, folder)
    _, rows = fresh.query(f"SELECT kind, log_index, context, decoder_version, retry_token FROM {fresh.table('dead_letters')}")
    assert rows == [("args", -1, "", 0, "")]
    assert fresh.scalar(f"SELECT kind FROM {fresh.table('commits')}") == "batch"
