"""Solver economics and bridge health: the token_flows, solver_costs and bridge_flows rollups and
their gauges, on the real mainnet execute_intents transaction and on simulated lakes with refused
withdrawals and failed batches; every figure equals a computation over the events and receipts,
also after a replay, a reindex and a late backfill of an older range."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from economicscheck import TABLES, assert_economics_exact, expected
from indexer.bridges import UNKNOWN, bridge_of, bridge_sql, parse
from indexer.config import ConfigError, Settings
from indexer.exporter.gauges import RollupGauges
from indexer.exporter.labels import SolverLabels
from indexer.rollup import job
from indexer.rollup.economics import DEPOSIT_METHODS, ECONOMICS
from apiserver import serve  # noqa: F401 - serve is a fixture
from lakebuild import TX_FILE, fixture_lake
from rollupcheck import backfill, settings_for, simulate, stop_merges

pytestmark = pytest.mark.timeout(600)

HOT = "nep245:v2_1.omni.hot.tg:56_11111111111111111111"
SOL = "nep141:sol.omft.near"
SOLVER = "solver-priv-liq.near"

# 45 s blocks from 23:10: minutes, hours and days each have several buckets, and a resolve
# callback (2 blocks after its withdrawal) always lies in a later minute than the withdrawal; one
# batch in six fails (its token_diff logs, fees included, stay in the failed receipt), a third
# of the withdrawals are refused by the token contract and refunded, and a fifth of the resolve
# callbacks fail themselves (out of gas after logging the refund, or panicking on a locked owner).
SCENARIO: dict[str, Any] = {
    "blocks": 210, "seed": 5, "block_time": 45.0, "start_time": "2026-01-05T23:10:00Z", "solvers": 8,
    "unlisted_solvers": 2, "intents_per_block": 4.0, "failure_rate": 0.15, "workshop_solvers": 0,
    "workshop_intents_per_block": 0.0, "noise_bytes_per_block": 2000, "tracked_shard_fraction": 0.0,
    "withdraw_refund_rate": 0.35, "withdraw_fail_rate": 0.2,
}


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    root = tmp_path_factory.mktemp("economics") / "lake"
    return root, simulate(root, **SCENARIO)


@pytest.fixture
def estore(store):  # type: ignore[no-untyped-def]
    from indexer.decode.rows import COLUMNS

    stop_merges(store, [*COLUMNS, *TABLES])  # so a merge cannot hide a duplicated bucket
    return store


def _rollup(store) -> None:  # type: ignore[no-untyped-def]
    job.run_all(store)  # all families: the gauges window ends at block_stats_1m


def _gauges(store, top_tokens: int = 5) -> dict[tuple[str, tuple], float]:  # type: ignore[no-untyped-def]
    g = RollupGauges(SolverLabels(5), top_tokens)
    g.refresh(store)
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for fam in g.collect() for s in fam.samples}


def _g(gauges: dict, name: str, **labels: str) -> float:
    return gauges[(name, tuple(sorted(labels.items())))]


# --- the real transaction ------------------------------------------------------------------------

def _fixture_facts() -> dict[str, Any]:
    """What the RPC file itself says: the intents.near receipts' gas and the resolve delay."""
    tx = json.loads(TX_FILE.read_text())
    first = tx["transaction_outcome"]["outcome"]["receipt_ids"][0]
    outcome = next(o for o in tx["receipts_outcome"] if o["id"] == first)
    return {"gas": outcome["outcome"]["gas_burnt"], "receipt": first}


def test_fixture_transaction_fees_volume_gas_and_withdrawal(estore, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root = tmp_path / "lake"
    heights = fixture_lake(root, copies=3)  # enough blocks to hold the resolve callback too
    settings = Settings(source=f"files:{root}", contracts=["intents.near:verifier"])
    backfill(estore, settings, min(heights), max(heights))
    _rollup(estore)
    assert_economics_exact(estore)
    T = estore.table
    fees = {(r, a, t): int(f) for r, a, t, f in estore.query(
        f"SELECT toString(role), toString(account_id), token, sum(fees) FROM {T('token_flows_1d')} "
        f"GROUP BY ALL HAVING sum(fees) != 0")[1]}
    assert fees == {("solver", SOLVER, HOT): 2541553359, ("user", "*", SOL): 19}
    vol = {(r, t): (int(i), int(o)) for r, t, i, o in estore.query(
        f"SELECT toString(role), token, sum(volume_in), sum(volume_out) FROM {T('token_flows_1h')} GROUP BY ALL")[1]}
    assert vol == {("solver", SOL): (18999981, 0), ("solver", HOT): (0, 2541553358444100),
                   ("user", SOL): (0, 19000000), ("user", HOT): (2541550816890741, 0)}
    facts = _fixture_facts()
    costs = estore.query(f"SELECT toString(solver_id), settlements, intents, gas_burnt FROM {T('solver_costs_1d')} "
                         f"ORDER BY 1")[1]
    assert [(s, n, k, int(g)) for s, n, k, g in costs] == [("*", 1, 2, facts["gas"]), (SOLVER, 1, 2, facts["gas"])]
    (row,) = estore.query(f"SELECT toString(token_contract), token, withdrawals, withdrawn, resolved, resolved_ok, "
                          f"refunded, failed, resolve_timed, finalizeAggregation(resolve_quantiles) "
                          f"FROM {T('bridge_flows_1d')}")[1]
    # the resolve callback ran 4 blocks (600 ms apart in the rebuilt lake) after the withdrawal
    w_ms, r_ms = estore.query(
        f"SELECT (SELECT toUnixTimestamp64Milli(block_timestamp) FROM {T('events')} WHERE event = 'mt_withdraw'), "
        f"(SELECT toUnixTimestamp64Milli(block_timestamp) FROM {T('receipts')} "
        f"WHERE method_name = 'mt_resolve_withdraw')")[1][0]
    assert row[:9] == ("v2_1.omni.hot.tg", HOT, 1, 2541550816890741, 1, 1, 0, 0, 1)
    assert list(row[9]) == [(r_ms - w_ms) / 1000.0] * 3 and r_ms > w_ms
    gauges = _gauges(estore)
    for window in ("5m", "1h", "24h"):
        assert _g(gauges, "near_intents_fees_collected", contract="intents.near", token=HOT, window=window) == 2541553359
        assert _g(gauges, "near_intents_fees_collected", contract="intents.near", token=SOL, window=window) == 19
        assert _g(gauges, "near_intents_volume", contract="intents.near", token=HOT, side="in",
                  window=window) == 2541550816890741
        assert _g(gauges, "near_intents_solver_gas_per_settlement", contract="intents.near", solver=SOLVER,
                  window=window) == facts["gas"]
        assert _g(gauges, "near_intents_solver_gas_per_intent", contract="intents.near", solver=SOLVER,
                  window=window) == facts["gas"] / 2
        for outcome, n in (("started", 1), ("ok", 1), ("refunded", 0), ("failed", 0)):
            assert _g(gauges, "near_intents_withdrawals", contract="intents.near", bridge="hot", outcome=outcome,
                      window=window) == n
        assert _g(gauges, "near_intents_withdrawal_resolve_seconds", contract="intents.near", bridge="hot",
                  quantile="0.9", window=window) == (r_ms - w_ms) / 1000.0
    # a reindex of the range (rows deleted and written again) and a second rollup change nothing
    before = expected(estore)
    backfill(estore, settings, min(heights), max(heights), reindex=True)
    _rollup(estore)
    assert_economics_exact(estore)
    assert expected(estore) == before


def _lake_deposit_receipts(root: Path) -> dict[str, Any]:
    """Read from the lake's JSON: every successful ft_on_transfer / mt_on_transfer receipt (receiver,
    method), and the deposits intents.near minted in them (per token and path: count, amount)."""
    paths: dict[str, int] = {}
    deposits: dict[str, dict[str, dict[str, Any]]] = {}
    for shard in sorted(root.glob("*/shard_*.json")):
        for o in json.loads(shard.read_text())["receipt_execution_outcomes"] or []:
            receipt, outcome = o["receipt"], o["execution_outcome"]["outcome"]
            actions = receipt["receipt"].get("Action", {}).get("actions", [])
            methods = [a["FunctionCall"]["method_name"] for a in actions if isinstance(a, dict) and "FunctionCall" in a]
            if not methods or methods[0] not in DEPOSIT_METHODS or "Failure" in outcome["status"]:
                continue
            paths[f"{receipt['receiver_id']} {methods[0]}"] = paths.get(f"{receipt['receiver_id']} {methods[0]}", 0) + 1
            if receipt["receiver_id"] != "intents.near":
                continue
            for log in outcome["logs"]:
                ev = json.loads(log[len("EVENT_JSON:"):]) if log.startswith("EVENT_JSON:") else {}
                if (ev.get("standard"), ev.get("event")) != ("nep245", "mt_mint"):
                    continue
                for item in ev["data"]:
                    if item.get("memo") == "refund":
                        continue
                    for token, amount in zip(item["token_ids"], item["amounts"]):
                        d = deposits.setdefault(token, {}).setdefault(methods[0], {"count": 0, "amount": "0"})
                        d["count"] += 1
                        d["amount"] = str(int(d["amount"]) + int(amount))
    return {"paths": paths, "deposits": deposits}


def test_fixture_deposit_paths_are_the_minting_receipts(estore, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """On the real blocks a deposit is only an intents.near mint in an ft_on_transfer / mt_on_transfer
    receipt: the fixture's other transfer_call receipts (v2.ref-finance.near's ft_on_transfer in block
    115185108, bridge-refuel.hot.tg's mt_on_transfer of the withdrawal) are none."""
    root = tmp_path / "lake"
    heights = fixture_lake(root, copies=1)
    facts = _lake_deposit_receipts(root)
    assert facts["paths"] == {"v2.ref-finance.near ft_on_transfer": 1, "bridge-refuel.hot.tg mt_on_transfer": 1}
    backfill(estore, Settings(source=f"files:{root}", contracts=["intents.near:verifier"]), min(heights), max(heights))
    _rollup(estore)
    assert_economics_exact(estore)
    assert _deposit_paths(estore) == facts["deposits"]
    assert estore.scalar(f"SELECT sum(deposits) FROM {estore.table('bridge_flows_1d')}") == sum(
        d["count"] for t in facts["deposits"].values() for d in t.values())


def test_solver_api_has_the_fixture_costs_and_fees(estore, serve, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    root = tmp_path / "lake"
    heights = fixture_lake(root, copies=1)
    backfill(estore, Settings(source=f"files:{root}", contracts=["intents.near:verifier"]), min(heights), max(heights))
    _rollup(estore)
    body = serve(estore).get(f"/api/v1/solvers/{SOLVER}?window=24h").json
    (mine,) = body["solvers"]
    gas = _fixture_facts()["gas"]
    assert (mine["settlements"], mine["intents_settled"], mine["gas_per_settlement"], mine["gas_per_intent"]) == (
        1, 2, gas, gas / 2)
    assert mine["fees_collected"] == {HOT: "2541553359"}  # the solver's own token_diff
    assert body["network"]["fees_collected"] == {HOT: "2541553359", SOL: "19"}  # every fee of the window


# --- simulated lakes -----------------------------------------------------------------------------

def _range(truth: dict[str, Any]) -> tuple[int, int]:
    return truth["blocks"]["first_height"], truth["blocks"]["last_height"]


def test_simulated_lake_is_exact_and_failed_batches_pay_no_fees(estore, lake) -> None:  # type: ignore[no-untyped-def]
    low, high = _range(lake[1])
    backfill(estore, settings_for(*lake), low, high)
    _rollup(estore)
    assert_economics_exact(estore)
    T = estore.table
    # the lake has what the checks are about: fees in failed receipts' logs, refunds, deposits, days
    failed_fees = estore.scalar(
        f"SELECT count() FROM {T('events')} WHERE event = 'token_diff' AND execution_status != 'success' "
        f"AND JSONExtractRaw(JSONExtractArrayRaw(data)[1], 'fees_collected') NOT IN ('', '{{}}')")
    assert failed_fees > 0
    totals = estore.query(f"SELECT sum(withdrawals), sum(resolved_ok), sum(refunded), sum(deposits), "
                          f"sum(resolve_timed), uniqExact(bucket) FROM {T('bridge_flows_1d')}")[1][0]
    withdrawals, ok, refunded, deposits, timed, days = totals
    assert withdrawals > 10 and ok > 0 and refunded > 0 and deposits > 0 and days == 2
    failed = estore.scalar(f"SELECT sum(failed) FROM {T('bridge_flows_1d')}")
    assert timed == ok + refunded + failed  # every resolution found its withdrawal
    # fees equal the successful token_diff items' fees_collected, summed in Python from the events
    want: dict[str, int] = {}
    for data, status in estore.query(f"SELECT data, toString(execution_status) FROM {T('events')} "
                                     f"WHERE event = 'token_diff'")[1]:
        if status == "success":
            for item in json.loads(data):
                for token, amount in (item.get("fees_collected") or {}).items():
                    want[token] = want.get(token, 0) + int(amount)
    got = {t: int(f) for t, f in estore.query(f"SELECT token, sum(fees) FROM {T('token_flows_1d')} GROUP BY 1 "
                                              f"HAVING sum(fees) != 0")[1]}
    assert got == {t: v for t, v in want.items() if v}
    gauges = _gauges(estore, top_tokens=3)
    tokens = {dict(k[1])["token"] for k in gauges if k[0] == "near_intents_fees_collected"}
    assert "other" in tokens and len(tokens) <= 4  # top 3 and the rest folded
    refunds = sum(v for (n, labels), v in gauges.items() if n == "near_intents_withdrawals"
                  and dict(labels)["outcome"] == "refunded" and dict(labels)["window"] == "24h")
    assert refunds == refunded


REFUND_REASONS = ("full refund", "partial refund")


def _withdrawal_outcomes(store) -> dict[str, dict[str, Any]]:  # type: ignore[no-untyped-def]
    """Per token, from bridge_flows_1d: what truth.json's ``withdrawals`` says, in its shape."""
    rows = store.query(f"SELECT token, sum(withdrawals), sum(resolved_ok), sum(refunded), sum(failed), "
                       f"sumMap(failure_reasons), sum(refunded_amount) FROM {store.table('bridge_flows_1d')} "
                       f"GROUP BY token HAVING sum(withdrawals) + sum(resolved) > 0")[1]
    return {t: {"started": w, "ok": ok, "refunded": rf, "failed": fl, "refunded_amount": str(ra),
                "failures": {k: v for k, v in dict(fr).items() if k not in REFUND_REASONS}}
            for t, w, ok, rf, fl, fr, ra in rows}


def _expected_outcomes(store) -> dict[str, dict[str, Any]]:  # type: ignore[no-untyped-def]
    """The same from the independent computation over the events and receipts."""
    out: dict[str, dict[str, Any]] = {}
    for (_, _, _, token), r in expected(store)["bridge_flows_1d"].items():
        o = out.setdefault(token, {"started": 0, "ok": 0, "refunded": 0, "failed": 0, "refunded_amount": 0,
                                   "failures": {}})
        for mine, theirs in (("started", "withdrawals"), ("ok", "resolved_ok"), ("refunded", "refunded"),
                             ("failed", "failed"), ("refunded_amount", "refunded_amount")):
            o[mine] += r[theirs]
        for k, v in r["failure_reasons"].items():
            if k not in REFUND_REASONS:
                o["failures"][k] = o["failures"].get(k, 0) + v
    return {t: {**o, "refunded_amount": str(o["refunded_amount"])} for t, o in out.items()
            if o["started"] + o["ok"] + o["refunded"] + o["failed"]}


def test_failed_resolves_are_counted_with_their_reasons(estore, lake) -> None:  # type: ignore[no-untyped-def]
    """A ``*_resolve_withdraw`` callback that fails itself is a ``failed`` withdrawal, with its
    failure text as the reason, per token: as truth.json and the events say, also after a replay."""
    root, truth = lake
    low, high = _range(truth)
    settings = settings_for(root, truth)
    want = truth["withdrawals"]["intents.near"]
    failures: dict[str, int] = {}
    for t in want.values():
        for k, v in t["failures"].items():
            failures[k] = failures.get(k, 0) + v
    # the lake has both kinds of failed callback, and out-of-gas ones that logged a refund first
    assert sum(t["failed"] for t in want.values()) > 5 and len(failures) >= 2
    assert "Exceeded the prepaid gas." in failures
    assert truth["receipts"]["intents.near"]["by_method"]["mt_resolve_withdraw"]["failure"] > 0
    assert truth["receipts"]["intents.near"]["by_method"]["ft_resolve_withdraw"]["failure"] > 0
    backfill(estore, settings, low, high)
    _rollup(estore)
    assert_economics_exact(estore)
    T = estore.table
    assert estore.scalar(f"SELECT count() FROM {T('events')} AS e INNER JOIN {T('receipts')} AS r USING receipt_id "
                         f"WHERE e.event = 'mt_mint' AND r.method_name LIKE '%_resolve_withdraw' "
                         f"AND r.status != 'success'") > 0  # refund logs of failed callbacks are no refunds
    got = _withdrawal_outcomes(estore)
    assert got == want
    assert got == _expected_outcomes(estore)
    # a replay of the same range (its rows deleted and written again) and a second rollup
    backfill(estore, settings, low, high, reindex=True)
    _rollup(estore)
    assert_economics_exact(estore)
    assert _withdrawal_outcomes(estore) == want
    gauges = _gauges(estore)
    failed = sum(v for (n, labels), v in gauges.items() if n == "near_intents_withdrawals"
                 and dict(labels)["outcome"] == "failed" and dict(labels)["window"] == "24h")
    assert failed == sum(t["failed"] for t in want.values())


def _deposit_paths(store) -> dict[str, dict[str, dict[str, Any]]]:  # type: ignore[no-untyped-def]
    """Per token, from bridge_flows_1h, in truth.json's ``deposits`` shape (paths with deposits)."""
    rows = store.query(f"SELECT token, sum(ft_deposits), sum(ft_deposited), sum(mt_deposits), sum(mt_deposited), "
                       f"sum(deposits), sum(deposited) FROM {store.table('bridge_flows_1h')} GROUP BY token")[1]
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for token, fn, fa, mn, ma, n, a in rows:
        assert (n, int(a)) == (fn + mn, int(fa) + int(ma)), token  # no other deposit path in the lake
        for path, count, amount in (("ft_on_transfer", fn, fa), ("mt_on_transfer", mn, ma)):
            if count:
                out.setdefault(token, {})[path] = {"count": count, "amount": str(amount)}
    return out


def test_deposits_per_path_match_truth(estore, lake) -> None:  # type: ignore[no-untyped-def]
    root, truth = lake
    backfill(estore, settings_for(root, truth), *_range(truth))
    _rollup(estore)
    assert_economics_exact(estore)
    want = truth["deposits"]["intents.near"]
    paths = {p for t in want.values() for p in t}
    assert paths == {"ft_on_transfer", "mt_on_transfer"}  # the lake has both
    assert _deposit_paths(estore) == want


def test_replay_reindex_and_late_backfill_stay_exact(estore, lake) -> None:  # type: ignore[no-untyped-def]
    low, high = _range(lake[1])
    settings = settings_for(*lake)
    T = estore.table
    mid = (low + high) // 2
    backfill(estore, settings, mid, high)
    _rollup(estore)
    assert_economics_exact(estore)
    backfill(estore, settings, low, mid - 1)  # older history, withdrawals of resolutions already rolled up
    _rollup(estore)
    assert_economics_exact(estore)
    # the late range did hold withdrawals whose resolution had been rolled up before them
    straddling = estore.scalar(
        f"SELECT count() FROM {T('receipts')} AS r INNER JOIN (SELECT DISTINCT tx_hash FROM {T('events')} "
        f"WHERE event LIKE '%_withdraw' AND block_height < {mid}) AS w ON r.tx_hash = w.tx_hash "
        f"WHERE r.method_name LIKE '%_resolve_withdraw' AND r.block_height >= {mid}")
    assert straddling > 0
    backfill(estore, settings, low, high)  # a finished range: nothing to redo
    backfill(estore, settings, low + 20, low + 120, reindex=True)
    _rollup(estore)
    assert_economics_exact(estore)


def test_without_lookahead_a_late_withdrawal_leaves_its_resolution_untimed(estore, lake) -> None:  # type: ignore[no-untyped-def]
    """The lookahead is what keeps resolution times exact under a late backfill."""
    import dataclasses

    from indexer.rollup import economics

    low, high = _range(lake[1])
    settings = settings_for(*lake)
    blind = dataclasses.replace(economics.BRIDGE_FLOWS, lookahead=0)
    mid = (low + high) // 2
    backfill(estore, settings, mid, high)
    job.run_all(estore, (blind,))
    backfill(estore, settings, low, mid - 1)
    job.run_all(estore, (blind,))
    want = {k: v["resolve_timed"] for k, v in expected(estore)["bridge_flows_1d"].items()}
    got = {(b, c, tc, t): int(n) for b, c, tc, t, n in estore.query(
        f"SELECT toUnixTimestamp(bucket), toString(contract_id), toString(token_contract), token, resolve_timed "
        f"FROM {estore.table('bridge_flows_1d')}")[1]}
    assert sum(got.values()) < sum(want.values())


def test_crash_mid_job_is_redone_exactly(estore, lake, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from indexer.rollup import buckets

    low, high = _range(lake[1])
    settings = settings_for(*lake)
    backfill(estore, settings, low, (low + high) // 2)
    _rollup(estore)
    backfill(estore, settings, (low + high) // 2 + 1, high)
    real, calls = buckets._replace, {"n": 0}

    def crash(store, family, grain, seconds, chunk):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] == 2:  # between the 1m buckets and their hours: a delete done, its insert lost
            store.command(f"DELETE FROM {store.table(family.table(grain))} WHERE bucket IN ({', '.join(map(str, chunk))})")
            raise RuntimeError("killed")
        real(store, family, grain, seconds, chunk)

    monkeypatch.setattr(buckets, "_replace", crash)
    with pytest.raises(RuntimeError):
        _rollup(estore)
    monkeypatch.undo()
    _rollup(estore)
    assert_economics_exact(estore)


# --- the bridge rule -----------------------------------------------------------------------------

def test_bridge_rule_in_python_and_sql_agree(store) -> None:  # type: ignore[no-untyped-def]
    rules = Settings().bridge_rules
    cases = {"v2_1.omni.hot.tg": "hot", "sol.omft.near": "omft", "eth.bridge.near": "rainbow", "omft.near": "omft",
             "wrap.near": UNKNOWN, "xomft.near": UNKNOWN, "usdt.tether-token.near": UNKNOWN}
    for contract, bridge in cases.items():
        assert bridge_of(rules, contract) == bridge
        assert store.scalar(f"SELECT {bridge_sql(rules, repr(contract))}") == bridge
    custom = parse(["*.poa.near = poa", "near=near"])
    assert custom == [("poa.near", "poa"), ("near", "near")]
    assert bridge_of(custom, "btc.poa.near") == "poa" and bridge_of(custom, "wrap.near") == "near"
    with pytest.raises(ConfigError, match="SUFFIX=NAME"):
        Settings(bridges=["omft.near"])
    assert Settings(bridges="a.near=a, b.near=b").bridges == ["a.near=a", "b.near=b"]


def test_lookahead_touches_the_buckets_after_a_commit() -> None:
    from indexer.rollup import buckets
    from indexer.store.commits import Commit

    c = Commit("s", 1, ("intents.near",), 10, 20, 1_000_059_999, 1_000_080_000, {}, False)
    assert buckets.touched_minutes([c]) == {1_000_020, 1_000_080}
    assert buckets.touched_minutes([c], lookahead=120) == {1_000_020, 1_000_080, 1_000_140, 1_000_200}
