"""Drive store writers batch by batch on real fixture blocks, crash them at any insert, and
compare the tables with one clean run: for the store-protocol tests.

All streams share one embedded store in this process, as several processes share a server.
A crash abandons a writer mid-batch; its lease is then expired by hand (a process that died
stops renewing), so that other streams and its own resumption treat it as gone.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from indexer.config import Settings
from indexer.decode.block import BlockDecoder, DecodedBlock, DecoderConfig
from indexer.decode.rows import COLUMNS, Rows
from indexer.pipeline import stream_spec
from indexer.sources.base import RawBlock
from indexer.store import migrations, streams
from indexer.store.client import Store
from indexer.store.ownership import merge
from indexer.store.writer import Batch, StreamSpec, Writer

# The sort key of each table: a second row with the same key is a duplicate a merge would hide.
KEYS = {
    "blocks": "block_height",
    "receipts": "receiver_id, block_timestamp, receipt_id",
    "events": "contract_id, event, block_timestamp, receipt_id, log_index",
    "intent_updates": "contract_id, intent_id, block_height, update_index",
    "solver_executions": "contract_id, solver_id, block_timestamp, receipt_id",
    "dead_letters": "block_height, contract_id, seq",
    "intent_lookups": "kind, key, block_height, update_index, intent_id",
    "intent_status_counts": "contract_id, block_height, status, receiver_id",
}
LOOKBACK = 250


class Crash(Exception):
    """Raised in place of an insert: the process died there."""


def read_lake(root: Path) -> dict[int, RawBlock]:
    out = {}
    from indexer.sources.base import shard_ids

    for folder in sorted(p for p in root.iterdir() if p.name.isdigit()):
        block = (folder / "block.json").read_bytes()
        # in the block's chunk order, as the sources deliver them (the decoder pairs them by position)
        shards = [folder / f"shard_{i}.json" for i in shard_ids(block)]
        out[int(folder.name)] = RawBlock(int(folder.name), block, [p.read_bytes() for p in shards if p.exists()])
    return out


def settings_for(contracts: tuple[str, ...]) -> Settings:
    return Settings(contracts=list(contracts), resolve_all_tx=True, tx_lookback_blocks=LOOKBACK)


def new_store(path: Path) -> Store:
    store = Store(f"chdb://{path}", database=f"w_{uuid.uuid4().hex[:12]}")
    migrations.migrate(store)
    stop_merges(store)
    return store


def stop_merges(store: Store) -> None:
    """No part of any table is merged, so a ReplacingMergeTree merge cannot hide a duplicate.

    Not ``SYSTEM STOP MERGES``: it also stops the mutations a lightweight ``DELETE`` waits for, and
    the writer's delete would hang. A part over one byte is never chosen for a merge.
    """
    for table in COLUMNS:
        store.command(f"ALTER TABLE {store.table(table)} MODIFY SETTING max_bytes_to_merge_at_max_space_in_pool = 1, "
                      "max_bytes_to_merge_at_min_space_in_pool = 1")


def set_dedup_window(store: Store, window: int = 1000) -> None:
    """Make every table drop an insert whose block equals a recent one, as replicated tables do."""
    for table in [*COLUMNS, "streams", "commits"]:
        store.command(f"ALTER TABLE {store.table(table)} MODIFY SETTING non_replicated_deduplication_window = {window}")


@dataclass
class Decoded:
    """Every block decoded once per contract set, warm as a run from LOOKBACK blocks earlier."""

    blocks: dict[int, RawBlock]
    cache: dict[tuple[str, ...], dict[int, DecodedBlock]] = field(default_factory=dict)

    def get(self, contracts: tuple[str, ...]) -> dict[int, DecodedBlock]:
        if contracts not in self.cache:
            decoder = BlockDecoder(DecoderConfig.from_settings(settings_for(contracts)))
            self.cache[contracts] = {h: decoder.decode(raw) for h, raw in sorted(self.blocks.items())}
        return self.cache[contracts]


@dataclass
class Stream:
    """One stream's writer, fed batch by batch."""

    driver: "Driver"
    name: str
    contracts: tuple[str, ...]
    start: int
    end: int
    reindex: bool = False
    writer: Writer | None = None

    @property
    def spec(self) -> StreamSpec:
        return stream_spec(settings_for(self.contracts), self.name, self.start, self.end, reindex=self.reindex)

    def open(self) -> Writer:
        self.writer = Writer.open(self.driver.store, self.spec, ttl=60, settle=0)
        return self.writer

    @property
    def height(self) -> int:
        state = streams.read(self.driver.store, self.name)
        return self.start - 1 if state is None else state.height

    @property
    def done(self) -> bool:
        return self.height >= self.end

    def step(self, heights: int) -> None:
        """Write the next batch of up to ``heights`` heights (opening the stream if needed)."""
        writer = self.writer or self.open()
        writer.flush(self.next_batch(heights))

    def next_batch(self, heights: int) -> Batch:
        writer = self.writer or self.open()
        low = writer.state.height + 1
        high = min(self.end, low + heights - 1)
        decoded = self.driver.decoded.get(self.contracts)
        batch_blocks = [decoded[h] for h in sorted(decoded) if low <= h <= high]
        rows = Rows()
        for d in batch_blocks:
            rows.extend(d.rows)
        last = batch_blocks[-1] if batch_blocks else None
        return Batch(rows, low, high, last.hash if last else writer.state.block_hash,
                     batch_blocks[0].timestamp_ns if batch_blocks else 0, last.timestamp_ns if last else 0)

    def inserts(self, heights: int) -> int:
        """How many inserts the next batch makes: its marker, each table with rows, commit row, state."""
        return 1 + sum(1 for rows in self.next_batch(heights).rows.tables.values() if rows) + 2

    def crash_at_insert(self, heights: int, n: int) -> bool:
        """Like ``step``, but die at the n-th insert of the batch; True when it died."""
        store = self.driver.store
        real = store.insert_rows
        count = 0

        def dying(*args: Any, **kwargs: Any) -> None:
            nonlocal count
            count += 1
            if count == n:
                raise Crash(f"died at insert {n}")
            real(*args, **kwargs)

        store.insert_rows = dying  # type: ignore[method-assign]
        try:
            self.step(heights)
            return False
        except Crash:
            self.die()
            return True
        finally:
            store.insert_rows = real  # type: ignore[method-assign]

    def die(self) -> None:
        """The process is gone: it stops renewing, and its lease runs out."""
        expire(self.driver.store, self.name)
        self.writer = None

    def finish(self, heights: int = 5) -> None:
        while not self.done:
            self.step(heights)


def expire(store: Store, name: str) -> None:
    state = streams.read(store, name)
    if state is None:  # died before its first state row: there is no lease to run out
        return
    streams.write(store, replace(state, version=state.version + 1, lease_until=store.now_us() - 1))


@dataclass
class Driver:
    store: Store
    decoded: Decoded
    heights: list[int]
    streams: list[Stream] = field(default_factory=list)

    def stream(self, name: str, contracts: tuple[str, ...], start: int, end: int, *, reindex: bool = False) -> Stream:
        s = Stream(self, name, tuple(sorted(contracts)), start, end, reindex)
        self.streams.append(s)
        return s

    def expected(self) -> Rows:
        """What one clean run of the union writes: every owner's rows at the heights some stream tracks it."""
        union = tuple(sorted({c for s in self.streams for c in s.contracts}))
        coverage: dict[str, list[tuple[int, int]]] = {}
        for s in self.streams:
            for owner in s.spec.owners:
                coverage.setdefault(owner, []).append((s.start, s.end))
        rows = Rows()
        for d in self.decoded.get(union).values():
            rows.extend(d.rows)
        return rows.only({o: merge(r) for o, r in coverage.items()})


def dump(store: Store) -> dict[str, list[tuple[Any, ...]]]:
    return {t: store.query(f"SELECT * FROM {store.table(t)} ORDER BY ALL")[1] for t in COLUMNS}


def duplicates(store: Store) -> dict[str, int]:
    """Rows beyond the first per table key (0 everywhere when nothing is counted twice)."""
    out = {}
    for table, key in KEYS.items():
        n, uniq = store.query(f"SELECT count(), uniqExact({key}) FROM {store.table(table)}")[1][0]
        out[table] = int(n) - int(uniq)
    return out


def clean_tables(path: Path, rows: Rows) -> dict[str, list[tuple[Any, ...]]]:
    clean = new_store(path)
    for table, table_rows in rows.tables.items():
        clean.insert_rows(table, COLUMNS[table], table_rows)
    return dump(clean)


def dying(store: Any, n: int):  # type: ignore[no-untyped-def]
    """Make the n-th insert or command of the store raise Crash (the process died there)."""
    real_insert, real_command = store.insert_rows, store.command
    count = [0]

    def tick() -> None:
        count[0] += 1
        if count[0] == n:
            raise Crash(f"died at write {n}")

    def insert(*a: Any, **k: Any) -> None:
        tick()
        real_insert(*a, **k)

    def command(sql: str, *a: Any, **k: Any) -> Any:
        if not sql.lstrip().upper().startswith("SELECT"):
            tick()
        return real_command(sql, *a, **k)

    store.insert_rows, store.command = insert, command

    def restore() -> None:
        store.insert_rows, store.command = real_insert, real_command

    return restore
