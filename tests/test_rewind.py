"""``rewind``: what was indexed above a height goes, and indexing it again ends as one clean run.

In-process tests drive real writers on one embedded store with merges stopped (tests/storedriver);
CLI tests run the command as users do, prompt included.
"""

from __future__ import annotations

import json
import os
import pty
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from clitools import (BUSY_CONTRACTS, LogReader, cli, cli_env, dump_tables, duplicates as cli_duplicates, popen,
                      prepare_store)
from indexer.decode.rows import BLOCK_OWNER, COLUMNS, OWNER_COLUMN, Rows
from indexer.store import commits, rewind as rewinding, streams
from indexer.store.operations import OPERATIONS, Operation
from indexer.store.ownership import ALL_OWNERS
from indexer.store.streams import LeaseError
from lakebuild import fixture_lake
from storedriver import Crash, Decoded, Driver, clean_tables, dump, duplicates, dying, expire, new_store, read_lake

pytestmark = pytest.mark.timeout(600)

VERIFIER = "intents.near:verifier"
CONTRACTS = (VERIFIER, "token.sweat", "game.hot.tg")


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> tuple[Decoded, list[int]]:
    root = tmp_path_factory.mktemp("lake")
    heights = fixture_lake(root, copies=3)  # 12 real blocks, the real execute_intents tx in the first six
    return Decoded(read_lake(root)), heights


@pytest.fixture
def driver(lake, chdb_store_path: Path) -> Driver:
    decoded, heights = lake
    return Driver(new_store(chdb_store_path), decoded, heights)


def _below(rows: Rows, to: int, owners: set[str] | None = None) -> Rows:
    """``rows`` without those above ``to`` (of ``owners``; all when None)."""
    out = Rows()
    for table, table_rows in rows.tables.items():
        column = OWNER_COLUMN[table]
        idx = None if column is None else COLUMNS[table].index(column)
        for row in table_rows:
            owner = BLOCK_OWNER if idx is None else row[idx]
            if row[0] <= to or (owners is not None and owner not in owners):
                out.add(table, row)
    return out


def _finished(d: Driver, name: str, contracts: tuple[str, ...], start: int, end: int):  # type: ignore[no-untyped-def]
    s = d.stream(name, contracts, start, end)
    s.finish(3)
    s.writer.close()  # the process is done: its lease is released
    s.writer = None
    return s


def _assert_store(d: Driver, path: Path, want: Rows) -> None:
    assert duplicates(d.store) == dict.fromkeys(duplicates(d.store), 0)
    assert dump(d.store) == clean_tables(path, want)


def test_rewind_then_index_again_equals_a_clean_run(driver: Driver, chdb_store_path: Path) -> None:
    d, h = driver, driver.heights
    s = _finished(d, "live", CONTRACTS, h[0], h[-1])
    mid = h[3]
    p, commit = rewinding.rewind(d.store, mid, settle=0)
    assert p.owners == (ALL_OWNERS,) and commit is not None
    _assert_store(d, chdb_store_path, _below(d.expected(), mid))
    state = streams.read(d.store, "live")
    assert state.height == mid and all(hi <= mid for rs in state.written.values() for _, hi in rs)
    s.finish(3)
    _assert_store(d, chdb_store_path, d.expected())
    assert dump(d.store)["intent_updates"], "the comparison needs intent rows above the rewind"


def test_rewind_records_a_commit_row_rollups_read(driver: Driver) -> None:
    d, h = driver, driver.heights
    _finished(d, "live", CONTRACTS, h[0], h[-1])
    before = commits.read_since(d.store)
    rewinding.rewind(d.store, h[5], settle=0)
    new = [c for c in commits.read_since(d.store) if c not in before]
    (c,) = new
    assert (c.stream, c.kind, c.owners, c.low_height, c.high_height) == (OPERATIONS, commits.REWIND, (ALL_OWNERS,),
                                                                         h[5] + 1, h[-1])
    assert c.rows["blocks"] == len(h) - 6 and c.min_block_time_ms > 0
    cursor = commits.advance({}, commits.read_since(d.store))
    rewinding.rewind(d.store, h[2], settle=0)
    (again,) = commits.read_since(d.store, cursor)
    assert again.seq == c.seq + 1 and again.low_height == h[2] + 1 and again.kind == "rewind"


def test_rewind_of_one_contract_leaves_the_others_rows(driver: Driver, chdb_store_path: Path) -> None:
    d, h = driver, driver.heights
    s = _finished(d, "backfill:a", CONTRACTS, h[0], h[-1])
    mid = h[1]
    before = dump(d.store)
    p, _ = rewinding.rewind(d.store, mid, "intents.near", settle=0)
    assert p.owners == ("intents.near",)  # other contracts have rows above mid: the blocks stay
    want = _below(d.expected(), mid, owners={"intents.near"})
    _assert_store(d, chdb_store_path, want)
    after = dump(d.store)
    assert after["blocks"] == before["blocks"]
    gone = sum(len(before[t]) - len(after[t]) for t in COLUMNS)
    assert gone > 0 and sum(p.rows.values()) == gone
    s.finish(3)  # indexes intents.near again from mid + 1; the others' rows are left as they are
    _assert_store(d, chdb_store_path, d.expected())


def test_rewind_of_the_only_contract_above_takes_the_blocks_too(driver: Driver, chdb_store_path: Path) -> None:
    d, h = driver, driver.heights
    _finished(d, "backfill:x", ("token.sweat",), h[0], h[4])  # token.sweat ends below the rewind
    s = _finished(d, "backfill:y", (VERIFIER,), h[0], h[-1])
    p, _ = rewinding.rewind(d.store, h[5], "intents.near", settle=0)
    assert p.blocks_too
    assert [r[0] for r in dump(d.store)["blocks"]] == h[:6]
    _assert_store(d, chdb_store_path, _below(d.expected(), h[5], owners={"intents.near", BLOCK_OWNER}))
    s.finish(3)
    _assert_store(d, chdb_store_path, d.expected())


def test_rewind_below_the_live_streams_start_moves_its_start(driver: Driver, chdb_store_path: Path) -> None:
    d, h = driver, driver.heights
    _finished(d, "backfill:old", CONTRACTS, h[0], h[5])
    live = _finished(d, "live", CONTRACTS, h[6], h[-1])
    rewinding.rewind(d.store, h[2], settle=0)
    state = streams.read(d.store, "live")
    assert (state.start_height, state.height) == (h[2] + 1, h[2])
    live.start = h[2] + 1
    live.finish(3)
    _assert_store(d, chdb_store_path, d.expected())


def test_rewind_refuses_while_a_live_stream_may_write_those_heights(driver: Driver) -> None:
    d, h = driver, driver.heights
    s = d.stream("live", CONTRACTS, h[0], h[-1])
    s.step(4)  # running: it holds its lease
    with pytest.raises(LeaseError, match=f"stream live held by {s.writer.lease.holder}"):
        rewinding.rewind(d.store, h[1], settle=0)
    assert streams.read(d.store, "live").height == h[3]  # nothing changed
    assert streams.read(d.store, OPERATIONS).pending is None
    low = _finished(d, "backfill:low", CONTRACTS, h[0], h[2])  # ends at h[2]: a rewind above it is no concern
    assert low.done


def test_a_live_stream_ending_below_the_rewind_does_not_block_it(driver: Driver) -> None:
    d, h = driver, driver.heights
    _finished(d, "backfill:a", CONTRACTS, h[0], h[-1])
    s = d.stream("backfill:b", CONTRACTS, h[0], h[3])
    s.step(2)  # running, but never writes above h[3]
    rewinding.rewind(d.store, h[5], settle=0)
    assert streams.read(d.store, "backfill:a").height == h[5]


def test_a_writer_refuses_to_open_while_a_rewind_runs(driver: Driver) -> None:
    d, h = driver, driver.heights
    op = Operation.begin(d.store, (ALL_OWNERS,), (h[3], h[-1]), what="test", conflicts=lambda s: True, settle=0)
    try:
        with pytest.raises(LeaseError, match="operator command"):
            d.stream("live", CONTRACTS, h[0], h[-1]).open()
        assert not streams.read(d.store, "live").live  # it gave its lease back
        d.stream("backfill:low", CONTRACTS, h[0], h[2]).open()  # below the marked heights: fine
    finally:
        op.close()


@pytest.mark.parametrize("then", ["rewind-again", "index-again"])
@pytest.mark.parametrize("n", range(1, 15))
def test_a_rewind_killed_at_any_write_then_redone_or_indexed_over(driver: Driver, chdb_store_path: Path, n: int,
                                                                   then: str) -> None:
    d, h = driver, driver.heights
    s = _finished(d, "live", CONTRACTS, h[0], h[-1])
    restore = dying(d.store, n)
    try:
        rewinding.rewind(d.store, h[3], settle=0)
        died = False
    except Crash:
        died = True
    finally:
        restore()
    if died or streams.read(d.store, OPERATIONS).live:  # died, or died giving the lease back
        expire(d.store, OPERATIONS)
    if then == "rewind-again":
        rewinding.rewind(d.store, h[3], settle=0)
        _assert_store(d, chdb_store_path, _below(d.expected(), h[3]))
    s.finish(3)
    _assert_store(d, chdb_store_path, d.expected())


# --- the command ----------------------------------------------------------------------------------


def _contract_args(contracts: list[str]) -> list[str]:
    return [a for c in contracts for a in ("--contract", c)]


@pytest.fixture(scope="module")
def cli_lake(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[int], dict]:
    root = tmp_path_factory.mktemp("clilake")
    heights = fixture_lake(root, copies=3, skip_every=5)
    store = tmp_path_factory.mktemp("clean")
    cli("backfill", "--source", f"files:{root}", "--from", str(heights[0]), "--to", str(heights[-1]),
        "--store", f"chdb://{store}", *_contract_args(BUSY_CONTRACTS))
    return root, heights, dump_tables(store)


def _backfill(root: Path, heights: list[int], store: Path) -> None:
    cli("backfill", "--source", f"files:{root}", "--from", str(heights[0]), "--to", str(heights[-1]),
        "--store", f"chdb://{store}", *_contract_args(BUSY_CONTRACTS))


def test_cli_rewind_then_backfill_again_equals_a_clean_run(cli_lake, tmp_path: Path) -> None:
    root, heights, clean = cli_lake
    store = tmp_path / "store"
    prepare_store(store)  # merges stopped: a duplicate would show
    _backfill(root, heights, store)
    mid = heights[4]
    out = cli("rewind", "--to", str(mid), "--yes", "--store", f"chdb://{store}").stdout
    assert f"rewind to height {mid}" in out and "stream backfill:" in out and f"rewound to {mid}" in out
    partial = dump_tables(store)
    assert [int(r[0]) for r in partial["blocks"]] == [h for h in heights if h <= mid]
    _backfill(root, heights, store)
    assert cli_duplicates(store) == dict.fromkeys(cli_duplicates(store), 0)
    assert dump_tables(store) == clean
    feed = json.loads(cli("query", "--store", f"chdb://{store}", "--format", "json",
                          "SELECT stream, kind, low_height, owners FROM commits WHERE kind = 'rewind'").stdout)
    assert feed == [{"stream": "operations", "kind": "rewind", "low_height": mid + 1, "owners": ["*"]}]


def _run_to_the_head(root: Path, heights: list[int], store: Path) -> None:
    """`run` until it follows the head at the lake's last block, then stop it (SIGTERM, exit 0)."""
    proc = popen("run", "--source", f"files:{root}", "--start-block", str(heights[0]), "--store", f"chdb://{store}",
                 *_contract_args(BUSY_CONTRACTS), env=cli_env(INDEXER_POLL_INTERVAL="0.05"))
    try:
        LogReader(proc).wait_for(lambda e: str(e.get("event", "")).startswith("caught up at")
                                 and e.get("height") == heights[-1])
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=120)
    assert proc.returncode == 0


def test_cli_rewind_then_run_again_equals_a_clean_run(cli_lake, tmp_path: Path) -> None:
    root, heights, clean = cli_lake
    store = tmp_path / "store"
    prepare_store(store)
    _run_to_the_head(root, heights, store)
    assert dump_tables(store) == clean
    cli("rewind", "--to", str(heights[2]), "--yes", "--store", f"chdb://{store}")
    assert len(dump_tables(store)["blocks"]) == 3
    _run_to_the_head(root, heights, store)  # resumes at heights[2] + 1
    assert cli_duplicates(store) == dict.fromkeys(cli_duplicates(store), 0)
    assert dump_tables(store) == clean


def test_cli_rewind_of_one_contract(cli_lake, tmp_path: Path) -> None:
    root, heights, clean = cli_lake
    store = tmp_path / "store"
    _backfill(root, heights, store)
    cli("rewind", "--to", str(heights[1]), "--contract", "intents.near", "--yes", "--store", f"chdb://{store}")
    after = dump_tables(store)
    assert after["blocks"] == clean["blocks"]
    receiver = COLUMNS["receipts"].index("receiver_id")
    assert [r for r in after["receipts"] if r[receiver] != "intents.near"] == \
        [r for r in clean["receipts"] if r[receiver] != "intents.near"]
    assert not [r for r in after["receipts"] if r[receiver] == "intents.near" and int(r[0]) > heights[1]]
    assert [r for r in clean["receipts"] if r[receiver] == "intents.near" and int(r[0]) > heights[1]]
    _backfill(root, heights, store)
    assert dump_tables(store) == clean


def test_cli_rewind_asks_and_refuses_without_a_terminal(cli_lake, tmp_path: Path) -> None:
    root, heights, clean = cli_lake
    store = tmp_path / "store"
    _backfill(root, heights, store)
    args = ["rewind", "--to", str(heights[2]), "--store", f"chdb://{store}"]
    proc = subprocess.run([sys.executable, "-m", "indexer", *args], stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, env=cli_env(), timeout=120)
    assert proc.returncode == 2 and "--yes" in proc.stderr and "not a terminal" in proc.stderr
    assert dump_tables(store) == clean
    assert _on_a_terminal(args, "n\n")[0] == 3  # declined: nothing changes
    assert dump_tables(store) == clean
    code, text = _on_a_terminal(args, "y\n")
    assert code == 0 and "Remove these rows" in text and f"rewound to {heights[2]}" in text
    assert [int(r[0]) for r in dump_tables(store)["blocks"]] == [h for h in heights if h <= heights[2]]
    bad = cli("rewind", "--to", "5", "--contract", "Not An Account", "--yes", "--store", f"chdb://{store}",
              check=False)
    assert bad.returncode == 2 and "not a NEAR account id" in bad.stderr
    nothing = cli("rewind", "--to", str(heights[-1]), "--yes", "--store", f"chdb://{store}")
    assert "nothing to do" in nothing.stdout


def _on_a_terminal(args: list[str], answer: str) -> tuple[int, str]:
    """Run the CLI with its stdin and stdout on a pseudo-terminal, typing ``answer`` at the prompt."""
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "indexer", *args], stdin=slave, stdout=slave, stderr=slave,
                            env=cli_env(), close_fds=True)
    os.close(slave)
    text = b""
    sent = False
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        text += chunk
        if not sent and b"[y/N]" in text:
            os.write(master, answer.encode())
            sent = True
    os.close(master)
    return proc.wait(timeout=120), text.decode(errors="replace")


def test_rewind_of_a_contract_no_stream_tracks_changes_nothing(driver: Driver) -> None:
    d, h = driver, driver.heights
    _finished(d, "live", (VERIFIER,), h[0], h[-1])
    before = dump(d.store)
    p = rewinding.plan(d.store, h[2], "other.near")
    assert p.empty and not p.blocks_too
    assert dump(d.store) == before


def test_finishing_a_dead_rewind_waits_for_a_batch_in_flight_under_it(driver: Driver) -> None:
    d, h = driver, driver.heights
    _finished(d, "live", CONTRACTS, h[0], h[5])
    restore = dying(d.store, 3)  # the rewind dies after its marker, before it moves any stream
    try:
        with pytest.raises(Crash):
            rewinding.rewind(d.store, h[2], settle=0)
    finally:
        restore()
    expire(d.store, OPERATIONS)
    other = d.stream("backfill:b", ("token.sweat",), h[3], h[-1])
    writer = other.open()
    writer.lease.update(marker=True, pending=(h[3], h[4]), pending_at=None)  # a batch being written there
    with pytest.raises(LeaseError, match="stream backfill:b held by"):
        # game.hot.tg is none of its business, but finishing the dead rewind would delete its batch's rows
        rewinding.rewind(d.store, h[4], "game.hot.tg", settle=0)
    assert streams.read(d.store, OPERATIONS).pending is not None  # the dead rewind's marker stays
