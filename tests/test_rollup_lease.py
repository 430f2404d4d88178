"""One rollup process per store: the rollup jobs run only under the ``rollups`` lease. A second
holder's rounds leave every cursor and bucket alone until the first releases its lease or lets
it expire; the lease row is not an ingest stream, so the store protocol never sees it."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from indexer.rollup import cursor, job, runner
from indexer.rollup.lease import RollupLease
from indexer.store import streams
from indexer.store.streams import LeaseError
from rollupcheck import ROLLUP_TABLES, assert_rollups_exact, backfill, duplicates, settings_for, simulate, stop_merges

pytestmark = pytest.mark.timeout(600)

SCENARIO: dict[str, Any] = {
    "blocks": 90, "seed": 11, "block_time": 20.0, "start_time": "2026-01-05T10:00:00Z", "solvers": 5,
    "intents_per_block": 2.0, "failure_rate": 0.2, "workshop_solvers": 2, "workshop_intents_per_block": 1.0,
    "noise_bytes_per_block": 500, "tracked_shard_fraction": 0.0,
}


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    root = tmp_path_factory.mktemp("rollup-lease") / "lake"
    return root, simulate(root, **SCENARIO)


@pytest.fixture
def rstore(store, lake):  # type: ignore[no-untyped-def]
    from indexer.decode.rows import COLUMNS

    stop_merges(store, [*COLUMNS, *ROLLUP_TABLES])
    root, truth = lake
    backfill(store, settings_for(root, truth), truth["blocks"]["first_height"], truth["blocks"]["last_height"])
    return store


def _cursors(store) -> dict[str, dict[str, int]]:  # type: ignore[no-untyped-def]
    return {f.name: cursor.read(store, f.name) for f in job.FAMILIES}


def test_a_second_holder_skips_its_rounds_until_the_first_releases(rstore) -> None:  # type: ignore[no-untyped-def]
    first, second = RollupLease(ttl=60, settle=0), RollupLease(ttl=60, settle=0)
    first.hold(rstore)
    refreshed: list[Any] = []
    assert runner.one_round(rstore, refreshed.append, lease=second) == []
    assert refreshed == [rstore]  # the gauges are still refreshed
    assert _cursors(rstore) == {f.name: {} for f in job.FAMILIES}
    assert all(rstore.scalar(f"SELECT count() FROM {rstore.table(t)}") == 0 for t in ROLLUP_TABLES)
    with pytest.raises(LeaseError, match="rollups"):
        second.hold(rstore)

    results = runner.one_round(rstore, lease=first)
    assert results and all(r.commits > 0 for r in results)
    assert_rollups_exact(rstore)
    first.release()
    assert runner.one_round(rstore, lease=second) != []  # free now: the second takes it
    assert duplicates(rstore) == {t: 0 for t in ROLLUP_TABLES}
    assert_rollups_exact(rstore)
    second.release()


def test_an_expired_lease_is_taken_over(rstore) -> None:  # type: ignore[no-untyped-def]
    gone = RollupLease(ttl=0.2, settle=0)
    gone.hold(rstore)  # a process that stopped renewing
    taker = RollupLease(ttl=60, settle=0)
    deadline = time.monotonic() + 30
    while not taker.try_hold(rstore):
        assert time.monotonic() < deadline, "the expired lease was never taken over"
        time.sleep(0.1)
    assert streams.read(rstore, streams.ROLLUPS).holder == taker.lease.holder  # type: ignore[union-attr]
    job.run_all(rstore, renew=lambda: taker.hold(rstore))
    assert_rollups_exact(rstore)
    taker.release()


def test_the_lease_row_is_not_an_ingest_stream(rstore) -> None:  # type: ignore[no-untyped-def]
    lease = RollupLease(ttl=60, settle=0)
    lease.hold(rstore)
    assert streams.read(rstore, streams.ROLLUPS) is not None
    assert streams.ROLLUPS not in {s.stream for s in streams.read_all(rstore)}
    lease.release()
    assert not streams.read(rstore, streams.ROLLUPS).live  # type: ignore[union-attr]
