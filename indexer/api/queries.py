"""Every query the API sends to the store, behind two functions: ``get_intent`` and
``list_intents``. They fold ``intent_updates`` into each intent's latest state the way the
``intents`` view does, plus what the API needs besides (first height, attempts, every tx hash).
Only here does the API know table names, so lookup tables or rollups can take over later.

Input reaches ClickHouse only as bound parameters (``{name:Type}``), never as SQL text.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import orjson

from indexer.api.models import RELAY_STATUS, Intent, TokenAmount
from indexer.store.client import Store

_VER = "(block_height, update_index)"
# Output aliases differ from column names: ClickHouse lets an alias shadow a column.
_FOLD = f"""
SELECT contract_id AS i_contract, intent_id AS i_id,
       -- executed is final: a failed replay of an executed payload is an attempt (as the intents view)
       if(countIf(status = 'executed') > 0, 'executed', argMax(status, {_VER})) AS i_status,
       if(countIf(status = 'executed') > 0, '', argMax(failure, {_VER})) AS i_failure,
       argMaxIf(signer_id, {_VER}, signer_id != '') AS i_signer,
       argMaxIf(solver_id, {_VER}, solver_id != '') AS i_solver,
       argMaxIf(kinds, {_VER}, notEmpty(kinds)) AS i_kinds,
       argMaxIf(tokens, {_VER}, notEmpty(tokens)) AS i_tokens,
       argMaxIf(amounts, {_VER}, notEmpty(amounts)) AS i_amounts,
       argMaxIf(referral, {_VER}, referral != '') AS i_referral,
       argMaxIf(action, {_VER}, action != '') AS i_action,
       argMaxIf(deadline, {_VER}, deadline != '') AS i_deadline,
       if(countIf(status = 'executed') > 0, argMaxIf(receipt_id, {_VER}, status = 'executed'),
          argMax(receipt_id, {_VER})) AS i_receipt,
       arraySort(groupUniqArrayIf(tx_hash, tx_hash != '')) AS i_txs,
       arraySum(arrayMap(x -> x.2, arrayDistinct(groupArray((receipt_id, gas_burnt))))) AS i_gas,
       min(block_height) AS i_first_h, max(block_height) AS i_last_h,
       toUnixTimestamp64Milli(min(block_timestamp)) AS i_first_ms,
       toUnixTimestamp64Milli(max(block_timestamp)) AS i_last_ms,
       countIf(status = 'verified') AS i_verified_n,
       toUnixTimestamp64Milli(minIf(block_timestamp, status = 'verified')) AS i_verified_ms,
       countIf(status IN ('executed', 'completed')) AS i_done_n,
       toUnixTimestamp64Milli(minIf(block_timestamp, status IN ('executed', 'completed'))) AS i_done_ms,
       arraySort(groupUniqArrayArray(accounts)) AS i_accounts,
       uniqExactIf(receipt_id, status IN ('executed', 'completed', 'failed', 'expired')) AS i_attempts
FROM {{table}}
WHERE {{inner}}
GROUP BY contract_id, intent_id
"""
_COLUMNS = ("i_contract", "i_id", "i_status", "i_failure", "i_signer", "i_solver", "i_kinds", "i_tokens",
            "i_amounts", "i_referral", "i_action", "i_deadline", "i_receipt", "i_txs", "i_gas", "i_first_h",
            "i_last_h", "i_first_ms", "i_last_ms", "i_verified_n", "i_verified_ms", "i_done_n", "i_done_ms",
            "i_accounts", "i_attempts")


class CursorError(ValueError):
    """A ?cursor= that this API did not hand out."""


@dataclass(frozen=True)
class Filters:
    account: str | None = None
    solver: str | None = None
    status: str | None = None
    contract: str | None = None
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True)
class Key:
    """Where an intent sits in the newest-first order: its first height never changes, so a page
    boundary stays put while new intents arrive above it."""

    first_height: int
    contract_id: str
    intent_id: str

    def encode(self) -> str:
        raw = orjson.dumps([1, self.first_height, self.contract_id, self.intent_id])
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, cursor: str) -> "Key":
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
            version, height, contract, intent = orjson.loads(raw)
            if version != 1 or not isinstance(height, int) or height < 0 or not isinstance(contract, str) \
                    or not isinstance(intent, str):
                raise ValueError
        except (ValueError, TypeError):
            raise CursorError("the cursor is not one this API returned: pass next_cursor as it came") from None
        return cls(height, contract, intent)


# what a point lookup reads of intent_updates (and lookups.fold needs)
_UPDATE_COLUMNS = ("contract_id", "intent_id", "block_height", "update_index", "block_timestamp", "status", "failure",
                   "signer_id", "solver_id", "kinds", "tokens", "amounts", "referral", "action", "deadline",
                   "accounts", "receipt_id", "tx_hash", "gas_burnt", "submitted_height", "submitted_at")


def get_intent(store: Store, intent_id: str, contract: str | None = None) -> Intent | None:
    """The latest state of one intent (a dip4 hash or a workshop id), or None when unknown.
    Without ``contract``, an id that several Verifiers hold answers with the newest.

    The updates are read by the sort key of ``intent_updates`` and folded in Python by the rules
    of the ``intents`` view (``lookups.fold``): planning the view's SQL costs more than the read."""
    from indexer import lookups

    where = "intent_id = {id:String}" + (" AND contract_id = {contract:String}" if contract else "")
    cols, rows = store.query(
        f"SELECT {', '.join(_UPDATE_COLUMNS)} FROM {store.table('intent_updates')} WHERE {where} "
        "ORDER BY contract_id, block_height, update_index", {"id": intent_id, "contract": contract or ""})
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        u = dict(zip(cols, r))
        groups.setdefault(u["contract_id"], []).append(u)
    if not groups:
        return None
    updates = max(groups.values(), key=lambda us: max(u["block_height"] for u in us))
    return _from_fold(lookups.fold(updates), updates)


def _ms(t: Any) -> int | None:
    if t is None:
        return None
    if t.tzinfo is None:
        t = t.replace(tzinfo=timezone.utc)
    return int(t.timestamp() * 1000)


def _from_fold(v: dict[str, Any], updates: list[dict[str, Any]]) -> Intent:
    """An ``intents`` view row (from lookups.fold) as the API's Intent."""
    return _intent({
        "i_contract": v["contract_id"], "i_id": v["intent_id"], "i_status": v["status"], "i_failure": v["failure"],
        "i_signer": v["signer_id"], "i_solver": v["solver_id"], "i_kinds": v["kinds"], "i_tokens": v["tokens"],
        "i_amounts": v["amounts"], "i_referral": v["referral"], "i_action": v["action"], "i_deadline": v["deadline"],
        "i_receipt": v["receipt_id"], "i_txs": sorted({u["tx_hash"] for u in updates if u["tx_hash"]}),
        "i_gas": v["gas_burnt"], "i_first_h": min(u["block_height"] for u in updates),
        "i_last_h": v["block_height"], "i_first_ms": _ms(v["first_seen"]), "i_last_ms": _ms(v["last_seen"]),
        "i_verified_n": int(v["verified_at"] is not None), "i_verified_ms": _ms(v["verified_at"]) or 0,
        "i_done_n": int(v["executed_at"] is not None), "i_done_ms": _ms(v["executed_at"]) or 0,
        "i_accounts": v["accounts"], "i_attempts": v["attempts"],
    })[1]


def list_intents(store: Store, f: Filters, limit: int, after: Key | None = None) -> tuple[list[Intent], Key | None]:
    """One page, newest first by first appearance; the key to pass for the next page, if any."""
    inner, outer, params = ["1"], ["1"], {}
    if f.contract:
        inner.append("contract_id = {contract:String}")
        params["contract"] = f.contract
    if f.account:
        # Only intents some update of which names the account; the fold then checks the latest.
        inner.append(_ACCOUNT_INNER)
        params["account"] = f.account
    if f.solver:
        inner.append(_SOLVER_INNER)
        outer.append("i_solver = {solver:String}")
        params["solver"] = f.solver
    if f.status:
        outer.append("i_status = {status:String}")
        params["status"] = f.status
    if f.since:
        outer.append("i_first_ms >= {since:Int64}")
        params["since"] = int(f.since.timestamp() * 1000)
    if f.until:
        outer.append("i_first_ms < {until:Int64}")
        params["until"] = int(f.until.timestamp() * 1000)
    if after:
        outer.append("(i_first_h, i_contract, i_id) < ({ah:UInt64}, {ac:String}, {ai:String})")
        params.update(ah=after.first_height, ac=after.contract_id, ai=after.intent_id)
    rows = _fold(store, " AND ".join(inner), " AND ".join(outer), params, limit=limit + 1)
    page = [intent for _, intent in rows[:limit]]
    return page, rows[limit - 1][0] if len(rows) > limit else None


_NEWEST_FIRST = "i_first_h DESC, i_contract DESC, i_id DESC"


def changed_since(store: Store, account: str, height: int, limit: int) -> list[Intent]:
    """An account's intents whose latest state is above ``height``, in the order they changed."""
    rows = _fold(store, _ACCOUNT_INNER, "i_last_h > {h:UInt64}", {"account": account, "h": height}, limit,
                 order="i_last_h, i_contract, i_id")
    return [intent for _, intent in rows]


# intent_lookups is ordered by (kind, key, ...): the intents of an account or a solver are one range.
_ACCOUNT_INNER = "intent_id IN (SELECT intent_id FROM {lookups} WHERE kind = 'account' AND key = {account:String})"
_SOLVER_INNER = "intent_id IN (SELECT intent_id FROM {lookups} WHERE kind = 'solver' AND key = {solver:String})"


def _fold(store: Store, inner: str, outer: str, params: dict[str, Any], limit: int,
          order: str = _NEWEST_FIRST) -> list[tuple[Key, Intent]]:
    table = store.table("intent_updates")
    inner = inner.replace("{table}", table).replace("{lookups}", store.table("intent_lookups"))
    fold = _FOLD.replace("{table}", table).replace("{inner}", inner)
    sql = f"SELECT {', '.join(_COLUMNS)} FROM ({fold}) WHERE {outer} ORDER BY {order} LIMIT {int(limit)}"
    _, rows = store.query(sql, params)
    return [_intent(dict(zip(_COLUMNS, r))) for r in rows]


def _time(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, timezone.utc)


def _terminal(status: str, deadline: str, now: datetime) -> bool:
    """Final statuses. A failed dip4 batch leaves its nonce unused, so the same signed intent may
    be sent again until its deadline: failed is final once the deadline has passed (or when
    there is none, as for workshop intents)."""
    if status in ("executed", "completed", "expired"):
        return True
    if status != "failed":
        return False
    try:
        when = datetime.fromisoformat(deadline.replace("Z", "+00:00"))
    except ValueError:
        return True
    return when.tzinfo is None or when <= now


def _intent(r: dict[str, Any]) -> tuple[Key, Intent]:
    status = str(r["i_status"])
    done = status in ("completed", "executed")
    verified = _time(r["i_verified_ms"]) if r["i_verified_n"] else None
    completed = _time(r["i_done_ms"]) if done and r["i_done_n"] else None
    signer, solver, referral = r["i_signer"] or None, r["i_solver"] or None, r["i_referral"] or None
    accounts = [a for a in (signer, solver, referral, *r["i_accounts"]) if a]
    intent = Intent(
        intent_hash=r["i_id"], contract_id=r["i_contract"], status=status,
        relay_status=RELAY_STATUS.get(status, "NOT_FOUND_OR_NOT_VALID"),
        terminal=_terminal(status, r["i_deadline"], datetime.now(timezone.utc)), failure=r["i_failure"] or None,
        kinds=list(r["i_kinds"]), action=r["i_action"] or None, signer_id=signer, solver_id=solver,
        referral=referral, accounts=list(dict.fromkeys(accounts)),
        tokens=[TokenAmount(token=t, amount=a) for t, a in zip(r["i_tokens"], r["i_amounts"])],
        deadline=r["i_deadline"] or None, attempts=int(r["i_attempts"]), first_block_height=int(r["i_first_h"]),
        last_block_height=int(r["i_last_h"]), first_seen=_time(r["i_first_ms"]), last_seen=_time(r["i_last_ms"]),
        verified_at=verified, completed_at=completed,
        latency_s=(completed - verified).total_seconds() if status == "completed" and verified and completed else None,
        receipt_id=r["i_receipt"], tx_hashes=list(r["i_txs"]), gas_burnt=int(r["i_gas"]),
    )
    return Key(int(r["i_first_h"]), r["i_contract"], r["i_id"]), intent


def ping(store: Store) -> None:
    """Raises when the store does not answer."""
    store.scalar("SELECT 1")


def commit_heads(store: Store) -> dict[str, int]:
    """Each stream's last committed seq: where a follower of the commits feed starts."""
    _, rows = store.query(f"SELECT stream, commit_seq FROM {store.table('streams')} FINAL")
    return {str(s): int(q) for s, q in rows}


def intents_changed(store: Store, owners: list[str], low: int, high: int) -> list[tuple[str, str]]:
    """(contract, intent id) of the intents a committed batch (owners, heights low..high) wrote."""
    _, rows = store.query(
        f"SELECT DISTINCT contract_id, intent_id FROM {store.table('intent_updates')} WHERE receiver_id IN {{o:Array(String)}} "
        "AND block_height BETWEEN {lo:UInt64} AND {hi:UInt64}", {"o": owners, "lo": low, "hi": high})
    return [(str(c), str(i)) for c, i in rows]


# --- solver statistics, from the rollups (migrations/0005_rollups.sql) ------------------------

WINDOWS = {"5m": (300, "1m"), "1h": (3600, "1m"), "24h": (86_400, "1h"), "7d": (604_800, "1h")}
NETWORK = "*"  # the rollups' network-wide row


def solver_stats(store: Store, window: str, contract: str | None = None, solver: str | None = None
                 ) -> tuple[datetime | None, list[dict[str, Any]]]:
    """(end of the window, one row per solver and the network row '*') over the ``window`` of
    buckets ending at the newest bucket the rollups hold (block time, not this host's clock)."""
    seconds, grain = WINDOWS[window]
    table = store.table(f"solver_stats_{grain}")
    end = store.scalar(f"SELECT toUnixTimestamp(max(bucket)) FROM {table}")
    if not end:
        return None, []
    where = "bucket > toDateTime({lo:UInt32}, 'UTC') AND bucket <= toDateTime({hi:UInt32}, 'UTC')"
    params: dict[str, Any] = {"lo": int(end) - seconds, "hi": int(end)}
    if contract:
        where += " AND contract_id = {contract:String}"
        params["contract"] = contract
    if solver:
        where += " AND solver_id IN ({solver:String}, '*')"
        params["solver"] = solver
    cols, rows = store.query(
        f"SELECT toString(solver_id) AS solver_id, sum(executions) AS executions, sum(successes) AS successes, "
        f"sum(failures) AS failures, sumMap(failure_reasons) AS reasons, toString(sum(gas_burnt)) AS gas_burnt, "
        f"quantilesExactMerge(0.5, 0.9, 0.99)(gas_quantiles) AS gas_q, sum(latency_count) AS latency_count, "
        f"sum(latency_sum) AS latency_sum, quantilesExactMerge(0.5, 0.9, 0.99)(latency_quantiles) AS latency_q "
        f"FROM {table} WHERE {where} GROUP BY solver_id ORDER BY executions DESC, solver_id", params)
    grain_s = 60 if grain == "1m" else 3600
    return datetime.fromtimestamp(int(end) + grain_s, timezone.utc), [dict(zip(cols, r)) for r in rows]


def solver_economics(store: Store, window: str, contract: str | None = None, solver: str | None = None
                     ) -> dict[str, dict[str, Any]]:
    """solver id ('*' too) -> settlements, intents, gas and fees per token over the same buckets as
    ``solver_stats`` (from solver_costs and token_flows; README "Token flows and bridges")."""
    seconds, grain = WINDOWS[window]
    end = store.scalar(f"SELECT toUnixTimestamp(max(bucket)) FROM {store.table(f'solver_stats_{grain}')}")
    if not end:
        return {}
    where = "bucket > toDateTime({lo:UInt32}, 'UTC') AND bucket <= toDateTime({hi:UInt32}, 'UTC')"
    params: dict[str, Any] = {"lo": int(end) - seconds, "hi": int(end)}
    if contract:
        where += " AND contract_id = {contract:String}"
        params["contract"] = contract
    costs_where, fees_where = where, where
    if solver:
        params["solver"] = solver
        costs_where += " AND solver_id IN ({solver:String}, '*')"
        fees_where += " AND account_id = {solver:String}"
    out: dict[str, dict[str, Any]] = {}
    for sid, n, k, gas in store.query(
            f"SELECT toString(solver_id), sum(settlements), sum(intents), sum(gas_burnt) "
            f"FROM {store.table(f'solver_costs_{grain}')} WHERE {costs_where} GROUP BY 1", params)[1]:
        out[sid] = {"settlements": int(n), "intents": int(k), "gas_burnt": int(gas), "fees": {}}
    # the solver's own fees, and every fee (any role) for the network row
    flows = store.table(f"token_flows_{grain}")
    own = (f"SELECT toString(account_id), token, sum(fees) FROM {flows} WHERE {fees_where} AND role = 'solver' "
           f"GROUP BY 1, 2 HAVING sum(fees) != 0")
    every = (f"SELECT '{NETWORK}', token, sum(fees) FROM {flows} WHERE {where} GROUP BY 1, 2 "
             f"HAVING sum(fees) != 0")
    for sql in (own, every):
        for sid, token, fee in store.query(sql, params)[1]:
            entry = out.setdefault(sid, {"settlements": 0, "intents": 0, "gas_burnt": 0, "fees": {}})
            entry["fees"][token] = str(fee)
    return out


def _window_bounds(store: Store, family: str, window: str) -> tuple[str, dict[str, Any], datetime] | None:
    """(table, bucket bounds, end) of the last ``window`` of a rollup family, or None before any."""
    seconds, grain = WINDOWS[window]
    table = store.table(f"{family}_{grain}")
    end = store.scalar(f"SELECT toUnixTimestamp(max(bucket)) FROM {store.table(f'block_stats_{grain}')}")
    if not end:
        return None
    grain_s = 60 if grain == "1m" else 3600
    return table, {"lo": int(end) - seconds, "hi": int(end)}, datetime.fromtimestamp(int(end) + grain_s, timezone.utc)


_BUCKETS = "bucket > toDateTime({lo:UInt32}, 'UTC') AND bucket <= toDateTime({hi:UInt32}, 'UTC')"


def status_stats(store: Store, window: str, contract: str | None = None
                 ) -> tuple[datetime | None, dict[str, dict[str, int]]]:
    """Per contract, distinct intents with an update of each status in the window."""
    bounds = _window_bounds(store, "intent_stats", window)
    if bounds is None:
        return None, {}
    table, params, end = bounds
    where = _BUCKETS + (" AND contract_id = {contract:String}" if contract else "")
    _, rows = store.query(f"SELECT toString(contract_id), toString(status), uniqExactMerge(intent_ids) FROM {table} "
                          f"WHERE {where} GROUP BY contract_id, status ORDER BY 1, 2",
                          {**params, "contract": contract or ""})
    out: dict[str, dict[str, int]] = {}
    for c, status, n in rows:
        out.setdefault(c, {})[status] = int(n)
    return end, out


def throughput_stats(store: Store, window: str, contract: str | None = None) -> tuple[datetime | None, dict[str, Any]]:
    """Blocks, receipts (and how many failed) and intent updates in the window."""
    bounds = _window_bounds(store, "receipt_stats", window)
    if bounds is None:
        return None, {}
    table, params, end = bounds
    grain = WINDOWS[window][1]
    by_contract = " AND contract_id = {contract:String}" if contract else ""
    params = {**params, "contract": contract or ""}
    blocks = store.scalar(f"SELECT sum(blocks) FROM {store.table(f'block_stats_{grain}')} WHERE {_BUCKETS}", params)
    _, rows = store.query(f"SELECT sum(receipts), sum(successes), sum(failures), toString(sum(gas_burnt)) FROM {table} "
                          f"WHERE {_BUCKETS}{by_contract}", params)
    updates = store.scalar(f"SELECT sum(updates) FROM {store.table(f'intent_stats_{grain}')} "
                           f"WHERE {_BUCKETS}{by_contract}", params)
    receipts, successes, failures, gas = rows[0] if rows else (0, 0, 0, "0")
    return end, {"blocks": int(blocks or 0), "receipts": int(receipts or 0), "receipt_successes": int(successes or 0),
                 "receipt_failures": int(failures or 0), "gas_burnt": gas or "0", "intent_updates": int(updates or 0)}
