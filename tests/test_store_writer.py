"""The store protocol (indexer.store.writer, streams, ownership, commits) on real fixture blocks.

Streams share one embedded store, merges stopped: after any interleaving, crash and resume the
tables equal one clean run of the union of the streams, and no table key is stored twice.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from indexer.decode.rows import BLOCK_OWNER
from indexer.store import commits, streams
from indexer.store.ownership import Other, decide
from indexer.store.streams import LeaseError, StreamState
from indexer.store.writer import FingerprintError, Writer
from lakebuild import fixture_lake
from storedriver import Decoded, Driver, Stream, clean_tables, duplicates, dump, expire, new_store, read_lake, set_dedup_window

VERIFIER = "intents.near:verifier"
A = (VERIFIER, "token.sweat")
B = ("token.sweat", "earn.kaiching")
C = (VERIFIER, "game.hot.tg", "users.kaiching")


class Lake:
    """The decoded fixture blocks; a short repr, as hypothesis prints the arguments of a failure."""

    def __init__(self, decoded: Decoded, heights: list[int]):
        self.decoded, self.heights = decoded, heights

    def __repr__(self) -> str:
        return f"Lake({self.heights[0]}..{self.heights[-1]})"


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> Lake:
    root = tmp_path_factory.mktemp("lake")
    heights = fixture_lake(root, copies=4)  # 16 real blocks, the real execute_intents tx inside
    return Lake(Decoded(read_lake(root)), heights)


@pytest.fixture
def driver(lake: Lake, chdb_store_path: Path) -> Driver:
    return Driver(new_store(chdb_store_path), lake.decoded, lake.heights)


def assert_clean(d: Driver, chdb_store_path: Path, *, need_rows: bool = True) -> None:
    assert duplicates(d.store) == {t: 0 for t in duplicates(d.store)}
    got, want = dump(d.store), clean_tables(chdb_store_path, d.expected())
    assert {t: len(r) for t, r in got.items()} == {t: len(r) for t, r in want.items()}
    assert got == want
    if need_rows:
        assert want["receipts"] and want["events"] and want["intent_updates"], "the comparison needs rows"


# --- the overlap rule, deterministic ------------------------------------------------------------

def test_live_and_backfill_over_the_same_heights_write_each_row_once(driver: Driver, chdb_store_path: Path) -> None:
    h = driver.heights
    live = driver.stream(streams.LIVE, A, h[4], h[-1])
    back = driver.stream("backfill:a", A, h[0], h[-1])
    live.step(3)
    back.step(6)  # reaches into what live wrote
    live.step(4)
    back.step(4)  # live wrote these already
    back.finish(3)
    live.finish(2)
    assert_clean(driver, chdb_store_path)


def test_a_backfill_of_another_contract_leaves_the_others_rows(driver: Driver, chdb_store_path: Path) -> None:
    h = driver.heights
    first = driver.stream("backfill:a", A, h[0], h[-1])
    first.finish(4)
    before = dump(driver.store)["receipts"]
    added = driver.stream("backfill:b", ("earn.kaiching",), h[2], h[9])
    added.finish(3)
    rows = dump(driver.store)["receipts"]
    assert [r for r in rows if r[6] != "earn.kaiching"] == before  # receiver_id column
    assert any(r[6] == "earn.kaiching" for r in rows)
    assert_clean(driver, chdb_store_path)


@pytest.mark.parametrize("insert", range(1, 10))
def test_crash_at_every_insert_then_resume(driver: Driver, chdb_store_path: Path, insert: int) -> None:
    h = driver.heights
    back = driver.stream("backfill:a", C, h[0], h[-1])
    back.step(5)
    inserts = back.inserts(6)
    died = back.crash_at_insert(6, insert)
    back.finish(4)
    assert_clean(driver, chdb_store_path)
    assert died == (insert <= inserts)


def test_a_smaller_batch_after_a_crash_still_replaces_the_whole_leftover(driver: Driver, chdb_store_path: Path) -> None:
    h = driver.heights
    s = driver.stream(streams.LIVE, A, h[0], h[5])
    s.open()
    assert s.crash_at_insert(6, 3)  # blocks h0..h5 written, then died
    s.open()
    assert s.crash_at_insert(1, 2)  # a batch of h0 alone: its marker, then died again
    state = streams.read(driver.store, streams.LIVE)
    assert state is not None and state.pending == (h[0], h[5])  # still covers the first leftover
    s.step(2)
    state = streams.read(driver.store, streams.LIVE)
    assert state is not None and state.pending == (h[2], h[5])  # the rest is still to be replaced
    s.finish(1)
    assert_clean(driver, chdb_store_path)


@pytest.mark.parametrize("insert", [2, 4, 8])
def test_another_stream_replaces_a_crashed_streams_leftovers(driver: Driver, chdb_store_path: Path,
                                                             insert: int) -> None:
    h = driver.heights
    crashed = driver.stream("backfill:a", A, h[0], h[-1])
    assert crashed.crash_at_insert(8, insert)
    live = driver.stream(streams.LIVE, A, h[0], h[-1])
    live.finish(5)  # writes over the crashed batch: deletes its leftovers first
    crashed.finish(5)  # comes back later: everything is written already
    assert_clean(driver, chdb_store_path)


@pytest.mark.parametrize("window", [0, 1000])
def test_replays_after_a_delete_are_not_dropped_by_deduplication(driver: Driver, chdb_store_path: Path,
                                                                 window: int) -> None:
    set_dedup_window(driver.store, window)
    h = driver.heights
    s = driver.stream("backfill:a", A, h[0], h[-1])
    assert s.crash_at_insert(16, 9)  # every table inserted, the commit row not
    s.finish(16)  # the same batch again, after deleting it: same rows, same blocks of data
    assert_clean(driver, chdb_store_path)


def test_the_same_token_is_stored_once(driver: Driver) -> None:
    set_dedup_window(driver.store)
    row = [[1, "h", "p", 1, "", 0, []]]
    for _ in range(2):  # a retried insert after a lost connection
        driver.store.insert_rows("blocks", ("block_height", "block_hash", "prev_hash", "block_timestamp_ns",
                                            "author", "protocol_version", "shard_ids"), row, dedup_token="t/1")
    assert driver.store.scalar(f"SELECT count() FROM {driver.store.table('blocks')}") == 1


# --- randomized schedules ---------------------------------------------------------------------

ACTIONS = st.lists(st.tuples(st.integers(0, 2), st.sampled_from(["step", "crash"]), st.integers(1, 6),
                             st.integers(1, 10)), min_size=3, max_size=14)


@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
@given(actions=ACTIONS, starts=st.tuples(st.integers(0, 8), st.integers(0, 8), st.integers(0, 8)),
       lengths=st.tuples(st.integers(1, 8), st.integers(1, 8), st.integers(1, 8)))
def test_random_schedules_across_three_streams(lake: Lake, chdb_store_path: Path, actions, starts, lengths) -> None:
    heights = lake.heights
    d = Driver(new_store(chdb_store_path), lake.decoded, heights)
    set_dedup_window(d.store)
    names = [streams.LIVE, "backfill:x", "backfill:y"]
    runs = [d.stream(names[i], (A, B, C)[i], heights[starts[i]], heights[min(len(heights) - 1, starts[i] + lengths[i])])
            for i in range(3)]
    for i, action, size, insert in actions:
        s = runs[i]
        if s.done:
            continue
        if action == "step":
            s.step(size)
        else:
            s.crash_at_insert(size, insert)
    for s in runs:
        s.finish(3)
    assert_clean(d, chdb_store_path, need_rows=False)  # short random ranges may hold no intents


# --- leases -----------------------------------------------------------------------------------

def test_a_second_writer_on_a_stream_is_refused_naming_the_holder(driver: Driver) -> None:
    h = driver.heights
    s = driver.stream("backfill:a", A, h[0], h[-1])
    s.open()
    holder = s.writer.lease.holder  # type: ignore[union-attr]
    with pytest.raises(LeaseError, match=f"being written by {holder}.*expires in"):
        Writer.open(driver.store, s.spec, settle=0)


def test_a_stale_lease_is_taken_over_and_its_batch_redone(driver: Driver, chdb_store_path: Path) -> None:
    h = driver.heights
    s = driver.stream("backfill:a", A, h[0], h[-1])
    s.open()
    assert s.crash_at_insert(4, 3)  # the marker and one table written
    state = streams.read(driver.store, "backfill:a")
    assert state is not None and not state.live and state.pending == (h[0], h[3])
    s.finish(4)
    state = streams.read(driver.store, "backfill:a")
    assert state is not None and state.pending is None and state.pending_at is None and state.height == h[-1]
    assert_clean(driver, chdb_store_path)


def test_a_lease_held_by_a_process_that_is_gone_is_taken_over_on_the_embedded_store(driver: Driver) -> None:
    h = driver.heights
    s = driver.stream("backfill:a", A, h[0], h[-1])
    Writer.open(driver.store, s.spec, settle=0, holder="elsewhere:1:dead")  # live lease, another process
    w = Writer.open(driver.store, s.spec, settle=0)
    assert w.state.holder == w.lease.holder != "elsewhere:1:dead"


def test_an_expired_lease_stops_a_server_writer(driver: Driver) -> None:
    h = driver.heights
    s = driver.stream("backfill:a", A, h[0], h[-1])
    w = s.open()
    expire(driver.store, "backfill:a")
    w.lease.state = streams.read(driver.store, "backfill:a")  # type: ignore[assignment]
    driver.store.embedded = False  # check() is the server path: the embedded store has one process
    try:
        with pytest.raises(LeaseError, match="expired"):
            w.lease.check()
    finally:
        driver.store.embedded = True


def test_versions_grow_with_every_change_and_pending_reads_back_null(driver: Driver) -> None:
    h = driver.heights
    s = driver.stream("backfill:a", A, h[0], h[-1])
    seen = []
    for _ in range(3):
        s.step(2)
        state = streams.read(driver.store, "backfill:a")
        assert state is not None
        seen.append(state.version)
        assert state.pending is None and state.pending_at is None
    assert seen == sorted(seen) and len(set(seen)) == 3
    assert driver.store.scalar(f"SELECT count() FROM {driver.store.table('streams')} FINAL") == 1


# --- fingerprints -----------------------------------------------------------------------------

def test_a_different_decoding_of_stored_rows_is_refused(driver: Driver) -> None:
    h = driver.heights
    driver.stream("backfill:a", A, h[0], h[5]).finish()
    spec = driver.stream("backfill:a", A, h[0], h[5]).spec
    other = type(spec)(spec.stream, spec.owners, spec.start_height, spec.end_height,
                       {**spec.fingerprints, "intents.near": "v0-other"})
    with pytest.raises(FingerprintError, match="--reindex"):
        Writer.open(driver.store, other, settle=0)
    newcomer = type(spec)("backfill:b", spec.owners, h[6], h[9], other.fingerprints)
    with pytest.raises(FingerprintError, match="intents.near"):
        Writer.open(driver.store, newcomer, settle=0)
    Writer.open(driver.store, type(spec)("backfill:b", spec.owners, h[6], h[9], other.fingerprints, True), settle=0)


def test_reindex_rewrites_rows_another_stream_wrote(driver: Driver, chdb_store_path: Path) -> None:
    h = driver.heights
    driver.stream("backfill:a", A, h[0], h[-1]).finish(4)
    again = driver.stream("backfill:b", A, h[2], h[9], reindex=True)
    again.finish(3)
    assert_clean(driver, chdb_store_path)
    feed = commits.read_since(driver.store, {"backfill:a": 10**9})
    assert feed and all(c.reindex for c in feed) and feed[0].low_height == h[2]


# --- the change feed --------------------------------------------------------------------------

def test_commits_describe_every_committed_batch_and_only_those(driver: Driver) -> None:
    h = driver.heights
    s = driver.stream("backfill:a", A, h[0], h[-1])
    s.step(4)
    s.step(4)
    assert s.crash_at_insert(4, s.inserts(4))  # the commit row is written, the state not: not committed
    feed = commits.read_since(driver.store)
    assert [(c.stream, c.seq, c.low_height, c.high_height) for c in feed] == [
        ("backfill:a", 1, h[0], h[3]), ("backfill:a", 2, h[4], h[7])]
    assert set(feed[0].owners) == {BLOCK_OWNER, "intents.near", "token.sweat"}
    n = driver.store.query(f"SELECT count() FROM {driver.store.table('receipts')} WHERE block_height <= {h[3]}")[1][0][0]
    assert feed[0].rows.get("receipts", 0) == n
    assert feed[0].min_block_time_ms < feed[0].max_block_time_ms
    cursor = commits.advance({}, feed)
    s.finish(4)
    later = commits.read_since(driver.store, cursor)
    assert [c.seq for c in later] == [3, 4]
    assert later[0].low_height == h[8]
    live = driver.stream(streams.LIVE, A, h[0], h[3])
    live.finish(4)  # everything written already: a commit that wrote nothing but blocks? none at all
    (only,) = commits.read_since(driver.store, commits.advance(cursor, later))
    assert only.stream == streams.LIVE and only.owners == () and only.rows == {}


# --- the rule itself, on intervals ------------------------------------------------------------

def _other(name: str, written=None, pending=None, at=None, live=True, owners=("x",)) -> Other:
    return Other(name, frozenset(owners), written or {}, pending, at, live)


def test_rule_earlier_marker_of_a_live_stream_wins() -> None:
    me = _other("me", pending=(10, 20), at=200)
    early = _other("early", pending=(15, 30), at=100)
    late = _other("late", pending=(5, 12), at=300)
    d = decide("me", ["x"], (10, 20), 200, [me, early, late])
    assert d.writes == {"x": [(10, 14)]} and d.deletes == {}
    d = decide("late", ["x"], (5, 12), 300, [me, early, late])
    assert d.writes == {"x": [(5, 9)]}


def test_rule_crashed_markers_mean_delete_first_and_written_means_skip() -> None:
    crashed = _other("crashed", pending=(10, 20), at=100, live=False)
    done = _other("done", written={"*": [(0, 12)]})
    d = decide("me", ["x", "y"], (10, 25), 200, [crashed, done])
    assert d.writes == {"x": [(13, 25)], "y": [(13, 25)]}
    assert d.deletes == {"x": [(13, 20)]}  # only x is the crashed stream's
    d = decide("me", ["x"], (10, 25), 200, [done], leftover=(20, 30))
    assert d.deletes == {"x": [(20, 25)]}


def test_stream_state_round_trips_nulls_and_ranges(driver: Driver) -> None:
    s = StreamState("t", version=7, owners=("", "a.near"), start_height=5, end_height=None, height=4,
                    written={"a.near": [(5, 9), (20, 30)]}, fingerprints={"a.near": "v3-x"}, holder="h",
                    claimed_at=driver.store.now_us(), lease_until=driver.store.now_us() + 10**6)
    streams.write(driver.store, s)
    back = streams.read(driver.store, "t")
    assert back is not None and back.pending is None and back.pending_at is None and back.end_height is None
    assert back.written == s.written and back.fingerprints == s.fingerprints and back.live


# --- waiting for rivals on a server -------------------------------------------------------------

def test_a_server_writer_waits_for_markers_only_when_a_live_rival_may_write_its_rows(
        driver: Driver, monkeypatch: pytest.MonkeyPatch) -> None:
    h = driver.heights
    waits: list[float] = []
    monkeypatch.setattr("time.sleep", waits.append)
    monkeypatch.setattr(driver.store, "embedded", False)

    def open_stream(name: str, contracts: tuple[str, ...], start: int, end: int) -> Stream:
        s = driver.stream(name, contracts, start, end)
        s.writer = Writer.open(driver.store, s.spec, settle=2.0)
        assert waits == [2.0]  # taking a lease always waits for a rival's claim to arrive
        waits.clear()
        return s

    alone = open_stream("backfill:a", A, h[0], h[5])
    alone.step(3)
    assert waits == []  # no other stream: no wait
    open_stream("backfill:b", ("earn.kaiching",), h[8], h[11])
    alone.step(1)
    assert waits == []  # a live stream, but at other heights
    rival = open_stream(streams.LIVE, A, h[4], h[-1])
    rival.step(2)
    assert waits == [2.0]  # backfill:a is live and has not written h4..h5 yet
