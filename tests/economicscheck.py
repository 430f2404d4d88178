"""The token_flows, solver_costs and bridge_flows rollups computed again in Python from the base rows
(events, receipts, intent_updates, solver_executions), not with the SQL the jobs use."""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from indexer.rollup.economics import DEPOSIT_METHODS, RESOLVE_HORIZON, RESOLVE_METHODS, WITHDRAW_EVENTS
from indexer.rollup.families import GRAINS
from indexer.store.client import Store
from rollupcheck import _q

TABLES = [f"{n}_{g}" for n in ("token_flows", "solver_costs", "bridge_flows") for g, _ in GRAINS]
KEYS = {"token_flows": "bucket, contract_id, role, account_id, token", "solver_costs": "bucket, contract_id, solver_id",
        "bridge_flows": "bucket, contract_id, token_contract, token"}


def _items(data: str) -> list[dict[str, Any]]:
    d = json.loads(data)
    return [x for x in d if isinstance(x, dict)] if isinstance(d, list) else [d] if isinstance(d, dict) else []


def _contract_of(token: str) -> str:
    return token.split(":")[1] if ":" in token else token


def _withdraw_pairs(event: str, item: dict[str, Any]) -> list[tuple[str, int]]:
    c = item.get("token", "")
    if event == "mt_withdraw":
        amounts = item.get("amounts", [])
        return [(f"nep245:{c}:{i}", _int(amounts[k] if k < len(amounts) else "")) for k, i in enumerate(item["token_ids"])]
    if event == "nft_withdraw":
        return [(f"nep171:{c}:{item.get('token_id', '')}", 1)]
    if event == "native_withdraw":
        return [("nep141:wrap.near", _int(item.get("amount", "")))]
    return [(f"nep141:{c}", _int(item.get("amount", "")))]


def _int(s: Any) -> int:
    try:
        return int(s)
    except (TypeError, ValueError):
        return 0


def base_rows(store: Store) -> dict[str, list[tuple]]:
    T = store.table
    ms = "toUnixTimestamp64Milli(block_timestamp)"
    return {
        "events": store.query(f"SELECT {ms}, toString(contract_id), receipt_id, tx_hash, toString(standard), "
                              f"toString(event), data, toString(execution_status) FROM {T('events')}")[1],
        "receipts": store.query(f"SELECT {ms}, toString(receiver_id), receipt_id, tx_hash, toString(method_name), "
                                f"args, toString(status), failure, gas_burnt FROM {T('receipts')}")[1],
        "updates": store.query(f"SELECT receipt_id, intent_id, solver_id FROM {T('intent_updates')} "
                               f"WHERE status = 'executed' AND solver_id != ''")[1],
        "executions": store.query(f"SELECT {ms}, toString(contract_id), toString(solver_id), success, "
                                  f"length(intent_ids), gas_burnt FROM {T('solver_executions')}")[1],
    }


def expected(store: Store) -> dict[str, dict[tuple, dict[str, Any]]]:
    rows = base_rows(store)
    solver_of = {(r, h): s for r, h, s in rows["updates"]}
    flows, withdraws, mints = [], [], []  # (ms, contract, ...) facts, then bucketed per grain
    for ms, contract, rid, tx, std, event, data, status in rows["events"]:
        if status != "success":
            continue
        for item in _items(data):
            if std == "dip4" and event == "token_diff":
                h, account = item.get("intent_hash", ""), item.get("account_id", "")
                role = "solver" if solver_of.get((rid, h)) == account else "user"
                diff, fees = item.get("diff") or {}, item.get("fees_collected") or {}
                for token in dict.fromkeys([*diff, *fees]):
                    flows.append((ms, contract, role, account if role == "solver" else "*", token, rid, h,
                                  _int(diff.get(token)), _int(fees.get(token))))
            elif std == "dip4" and event in WITHDRAW_EVENTS:
                for token, amount in _withdraw_pairs(event, item):
                    withdraws.append((ms, contract, tx, token, amount))
            elif std == "nep245" and event == "mt_mint":
                amounts = item.get("amounts", [])
                for k, token in enumerate(item.get("token_ids", [])):
                    mints.append((ms, contract, rid, token, _int(amounts[k] if k < len(amounts) else ""),
                                  item.get("memo", "") == "refund"))
    # the path of a deposit: the method of the receipt that minted it (ft_on_transfer / mt_on_transfer)
    method_of = {rid: method for _, _, rid, _, method, *_ in rows["receipts"]}
    refunds: dict[tuple[str, str], int] = defaultdict(int)
    for ms, contract, rid, token, amount, is_refund in mints:
        if is_refund:
            refunds[(rid, token)] += amount
    first_withdraw: dict[tuple[str, str], int] = {}
    for ms, contract, tx, token, amount in withdraws:
        if tx:
            first_withdraw[(tx, token)] = min(ms, first_withdraw.get((tx, token), ms))
    resolves = []
    for ms, contract, rid, tx, method, args, status, failure, gas in rows["receipts"]:
        if method not in RESOLVE_METHODS:
            continue
        a = json.loads(args)
        c = a.get("token", "")
        if method == "mt_resolve_withdraw":
            amounts = a.get("amounts", [])
            pairs = [(f"nep245:{c}:{i}", _int(amounts[k] if k < len(amounts) else ""))
                     for k, i in enumerate(a.get("token_ids", []))]
        elif method == "nft_resolve_withdraw":
            pairs = [(f"nep171:{c}:{a.get('token_id', '')}", 1)]
        else:
            pairs = [(f"nep141:{c}", _int(a.get("amount")))]
        for token, amount in pairs:
            refunded = refunds.get((rid, token), 0)
            if status != "success":
                outcome, reason, refund = "failed", failure or "unknown", 0
            elif refunded > 0:
                outcome, reason, refund = "refunded", "full refund" if refunded >= amount else "partial refund", refunded
            else:
                outcome, reason, refund = "ok", "", 0
            w = first_withdraw.get((tx, token)) if tx else None
            seconds = (ms - w) / 1000.0 if w is not None and 0 <= ms - w <= RESOLVE_HORIZON * 1000 else None
            resolves.append((ms, contract, token, outcome, reason, refund, seconds))

    out: dict[str, dict[tuple, dict[str, Any]]] = {}
    for grain, size in GRAINS:
        def b(ms: int) -> int:
            return ms // 1000 // size * size
        tf: dict[tuple, dict[str, Any]] = defaultdict(lambda: {"receipts": set(), "items": set(), "volume_in": 0,
                                                               "volume_out": 0, "fees": 0})
        for ms, contract, role, who, token, rid, h, delta, fee in flows:
            r = tf[(b(ms), contract, role, who, token)]
            r["receipts"].add(rid)
            r["items"].add((rid, h))
            r["volume_in"] += max(delta, 0)
            r["volume_out"] += max(-delta, 0)
            r["fees"] += fee
        out[f"token_flows_{grain}"] = {k: {"settlements": len(r["receipts"]), "intents": len(r["items"]),
                                           "volume_in": r["volume_in"], "volume_out": r["volume_out"],
                                           "fees": r["fees"]} for k, r in tf.items()}
        sc: dict[tuple, dict[str, int]] = defaultdict(lambda: {"settlements": 0, "intents": 0, "gas_burnt": 0})
        for ms, contract, solver, ok, n_intents, gas in rows["executions"]:
            for who in (solver, "*"):
                r = sc[(b(ms), contract, who)]
                if ok:
                    r["settlements"] += 1
                    r["intents"] += n_intents
                    r["gas_burnt"] += gas
        out[f"solver_costs_{grain}"] = dict(sc)
        bf: dict[tuple, dict[str, Any]] = defaultdict(lambda: {
            "withdrawals": 0, "withdrawn": 0, "resolved": 0, "resolved_ok": 0, "refunded": 0, "failed": 0,
            "failure_reasons": defaultdict(int), "refunded_amount": 0, "times": [], "deposits": 0, "deposited": 0,
            "ft_deposits": 0, "ft_deposited": 0, "mt_deposits": 0, "mt_deposited": 0})
        for ms, contract, tx, token, amount in withdraws:
            r = bf[(b(ms), contract, _contract_of(token), token)]
            r["withdrawals"] += 1
            r["withdrawn"] += amount
        for ms, contract, token, outcome, reason, refund, seconds in resolves:
            r = bf[(b(ms), contract, _contract_of(token), token)]
            r["resolved"] += 1
            r[{"ok": "resolved_ok", "refunded": "refunded", "failed": "failed"}[outcome]] += 1
            if outcome != "ok":
                r["failure_reasons"][reason] += 1
            r["refunded_amount"] += refund
            if seconds is not None:
                r["times"].append(seconds)
        for ms, contract, rid, token, amount, is_refund in mints:
            if not is_refund:
                r = bf[(b(ms), contract, _contract_of(token), token)]
                r["deposits"] += 1
                r["deposited"] += amount
                path = method_of.get(rid, "")
                if path in DEPOSIT_METHODS:
                    prefix = path.split("_")[0]
                    r[f"{prefix}_deposits"] += 1
                    r[f"{prefix}_deposited"] += amount
        out[f"bridge_flows_{grain}"] = {k: {
            **{c: r[c] for c in ("withdrawals", "withdrawn", "resolved", "resolved_ok", "refunded", "failed",
                                 "refunded_amount", "deposits", "deposited", "ft_deposits", "ft_deposited",
                                 "mt_deposits", "mt_deposited")},
            "failure_reasons": dict(r["failure_reasons"]), "resolve_timed": len(r["times"]),
            "resolve_seconds_sum": sum(r["times"]), "resolve_q": _q(r["times"])} for k, r in bf.items()}
    return out


def stored(store: Store) -> dict[str, dict[tuple, dict[str, Any]]]:
    T = store.table
    out: dict[str, dict[tuple, dict[str, Any]]] = {}
    for grain, _ in GRAINS:
        rows = store.query(f"SELECT toUnixTimestamp(bucket), toString(contract_id), toString(role), "
                           f"toString(account_id), token, settlements, intents, volume_in, volume_out, fees "
                           f"FROM {T(f'token_flows_{grain}')}")[1]
        out[f"token_flows_{grain}"] = {(bk, c, r, a, t): {"settlements": n, "intents": k, "volume_in": int(vi),
                                                          "volume_out": int(vo), "fees": int(f)}
                                       for bk, c, r, a, t, n, k, vi, vo, f in rows}
        rows = store.query(f"SELECT toUnixTimestamp(bucket), toString(contract_id), toString(solver_id), settlements, "
                           f"intents, gas_burnt FROM {T(f'solver_costs_{grain}')}")[1]
        out[f"solver_costs_{grain}"] = {(bk, c, s): {"settlements": n, "intents": k, "gas_burnt": int(g)}
                                        for bk, c, s, n, k, g in rows}
        rows = store.query(f"SELECT toUnixTimestamp(bucket), toString(contract_id), toString(token_contract), token, "
                           f"withdrawals, withdrawn, resolved, resolved_ok, refunded, failed, failure_reasons, "
                           f"refunded_amount, resolve_timed, resolve_seconds_sum, "
                           f"finalizeAggregation(resolve_quantiles), deposits, deposited, "
                           f"ft_deposits, ft_deposited, mt_deposits, mt_deposited "
                           f"FROM {T(f'bridge_flows_{grain}')}")[1]
        out[f"bridge_flows_{grain}"] = {(bk, c, tc, t): {
            "withdrawals": w, "withdrawn": int(wn), "resolved": rs, "resolved_ok": ok, "refunded": rf, "failed": fl,
            "failure_reasons": dict(fr), "refunded_amount": int(ra), "resolve_timed": rt, "resolve_seconds_sum": ss,
            "resolve_q": list(q) if rt else None, "deposits": d, "deposited": int(dd), "ft_deposits": fd,
            "ft_deposited": int(fdd), "mt_deposits": md, "mt_deposited": int(mdd)}
            for bk, c, tc, t, w, wn, rs, ok, rf, fl, fr, ra, rt, ss, q, d, dd, fd, fdd, md, mdd in rows}
    return out


def duplicates(store: Store) -> dict[str, int]:
    out = {}
    for t in TABLES:
        n, u = store.query(f"SELECT count(), uniqExact({KEYS[t.rsplit('_', 1)[0]]}) FROM {store.table(t)}")[1][0]
        out[t] = int(n) - int(u)
    return out


def assert_economics_exact(store: Store) -> None:
    want, got = expected(store), stored(store)
    for table in TABLES:
        w, g = want[table], got[table]
        assert set(g) == set(w), (table, "missing", sorted(set(w) - set(g))[:5], "extra", sorted(set(g) - set(w))[:5])
        for key in w:
            have, need = dict(g[key]), dict(w[key])
            if "resolve_seconds_sum" in need:  # float sums in another order differ in the last bits
                assert abs(have.pop("resolve_seconds_sum") - need.pop("resolve_seconds_sum")) < 1e-6, (table, key)
            assert have == need, (table, key, have, need)
    assert duplicates(store) == {t: 0 for t in TABLES}
