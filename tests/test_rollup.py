"""Rollups on simulated lakes with incidents: every bucket of every grain equals the base rows
(computed again in Python), and truth.json where it applies, after replays, a late backfill of an
older range, a crash at any step of a job and a restart; no rollup key is stored twice (merges
stopped, so a merge cannot hide a duplicate)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from indexer.rollup import buckets, cursor, job
from indexer.simulate.options import SolverCollapse, Window
from rollupcheck import (ROLLUP_TABLES, assert_rollups_exact, backfill, duplicates, settings_for, simulate,
                         stop_merges)

pytestmark = pytest.mark.timeout(600)

# 20 s blocks: 330 blocks span two hours on both sides of midnight, so minutes, hours and days
# all have several buckets; a solver collapses, gas spikes and the verifier pauses.
SCENARIO: dict[str, Any] = {
    "blocks": 330, "seed": 11, "block_time": 20.0, "start_time": "2026-01-05T22:20:00Z", "solvers": 12,
    "unlisted_solvers": 3, "intents_per_block": 4.0, "failure_rate": 0.15, "workshop_solvers": 4,
    "workshop_intents_per_block": 1.5, "expiry_rate": 0.08, "noise_bytes_per_block": 2000,
    "tracked_shard_fraction": 0.0, "solver_collapses": (SolverCollapse("1", 120, 0.2),),
    "gas_spikes": (Window(150, 190, 25.0),), "verifier_pauses": (Window(240, 260),),
}


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    root = tmp_path_factory.mktemp("rollup") / "lake"
    return root, simulate(root, **SCENARIO)


@pytest.fixture
def rstore(store):  # type: ignore[no-untyped-def]
    from indexer.decode.rows import COLUMNS

    stop_merges(store, [*COLUMNS, *ROLLUP_TABLES])
    return store


def _range(truth: dict[str, Any]) -> tuple[int, int]:
    return truth["blocks"]["first_height"], truth["blocks"]["last_height"]


def _settings(lake: tuple[Path, dict[str, Any]]):  # type: ignore[no-untyped-def]
    return settings_for(*lake)


def _check(store) -> None:  # type: ignore[no-untyped-def]
    assert_rollups_exact(store)
    assert duplicates(store) == {t: 0 for t in ROLLUP_TABLES}


def test_rollups_equal_base_rows_and_truth(rstore, lake) -> None:  # type: ignore[no-untyped-def]
    root, truth = lake
    low, high = _range(truth)
    backfill(rstore, _settings(lake), low, high)
    results = job.run_all(rstore)
    assert all(r.commits > 0 and r.buckets > 0 for r in results)
    _check(rstore)
    T = rstore.table
    # the grains span several buckets each, so merging across buckets is exercised
    for table, at_least in (("solver_stats_1m", 100), ("solver_stats_1h", 3), ("solver_stats_1d", 2)):
        assert rstore.scalar(f"SELECT uniqExact(bucket) FROM {T(table)}") >= at_least, table
    # per solver totals over the days equal truth.json
    rows = rstore.query(f"SELECT contract_id, solver_id, sum(executions), sum(successes), sumMap(failure_reasons), "
                        f"sum(gas_burnt), sumMap(gas_buckets) FROM {T('solver_stats_1d')} WHERE solver_id != '*' "
                        f"GROUP BY ALL")[1]
    got = {(c, s): (n, ok, dict(f), int(g), dict(b)) for c, s, n, ok, f, g, b in rows}
    want = {(c, s): (v["executions"], v["successes"], v["failures"], v["gas_burnt"], v["gas_buckets"])
            for c, per in truth["solver_executions"].items() for s, v in per.items()}
    assert got == want
    # intents reaching a terminal status per minute equal truth.json's per_minute
    rows = rstore.query(f"SELECT contract_id, formatDateTime(bucket, '%Y-%m-%d %H:%i:00'), status, sum(intents) "
                        f"FROM {T('intent_stats_1m')} WHERE status IN ('executed', 'failed', 'completed', 'expired') "
                        f"GROUP BY ALL")[1]
    per_minute: dict[str, dict[str, dict[str, int]]] = {}
    for c, minute, status, n in rows:
        per_minute.setdefault(c, {}).setdefault(minute, {})[status] = n
    assert per_minute == {c: v["per_minute"] for c, v in truth["intents"].items() if v["per_minute"]}
    receipts = dict(rstore.query(f"SELECT contract_id, sum(receipts) FROM {T('receipt_stats_1d')} GROUP BY ALL")[1])
    assert receipts == {c: v["count"] for c, v in truth["receipts"].items() if v["count"]}
    assert rstore.scalar(f"SELECT sum(blocks) FROM {T('block_stats_1h')}") == truth["blocks"]["count"]


def test_idle_run_reads_nothing_and_keeps_rows(rstore, lake) -> None:  # type: ignore[no-untyped-def]
    backfill(rstore, _settings(lake), *_range(lake[1]))
    job.run_all(rstore)
    again = job.run_all(rstore)
    assert [(r.commits, r.buckets) for r in again] == [(0, 0)] * len(again)
    _check(rstore)


def test_replay_and_reindex_of_the_same_range(rstore, lake) -> None:  # type: ignore[no-untyped-def]
    low, high = _range(lake[1])
    settings = _settings(lake)
    backfill(rstore, settings, low, high)
    job.run_all(rstore)
    backfill(rstore, settings, low, high)  # a finished range: nothing written, nothing to redo
    backfill(rstore, settings, low + 50, low + 200, reindex=True)  # rows deleted and written again
    results = job.run_all(rstore)
    assert all(r.commits > 0 for r in results)
    _check(rstore)


def test_late_backfill_of_an_older_range(rstore, lake) -> None:  # type: ignore[no-untyped-def]
    low, high = _range(lake[1])
    settings = _settings(lake)
    mid = (low + high) // 2
    backfill(rstore, settings, mid, high)
    job.run_all(rstore)
    _check(rstore)
    backfill(rstore, settings, low, mid - 1)  # older history arrives after its newer part was rolled up
    job.run_all(rstore)
    _check(rstore)


def test_buckets_of_a_commit_cover_its_block_times() -> None:
    from indexer.store.commits import Commit

    c = Commit("s", 1, ("intents.near",), 10, 20, 1_000_059_999, 1_000_180_000, {}, False)
    assert buckets.touched_minutes([c]) == {1_000_020, 1_000_080, 1_000_140}
    assert buckets.touched_minutes([Commit("s", 2, (), 10, 20, 0, 10**9, {}, False)]) == set()


class _Crash(Exception):
    pass


@pytest.mark.parametrize("where", ["before_cursor", "mid_recompute"])
def test_crash_in_a_job_is_redone_exactly(rstore, lake, monkeypatch, where) -> None:  # type: ignore[no-untyped-def]
    low, high = _range(lake[1])
    settings = _settings(lake)
    backfill(rstore, settings, low, (low + high) // 2)
    job.run_all(rstore)
    backfill(rstore, settings, (low + high) // 2 + 1, high)
    calls = {"n": 0}
    if where == "before_cursor":
        def crash(*args: Any, **kwargs: Any) -> None:
            raise _Crash()
        monkeypatch.setattr(cursor, "write", crash)
    else:
        real = buckets._replace

        def crash(store, family, grain, seconds, chunk):  # type: ignore[no-untyped-def]
            calls["n"] += 1
            if calls["n"] == 2:  # after the 1m buckets, before their hours: the hours are stale now
                store.command(f"DELETE FROM {store.table(family.table(grain))} WHERE bucket IN "
                              f"({', '.join(map(str, chunk))})")  # and the crash hit between delete and insert
                raise _Crash()
            real(store, family, grain, seconds, chunk)
        monkeypatch.setattr(buckets, "_replace", crash)
    with pytest.raises(_Crash):
        job.run_all(rstore)
    monkeypatch.undo()
    results = job.run_all(rstore)  # the restart: the cursor had not moved, the same commits are redone
    assert results[0].commits > 0
    _check(rstore)


def test_dedup_window_never_drops_a_recomputed_bucket(rstore, lake) -> None:  # type: ignore[no-untyped-def]
    """Replicated tables drop an insert identical to a recent one: a bucket deleted and inserted
    again with the same rows must still be there."""
    for t in ROLLUP_TABLES:
        rstore.command(f"ALTER TABLE {rstore.table(t)} MODIFY SETTING non_replicated_deduplication_window = 1000")
    low, high = _range(lake[1])
    backfill(rstore, _settings(lake), low, high)
    job.run_all(rstore)
    first, last = rstore.query(f"SELECT toUnixTimestamp(min(bucket)), toUnixTimestamp(max(bucket)) "
                               f"FROM {rstore.table('block_stats_1m')}")[1][0]
    job.rebuild(rstore, first, last + 60)
    job.rebuild(rstore, first, last + 60)
    _check(rstore)


def test_rebuild_restores_buckets_changed_outside_the_feed(rstore, lake) -> None:  # type: ignore[no-untyped-def]
    low, high = _range(lake[1])
    backfill(rstore, _settings(lake), low, high)
    job.run_all(rstore)
    for t in ROLLUP_TABLES:
        rstore.command(f"DELETE FROM {rstore.table(t)} WHERE toMinute(bucket) % 2 = 0 OR toHour(bucket) % 2 = 0")
    first, last = rstore.query(f"SELECT toUnixTimestamp(min(block_timestamp)), toUnixTimestamp(max(block_timestamp)) "
                               f"FROM {rstore.table('blocks')}")[1][0]
    job.rebuild(rstore, first, last + 1)
    _check(rstore)


CHECK = """
import sys
sys.path.insert(0, sys.argv[2])
from indexer.store.client import Store
from rollupcheck import assert_rollups_exact, duplicates, ROLLUP_TABLES
s = Store(sys.argv[1], "near_intents")
assert_rollups_exact(s)
assert duplicates(s) == {t: 0 for t in ROLLUP_TABLES}, duplicates(s)
print("exact")
"""


def _exact_in_subprocess(store_path: Path) -> None:
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", CHECK, f"chdb://{store_path}", str(Path(__file__).parent)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and "exact" in proc.stdout, proc.stderr[-3000:]


def test_rollup_command_once_rebuild_and_kill_9(tmp_path: Path, lake) -> None:  # type: ignore[no-untyped-def]
    from clitools import cli, popen

    root, truth = lake
    low, high = _range(truth)
    store = f"chdb://{tmp_path / 'store'}"
    args = ["--source", f"files:{root}", "--store", store, "--no-progress"]
    for spec in truth["contracts"]:
        args += ["--contract", spec]
    for account in truth["solver_accounts"]:
        args += ["--solver-account", account]
    cli("backfill", "--from", str(low), "--to", str(low + 120), "--batch-blocks", "30", *args, timeout=300)
    first = cli("rollup", "--once", "--store", store).stdout
    assert "solver_stats: 5 commits" in first and "block_stats: 5 commits" in first
    assert "0 commits" in cli("rollup", "--once", "--store", store).stdout
    # a rollup loop killed at whatever point it reached, with new commits waiting
    cli("backfill", "--from", str(low + 121), "--to", str(high), "--batch-blocks", "30", *args, timeout=300)
    loop = popen("rollup", "--interval", "0.1", "--store", store)
    import time

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and loop.poll() is None:
        line = loop.stderr.readline()  # type: ignore[union-attr]
        if "rolling up" in line:
            break
    loop.kill()
    loop.wait(timeout=60)
    cli("rollup", "--once", "--store", store)
    _exact_in_subprocess(tmp_path / "store")
    assert "rebuilt" in cli("rollup", "--rebuild", "--from", "2026-01-05T23:00:00Z", "--to", "2026-01-06",
                            "--store", store).stdout
    _exact_in_subprocess(tmp_path / "store")
    bad = cli("rollup", "--rebuild", "--from", "yesterday", "--store", store, check=False)
    assert bad.returncode == 2 and "is not a time" in bad.stderr
    assert cli("rollup", "--from", "2026-01-05", "--store", store, check=False).returncode == 2


def test_backfill_killed_mid_way_then_resumed(tmp_path: Path, lake) -> None:  # type: ignore[no-untyped-def]
    """kill -9 a backfill after some batches, roll up what it committed, resume it, roll up again."""
    from clitools import LogReader, cli, popen

    root, truth = lake
    low, high = _range(truth)
    store = f"chdb://{tmp_path / 'store'}"
    args = ["backfill", "--from", str(low), "--to", str(high), "--batch-blocks", "20", "--source", f"files:{root}",
            "--store", store, "--no-progress", "--log-level", "debug"]
    for spec in truth["contracts"]:
        args += ["--contract", spec]
    for account in truth["solver_accounts"]:
        args += ["--solver-account", account]
    proc = popen(*args)
    reader = LogReader(proc)
    reader.wait_for(lambda e: e.get("event") == "batch stored" and e.get("height", 0) > low + 60, timeout=240)
    proc.kill()
    proc.wait(timeout=60)
    cli("rollup", "--once", "--store", store)
    _exact_in_subprocess(tmp_path / "store")
    cli(*[a for a in args if a not in ("--log-level", "debug")], timeout=300)
    cli("rollup", "--once", "--store", store)
    _exact_in_subprocess(tmp_path / "store")


def test_rewind_then_backfill_again(rstore, lake) -> None:  # type: ignore[no-untyped-def]
    """An operator's rewind deletes rows above a height with a commit of its kind: the buckets it
    emptied are recomputed, and so are they when the range is indexed again."""
    from indexer.store.rewind import rewind
    from indexer.store.commits import Commit

    low, high = _range(lake[1])
    settings = _settings(lake)
    backfill(rstore, settings, low, high)
    job.run_all(rstore)
    _, commit = rewind(rstore, (low + high) // 2)
    assert commit is not None and commit.owners
    job.run_all(rstore)
    _check(rstore)
    assert buckets.touched_minutes([Commit("operations", 9, ("x",), 1, 2, 0, 0, {}, False, "rewind")]) == set()
