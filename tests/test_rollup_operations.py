"""Rollups learn from the operator commands' rows in the change feed: after a rewind (of every
contract or one) the rollup jobs recompute exactly the buckets whose rows went, and after indexing
the heights again every bucket equals the base rows once more."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from indexer.rollup import job
from indexer.store import commits, rewind as rewinding
from rollupcheck import ROLLUP_TABLES, assert_rollups_exact, backfill, duplicates, settings_for, simulate, stop_merges

pytestmark = pytest.mark.timeout(600)

# 20 s blocks over two hours across midnight: minutes, hours and days all have several buckets.
SCENARIO: dict[str, Any] = {
    "blocks": 200, "seed": 5, "block_time": 20.0, "start_time": "2026-01-05T23:00:00Z", "solvers": 6,
    "intents_per_block": 3.0, "failure_rate": 0.15, "workshop_solvers": 2, "workshop_intents_per_block": 1.0,
    "noise_bytes_per_block": 1000, "tracked_shard_fraction": 0.0,
}


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    root = tmp_path_factory.mktemp("rollup-ops") / "lake"
    return root, simulate(root, **SCENARIO)


@pytest.fixture
def rstore(store):  # type: ignore[no-untyped-def]
    from indexer.decode.rows import COLUMNS

    stop_merges(store, [*COLUMNS, *ROLLUP_TABLES])
    return store


def _check(store) -> None:  # type: ignore[no-untyped-def]
    assert_rollups_exact(store)
    assert duplicates(store) == {t: 0 for t in ROLLUP_TABLES}


@pytest.mark.parametrize("one_contract", [False, True], ids=["everything", "one-contract"])
def test_rollups_follow_a_rewind_and_the_indexing_after_it(rstore, lake, one_contract: bool) -> None:  # type: ignore[no-untyped-def]
    root, truth = lake
    settings = settings_for(root, truth)
    low, high = truth["blocks"]["first_height"], truth["blocks"]["last_height"]
    backfill(rstore, settings, low, high)
    job.run_all(rstore)
    _check(rstore)
    before = rstore.scalar(f"SELECT sum(executions) FROM {rstore.table('solver_stats_1d')}")
    contract = settings.contract_specs[0].account if one_contract else None
    _, commit = rewinding.rewind(rstore, (low + high) // 2, contract, settle=0)
    assert commit is not None and commit.kind == commits.REWIND and commit.max_block_time_ms > commit.min_block_time_ms
    results = job.run_all(rstore)
    assert all(r.commits == 1 and r.buckets > 0 for r in results)  # the rewind's row, and only it
    _check(rstore)  # buckets above the rewind hold only what is left
    assert rstore.scalar(f"SELECT sum(executions) FROM {rstore.table('solver_stats_1d')}") < before
    backfill(rstore, settings, low, high)  # resumes above the rewind
    job.run_all(rstore)
    _check(rstore)
    assert rstore.scalar(f"SELECT sum(executions) FROM {rstore.table('solver_stats_1d')}") == before
