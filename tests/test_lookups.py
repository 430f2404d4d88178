"""indexer.lookups against a simulated lake written by the store writer: every lookup equals a
GROUP BY over intent_updates, also after a range is rewritten (--reindex) and after a delete."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path
from typing import Any

import pytest

from indexer import lookups
from indexer.simulate import SimConfig, generate
from indexer.store.client import Store
from indexer.store.writer import delete_rows
from storedriver import Decoded, Driver, duplicates, new_store, read_lake

pytestmark = pytest.mark.timeout(600)

CONTRACTS = ("intents.near", "solver-1.workshop.near", "solver-2.workshop.near", "verifier.workshop.near")


@pytest.fixture(scope="module")
def decoded(tmp_path_factory: pytest.TempPathFactory) -> Decoded:
    root = tmp_path_factory.mktemp("lake")
    generate(SimConfig(out=root, blocks=160, seed=7, noise_bytes_per_block=2000, intents_per_block=4.0,
                       failure_rate=0.2, replay_rate=0.2, retry_rate=0.6, workshop_solvers=2,
                       workshop_intents_per_block=1.0))
    return Decoded(read_lake(root))


@pytest.fixture
def driver(decoded: Decoded, chdb_store_path: Path) -> Driver:
    heights = sorted(decoded.blocks)
    d = Driver(new_store(chdb_store_path), decoded, heights)
    d.stream("backfill", _contracts(decoded), heights[0], heights[-1]).finish(40)
    return d


def _contracts(decoded: Decoded) -> tuple[str, ...]:
    specs = ("intents.near:verifier", "verifier.workshop.near:workshop-verifier",
             "solver-1.workshop.near:workshop-solver", "solver-2.workshop.near:workshop-solver")
    return specs


# --- what a GROUP BY over the base rows says ---------------------------------------------------

def _newest_by(store: Store, column: str, value: str, limit: int) -> list[tuple[str, str]]:
    source = (f"{store.table('intent_updates')} ARRAY JOIN accounts AS account" if column == "account"
              else store.table("intent_updates"))
    _, rows = store.query(
        f"SELECT contract_id, intent_id FROM {source} WHERE {column} = {{v:String}} "
        f"GROUP BY contract_id, intent_id ORDER BY max((block_height, update_index)) DESC LIMIT {limit}",
        {"v": value})
    return [tuple(r) for r in rows]


def _by_tx(store: Store, tx_hash: str) -> set[tuple[str, str]]:
    _, rows = store.query(f"SELECT DISTINCT contract_id, intent_id FROM {store.table('intent_updates')} "
                          "WHERE tx_hash = {t:String}", {"t": tx_hash})
    return {tuple(r) for r in rows}


def _counts(store: Store, contract: str, lo: dt.datetime, hi: dt.datetime, bucket: int) -> list[tuple[Any, ...]]:
    _, rows = store.query(
        f"SELECT toStartOfInterval(block_timestamp, toIntervalSecond({bucket})) AS t, status, count() "
        f"FROM {store.table('intent_updates')} WHERE contract_id = {{c:String}} "
        "AND block_timestamp >= {lo:DateTime64(3, 'UTC')} AND block_timestamp < {hi:DateTime64(3, 'UTC')} "
        "GROUP BY t, status ORDER BY t, status",
        {"c": contract, "lo": lo.replace(tzinfo=None), "hi": hi.replace(tzinfo=None)})
    return [(t.replace(tzinfo=dt.timezone.utc) if t.tzinfo is None else t, s, n) for t, s, n in rows]


def _values(store: Store, sql: str) -> list[Any]:
    return [r[0] for r in store.query(sql)[1]]


def _keys(page: lookups.Page) -> list[tuple[str, str]]:
    return [(r["contract_id"], r["intent_id"]) for r in page.intents]


def assert_lookups_agree(store: Store) -> None:
    t = store.table
    accounts = _values(store, f"SELECT a FROM {t('intent_updates')} ARRAY JOIN accounts AS a GROUP BY a "
                              "ORDER BY count() DESC, a LIMIT 4")
    rng = random.Random(1)
    accounts += rng.sample(_values(store, f"SELECT DISTINCT a FROM {t('intent_updates')} ARRAY JOIN accounts AS a "
                                          "ORDER BY a"), 6)
    assert accounts
    for account in accounts:
        for limit in (1, 50):
            assert _keys(lookups.by_account(store, account, limit)) == _newest_by(store, "account", account, limit)
    solvers = _values(store, f"SELECT DISTINCT solver_id FROM {t('intent_updates')} WHERE solver_id != '' "
                             "ORDER BY solver_id")
    assert solvers
    for solver in solvers:
        assert _keys(lookups.by_solver(store, solver, 50)) == _newest_by(store, "solver_id", solver, 50)
    txs = _values(store, f"SELECT DISTINCT tx_hash FROM {t('intent_updates')} WHERE tx_hash != '' ORDER BY tx_hash")
    for tx in rng.sample(txs, 15):
        assert {(r["contract_id"], r["intent_id"]) for r in lookups.by_tx(store, tx)} == _by_tx(store, tx)
    assert lookups.by_tx(store, "no-such-tx") == []
    lo, hi = store.query(f"SELECT min(block_timestamp), max(block_timestamp) FROM {t('intent_updates')}")[1][0]
    lo, hi = (v.replace(tzinfo=dt.timezone.utc) if v.tzinfo is None else v for v in (lo, hi))
    for contract in ("intents.near", "verifier.workshop.near"):
        for bucket in (60, 3600):
            want = _counts(store, contract, lo, hi + dt.timedelta(seconds=1), bucket)
            assert want and lookups.status_counts(store, contract, lo, hi + dt.timedelta(seconds=1), bucket) == want
    assert duplicates(store)["intent_lookups"] == 0 == duplicates(store)["intent_status_counts"]


def test_lookups_equal_a_group_by_over_the_updates(driver: Driver) -> None:
    assert_lookups_agree(driver.store)


def test_lookups_after_a_range_is_rewritten_and_after_a_delete(driver: Driver) -> None:
    store, heights = driver.store, driver.heights
    before = store.scalar(f"SELECT count() FROM {store.table('intent_lookups')}")
    counted = store.scalar(f"SELECT sum(updates) FROM {store.table('intent_status_counts')}")
    mid = heights[len(heights) // 3: 2 * len(heights) // 3]
    driver.stream("rewrite", _contracts(driver.decoded), mid[0], mid[-1], reindex=True).finish(15)
    assert store.scalar(f"SELECT count() FROM {store.table('intent_lookups')}") == before
    assert store.scalar(f"SELECT sum(updates) FROM {store.table('intent_status_counts')}") == counted
    assert_lookups_agree(store)
    # the writer deletes an owner's rows at some heights (a crash's leftover): lookups follow
    removed = delete_rows(store, {"intents.near": [(mid[0], mid[-1])]})
    assert removed and store.scalar(f"SELECT count() FROM {store.table('intent_lookups')}") < before
    assert not store.scalar(f"SELECT count() FROM {store.table('intent_lookups')} WHERE receiver_id = 'intents.near' "
                            f"AND block_height BETWEEN {mid[0]} AND {mid[-1]}")
    assert_lookups_agree(store)


def test_pages_of_an_account_cover_its_intents_once(driver: Driver) -> None:
    store = driver.store
    account = _values(store, f"SELECT a FROM {store.table('intent_updates')} ARRAY JOIN accounts AS a "
                             "GROUP BY a ORDER BY uniqExact(intent_id) DESC LIMIT 1")[0]
    everything = _newest_by(store, "account", account, 100_000)
    assert len(everything) > 12
    seen: list[tuple[str, str]] = []
    page = lookups.by_account(store, account, 5)
    while True:
        seen += _keys(page)
        if page.next_before is None:
            break
        page = lookups.by_account(store, account, 5, before=page.next_before)
    assert seen == everything


def test_intent_and_its_attempts(driver: Driver) -> None:
    store = driver.store
    # an executed intent that was replayed: executed, with every attempt listed
    (contract, intent_id, n), = store.query(
        f"SELECT contract_id, intent_id, count() FROM {store.table('intent_updates')} "
        "GROUP BY contract_id, intent_id HAVING countIf(status = 'executed') = 1 AND countIf(status = 'failed') > 0 "
        "AND argMax(status, (block_height, update_index)) = 'failed' ORDER BY intent_id LIMIT 1")[1]
    (got,) = lookups.intent(store, intent_id)
    assert (got["contract_id"], got["status"], got["attempts"]) == (contract, "executed", n)
    assert got["executed_at"] < got["first_failed_at"] and got["submitted_at"] <= got["executed_at"]
    assert got["latency_s"] is not None and got["verified_at"] is None
    tried = lookups.attempts(store, intent_id)
    assert [a["status"] for a in tried][0] == "executed" and len(tried) == n
    assert all(a["failure"] for a in tried[1:]) and len({a["receipt_id"] for a in tried}) == n
    assert lookups.intent(store, intent_id, contract) == [got]
    assert lookups.intent(store, "no-such-intent") == []


def test_the_fold_of_lookups_is_the_intents_view(driver: Driver) -> None:
    """lookups folds the updates it reads by the view's rules: every column of every intent agrees."""
    store = driver.store
    cols, rows = store.query(f"SELECT * FROM {store.table('intents')}")
    view = {(r[0], r[1]): dict(zip(cols, r)) for r in rows}
    folded = {(r["contract_id"], r["intent_id"]): r for r in lookups._fold(store, sorted(view))}
    assert folded.keys() == view.keys()
    for k, want in view.items():
        got = folded[k]
        assert got.keys() == want.keys(), k
        for c in want:
            if c == "latency_s" and want[c] is not None:
                assert got[c] == pytest.approx(want[c], abs=1e-9), (k, c)
            else:
                assert got[c] == want[c], (k, c)
    statuses = {(r["status"], r["attempts"] > 1) for r in view.values()}
    assert {("executed", True), ("executed", False), ("failed", False), ("completed", False)} <= statuses
