"""The cluster layout (indexer.store.cluster): every migration rendered ON CLUSTER, parsed by ClickHouse.

No cluster runs here, so the rendered DDL is checked by ClickHouse's own parser (``formatQuery`` in
chDB) and by its structure; the writer's statements in cluster mode are captured from a Store
with a cluster (run as one node would, so the batch protocol still ends exactly right) and parsed too.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from indexer.decode.rows import DATA_TABLES
from indexer.store import migrations
from indexer.store.client import Store, StoreError
from indexer.store.cluster import (
    GLOBAL_PATH, SHARD_PATH, SHARDING_KEY, ClusterLayout, ClusterRenderError,
)
from lakebuild import fixture_lake
from storedriver import Decoded, Driver, clean_tables, duplicates, dump, new_store, read_lake

CLUSTER = "prod_cluster"
DB = "near_intents"
FILES = sorted(Path(migrations.DEFAULT_DIR).glob("*.sql"))
COORDINATION = ("streams", "commits", "schema_migrations")


def _rendered() -> list[tuple[str, list[str]]]:
    return [(m.path.name, st) for m, st in migrations.rendered(migrations.discover(), DB, CLUSTER)]


def _parse(store: Store, sql: str) -> str:
    """ClickHouse's canonical text of ``sql``; raises when ClickHouse cannot parse it."""
    return store.scalar("SELECT formatQuery({q:String})", {"q": sql})


def _flat(sql: str) -> str:
    return " ".join(sql.split())


def test_the_glob_sees_every_migration_file() -> None:
    assert FILES and [p.name for p in FILES] == [m.path.name for m in migrations.discover()]


@pytest.mark.parametrize("name", [p.name for p in FILES])
def test_every_rendered_statement_of_every_migration_parses(store: Store, name: str) -> None:
    statements = dict(_rendered())[name]
    assert statements
    for sql in statements:
        canonical = _parse(store, sql)
        if not sql.startswith("INSERT"):
            assert f"ON CLUSTER {CLUSTER}" in canonical, sql[:200]


def test_every_mergetree_becomes_replicated_with_macros_and_its_params(store: Store) -> None:
    creates = [_flat(_parse(store, s)) for _, st in _rendered() for s in st if s.startswith("CREATE TABLE")]
    engines = [re.search(r"ENGINE = (\w+)\((.*?)\)(?: PARTITION| ORDER| PRIMARY|$)", c) for c in creates]
    assert all(engines), creates
    for create, m in zip(creates, engines):
        assert m is not None
        name, args = m.group(1), m.group(2)
        assert not re.fullmatch(r"(?!Replicated)\w*MergeTree", name), create
        if name == "Distributed":
            continue
        table = re.match(r"CREATE TABLE (?:IF NOT EXISTS )?\w+\.(\w+)", create).group(1)  # type: ignore[union-attr]
        path = SHARD_PATH if table.endswith("_local") else GLOBAL_PATH
        assert args.startswith(f"'{path}', '{{replica}}'"), create
    streams = next(c for c in creates if ".streams ON CLUSTER" in c)
    assert f"ReplicatedReplacingMergeTree('{GLOBAL_PATH}', '{{replica}}', version)" in streams


def test_data_tables_are_distributed_over_local_shards_coordination_tables_are_not() -> None:
    layout = ClusterLayout(CLUSTER)
    statements = [s for m in migrations.discover() for s in layout.render_all(m.statements(DB))]
    assert {t for _, t in layout.sharded} == set(DATA_TABLES)
    for table in DATA_TABLES:
        create = next(s for s in reversed(statements)
                      if re.match(rf"CREATE TABLE (IF NOT EXISTS )?`{DB}`.`{table}` ON CLUSTER", s))
        assert create.endswith(f"ENGINE = Distributed('{CLUSTER}', '{DB}', '{table}_local', {SHARDING_KEY})")
    log = ClusterLayout(CLUSTER).render_all(migrations._log_statements(DB))
    for sql in log + statements:
        for table in COORDINATION:
            assert f"`{table}_local`" not in sql
    assert any("`schema_migrations` ON CLUSTER" in s and "ReplicatedMergeTree" in s for s in log)


def test_renames_keep_a_distributed_table_over_the_renamed_local_table(store: Store) -> None:
    layout = ClusterLayout(CLUSTER)
    layout.render(f"CREATE TABLE `{DB}`.t_v2 (block_height UInt64) ENGINE = MergeTree ORDER BY block_height")
    layout.render(f"CREATE TABLE `{DB}`.t (block_height UInt64) ENGINE = MergeTree ORDER BY block_height")
    out = layout.render(f"RENAME TABLE `{DB}`.t TO `{DB}`.t_v1, `{DB}`.t_v2 TO `{DB}`.t")
    assert out[0] == (f"RENAME TABLE `{DB}`.`t_local` TO `{DB}`.`t_v1_local`, `{DB}`.`t_v2_local` TO `{DB}`.`t_local`"
                      f" ON CLUSTER `{CLUSTER}`")
    assert out[-1].endswith(f"Distributed('{CLUSTER}', '{DB}', 't_local', {SHARDING_KEY})")
    assert {t for _, t in layout.sharded} == {"t", "t_v1"}
    dropped = layout.render(f"DROP TABLE `{DB}`.t_v1")
    assert dropped[1] == f"DROP TABLE `{DB}`.`t_v1_local` ON CLUSTER `{CLUSTER}`"
    for sql in out + dropped:
        _parse(store, sql)


def test_statements_a_new_migration_may_hold(store: Store) -> None:
    """Kinds the present files do not use yet, so a new migration with them renders right."""
    layout = ClusterLayout(CLUSTER)
    layout.render_all(f"CREATE TABLE `{DB}`.{t} (block_height UInt64, n UInt64) ENGINE = SummingMergeTree((n)) "
                      "ORDER BY block_height" for t in ("src", "dst"))
    cases = {
        f"CREATE TABLE `{DB}`.hourly (hour DateTime, n AggregateFunction(count)) ENGINE = AggregatingMergeTree "
        "ORDER BY hour": [f"`{DB}`.hourly ON CLUSTER", f"ReplicatedAggregatingMergeTree('{GLOBAL_PATH}'"],
        f"CREATE MATERIALIZED VIEW `{DB}`.mv TO `{DB}`.dst AS SELECT block_height, n FROM `{DB}`.src":
            [f"TO `{DB}`.`dst_local` AS SELECT block_height, n FROM `{DB}`.`src_local`"],
        f"CREATE MATERIALIZED VIEW IF NOT EXISTS `{DB}`.mv2 TO `{DB}`.hourly AS SELECT toStartOfHour(now()) AS hour, "
        f"countState() AS n FROM `{DB}`.src": [f"TO `{DB}`.hourly AS", f"FROM `{DB}`.`src_local`"],
        f"CREATE MATERIALIZED VIEW `{DB}`.r REFRESH EVERY 1 HOUR TO `{DB}`.hourly AS SELECT now() AS hour, "
        f"countState() AS n FROM `{DB}`.src": [f"FROM `{DB}`.src"],
        f"ALTER TABLE `{DB}`.src DELETE WHERE block_height = 1": [f"`{DB}`.`src_local` ON CLUSTER"],
        f"ALTER TABLE `{DB}`.src ADD COLUMN x String, ADD INDEX i x TYPE bloom_filter": [
            f"ALTER TABLE `{DB}`.src ON CLUSTER `{CLUSTER}` ADD COLUMN x String"],
        f"TRUNCATE TABLE `{DB}`.src": [f"TRUNCATE TABLE `{DB}`.`src_local` ON CLUSTER"],
        f"OPTIMIZE TABLE `{DB}`.src FINAL": [f"`{DB}`.`src_local` ON CLUSTER `{CLUSTER}` FINAL"],
        f"EXCHANGE TABLES `{DB}`.src AND `{DB}`.dst": [f"`{DB}`.`src_local` AND `{DB}`.`dst_local` ON CLUSTER"],
        f"CREATE TABLE `{DB}`.copy AS `{DB}`.src ENGINE = ReplacingMergeTree ORDER BY block_height": [
            f"`{DB}`.`copy_local` ON CLUSTER", "Distributed("],
    }
    for sql, wanted in cases.items():
        out = layout.render(sql)
        for part in wanted:
            assert any(part in o for o in out), (part, out)
        for o in out:
            assert f"ON CLUSTER {CLUSTER}" in _parse(store, o)
    alter = layout.render(f"ALTER TABLE `{DB}`.src ADD COLUMN y String, ADD INDEX j y TYPE bloom_filter")
    assert "INDEX" not in alter[1]  # a Distributed table has no indexes


def test_a_statement_it_does_not_know_is_refused() -> None:
    with pytest.raises(ClusterRenderError, match="extend indexer/store/cluster.py"):
        ClusterLayout(CLUSTER).render("SYSTEM RELOAD DICTIONARIES")
    with pytest.raises(ClusterRenderError, match="no MergeTree"):
        ClusterLayout(CLUSTER).render(f"CREATE TABLE `{DB}`.m (block_height UInt64) ENGINE = Memory")


def test_the_embedded_store_refuses_a_cluster(chdb_store_path: Path) -> None:
    with pytest.raises(StoreError, match="needs a ClickHouse server"):
        Store(f"chdb://{chdb_store_path}", DB, cluster=CLUSTER)


# --- the writer's statements in cluster mode ------------------------------------------------------


class Recording:
    """A client in front of the embedded one: records what a Store with a cluster sends, then runs
    it as a single node would (no ON CLUSTER, no _local suffix), so the protocol plays out for real."""

    def __init__(self, real: Any, cluster: str):
        self.real, self.on = real, f" ON CLUSTER `{cluster}`"
        self.sent: list[tuple[str, str, dict[str, Any] | None]] = []

    def _node(self, sql: str) -> str:
        return sql.replace(self.on, "").replace("_local`", "`")

    def command(self, sql: str, settings: dict[str, Any] | None = None) -> Any:
        self.sent.append(("command", sql, settings))
        return self.real.command(self._node(sql), settings=settings)

    def query(self, sql: str, parameters: dict[str, Any] | None = None, settings: dict[str, Any] | None = None) -> Any:
        self.sent.append(("query", sql, settings))
        return self.real.query(self._node(sql), parameters=parameters, settings=settings)

    def raw_insert(self, table: str, columns: list[str], data: bytes, fmt: str, settings: dict[str, Any] | None) -> Any:
        self.sent.append(("insert", f"INSERT INTO {table} ({', '.join(columns)}) FORMAT {fmt}", settings))
        return self.real.raw_insert(table, columns, data, fmt=fmt, settings=settings)

    def close(self) -> None:
        self.real.close()


@pytest.fixture(scope="module")
def decoded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Decoded, list[int]]:
    root = tmp_path_factory.mktemp("lake")
    heights = fixture_lake(root, copies=2)
    return Decoded(read_lake(root)), heights


def test_the_writer_deletes_on_local_shards_and_inserts_through_distributed_tables(
        decoded: tuple[Decoded, list[int]], chdb_store_path: Path) -> None:
    store = new_store(chdb_store_path)
    store.cluster = CLUSTER  # the embedded store refuses a cluster; the recorder plays the node
    recording = Recording(store.client, CLUSTER)
    store.client = recording
    d = Driver(store, *decoded)
    h = d.heights
    s = d.stream("backfill:a", ("intents.near:verifier", "token.sweat"), h[0], h[-1])
    s.step(3)
    assert s.crash_at_insert(4, 4)  # some tables written, no commit: the resume deletes them first
    s.finish(3)
    store.cluster = None
    store.client = recording.real

    deletes = [sql for kind, sql, _ in recording.sent if kind == "command" and sql.startswith("DELETE")]
    assert deletes
    for sql in deletes:
        assert re.match(rf"DELETE FROM `{store.database}`\.`\w+_local` ON CLUSTER `{CLUSTER}` WHERE ", sql), sql
    inserts = [(sql, st) for kind, sql, st in recording.sent if kind == "insert"]
    assert {re.search(r"`\.`(\w+)`", sql).group(1) for sql, _ in inserts} >= {"receipts", "events", "streams"}  # type: ignore[union-attr]
    for sql, st in inserts:
        assert "_local" not in sql and st is not None and st["insert_distributed_sync"] == 1, (sql, st)
    for kind, sql, _ in recording.sent:
        if kind == "query":
            assert "_local" not in sql, sql  # reads go through the Distributed tables
        _parse(store, sql)
    assert duplicates(store) == {t: 0 for t in duplicates(store)}
    assert dump(store) == clean_tables(chdb_store_path, d.expected())


def test_cli_refuses_a_cluster_on_the_embedded_store(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from indexer.cli import main

    result = CliRunner().invoke(main, ["migrate", "--store", f"chdb://{tmp_path}", "--cluster", CLUSTER])
    assert result.exit_code == 2
    assert "needs a ClickHouse server" in result.output
    result = CliRunner().invoke(main, ["status", "--store", f"chdb://{tmp_path}"], env={"INDEXER_CLUSTER": CLUSTER})
    assert result.exit_code == 2 and "needs a ClickHouse server" in result.output


def test_every_delete_of_a_data_table_goes_through_delete_target() -> None:
    """A DELETE sent to a Distributed table fails on a cluster: data tables are deleted from on their
    shards' local tables, which ``Store.delete_target`` names."""
    package = Path(migrations.__file__).resolve().parents[1]
    offenders = [f"{p.relative_to(package)}:{n}" for p in package.rglob("*.py")
                 for n, line in enumerate(p.read_text().splitlines(), 1)
                 if re.search(r"DELETE FROM \{store\.table\(", line)]
    assert offenders == []
    store = Store.__new__(Store)
    store.database, store.cluster = DB, CLUSTER
    assert store.delete_target("receipts") == f"`{DB}`.`receipts_local` ON CLUSTER `{CLUSTER}`"
    store.cluster = None
    assert store.delete_target("receipts") == f"`{DB}`.`receipts`"


# --- the rendered DDL, replayed on one node ------------------------------------------------------


def _one_node(sql: str, store: Store) -> str:
    """``sql`` as one node runs it: no ON CLUSTER, plain engines, a Merge table standing in for each
    Distributed one (same columns, reads its local table), INSERTs into the local table."""
    sql = sql.replace(f" ON CLUSTER `{CLUSTER}`", "")
    sql = re.sub(r"ENGINE = Replicated(\w*MergeTree)\('[^']*', '\{replica\}'(?:, )?", r"ENGINE = \1(", sql)
    sql = re.sub(r"ENGINE = Distributed\('[^']*', '([^']*)', '([^']*)', [^\n]*\)$", r"ENGINE = Merge('\1', '^\2$')", sql)
    insert = re.match(r"INSERT INTO (`[^`]+`)\.`?(\w+)`?", sql)
    if insert and store.table_exists(insert.group(2) + "_local"):
        sql = f"INSERT INTO {insert.group(1)}.`{insert.group(2)}_local`" + sql[insert.end():]
    return sql


def _schema(store: Store) -> dict[str, tuple]:  # type: ignore[type-arg]
    _, tables = store.query("SELECT name, engine, sorting_key, partition_key FROM system.tables "
                            "WHERE database = {db:String}", {"db": store.database})
    _, cols = store.query("SELECT table, groupArray((name, type, default_expression)) FROM "
                          "(SELECT * FROM system.columns WHERE database = {db:String} ORDER BY table, position) "
                          "GROUP BY table", {"db": store.database})
    _, idx = store.query("SELECT table, groupArraySorted(100)((name, type_full, expr)) FROM system.data_skipping_indices "
                         "WHERE database = {db:String} GROUP BY table", {"db": store.database})
    columns, indices = dict(cols), dict(idx)
    return {name: (engine, key, part, columns.get(name), indices.get(name)) for name, engine, key, part in tables}


def test_the_rendered_migrations_build_the_plain_schema_on_every_shard(chdb_store_path: Path) -> None:
    """Replayed as one node would (``_one_node``), the cluster DDL of every migration leaves each
    data table's <t>_local exactly like the plain table (columns, keys, indexes), a stand-in for
    its Distributed table with the same columns, and every coordination table and view as plain."""
    import uuid

    plain = Store(f"chdb://{chdb_store_path}", database=f"p_{uuid.uuid4().hex[:10]}")
    migrations.migrate(plain)
    node = Store.__new__(Store)
    node.__dict__.update(plain.__dict__)
    node.database = f"c_{uuid.uuid4().hex[:10]}"
    for _, statements in migrations.rendered(migrations.discover(), node.database, CLUSTER):
        for sql in statements:
            node.command(_one_node(sql, node))
    want, got = _schema(plain), _schema(node)
    want.pop("schema_migrations", None)
    got.pop("schema_migrations", None)
    for table in DATA_TABLES:
        engine, *rest = want.pop(table)
        assert got.pop(f"{table}_local") == (engine, *rest), table
        stand_in = got.pop(table)
        assert stand_in[0] == "Merge" and stand_in[3] == rest[2], table  # the same columns
    assert got == want  # coordination tables and views, as plain
