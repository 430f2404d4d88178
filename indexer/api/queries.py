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
       argMax(status, {_VER}) AS i_status,
       argMax(failure, {_VER}) AS i_failure,
       argMaxIf(signer_id, {_VER}, signer_id != '') AS i_signer,
       argMaxIf(solver_id, {_VER}, solver_id != '') AS i_solver,
       argMaxIf(kinds, {_VER}, notEmpty(kinds)) AS i_kinds,
       argMaxIf(tokens, {_VER}, notEmpty(tokens)) AS i_tokens,
       argMaxIf(amounts, {_VER}, notEmpty(amounts)) AS i_amounts,
       argMaxIf(referral, {_VER}, referral != '') AS i_referral,
       argMaxIf(action, {_VER}, action != '') AS i_action,
       argMaxIf(deadline, {_VER}, deadline != '') AS i_deadline,
       argMax(receipt_id, {_VER}) AS i_receipt,
       arraySort(groupUniqArrayIf(tx_hash, tx_hash != '')) AS i_txs,
       arraySum(arrayMap(x -> x.2, arrayDistinct(groupArray((receipt_id, gas_burnt))))) AS i_gas,
       min(block_height) AS i_first_h, max(block_height) AS i_last_h,
       toUnixTimestamp64Milli(min(block_timestamp)) AS i_first_ms,
       toUnixTimestamp64Milli(max(block_timestamp)) AS i_last_ms,
       countIf(status = 'verified') AS i_verified_n,
       toUnixTimestamp64Milli(minIf(block_timestamp, status = 'verified')) AS i_verified_ms,
       uniqExactIf(receipt_id, status IN ('executed', 'completed', 'failed', 'expired')) AS i_attempts
FROM {{table}}
WHERE {{inner}}
GROUP BY contract_id, intent_id
"""
_COLUMNS = ("i_contract", "i_id", "i_status", "i_failure", "i_signer", "i_solver", "i_kinds", "i_tokens",
            "i_amounts", "i_referral", "i_action", "i_deadline", "i_receipt", "i_txs", "i_gas", "i_first_h",
            "i_last_h", "i_first_ms", "i_last_ms", "i_verified_n", "i_verified_ms", "i_attempts")


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


def get_intent(store: Store, intent_id: str, contract: str | None = None) -> Intent | None:
    """The latest state of one intent (a dip4 hash or a workshop id), or None when unknown.
    Without ``contract``, an id that several Verifiers hold answers with the newest."""
    inner, params = "intent_id = {id:String}", {"id": intent_id}
    if contract:
        inner += " AND contract_id = {contract:String}"
        params["contract"] = contract
    rows = _fold(store, inner, "1", params, limit=1)
    return rows[0][1] if rows else None


def list_intents(store: Store, f: Filters, limit: int, after: Key | None = None) -> tuple[list[Intent], Key | None]:
    """One page, newest first by first appearance; the key to pass for the next page, if any."""
    inner, outer, params = ["1"], ["1"], {}
    if f.contract:
        inner.append("contract_id = {contract:String}")
        params["contract"] = f.contract
    if f.account:
        # Only intents some update of which names the account; the fold then checks the latest.
        inner.append(_ACCOUNT_INNER)
        outer.append("has([i_signer, i_solver, i_referral], {account:String})")
        params["account"] = f.account
    if f.solver:
        inner.append("intent_id IN (SELECT intent_id FROM {table} WHERE solver_id = {solver:String})")
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
    rows = _fold(store, _ACCOUNT_INNER, "has([i_signer, i_solver, i_referral], {account:String}) AND "
                 "i_last_h > {h:UInt64}", {"account": account, "h": height}, limit,
                 order="i_last_h, i_contract, i_id")
    return [intent for _, intent in rows]


_ACCOUNT_INNER = ("intent_id IN (SELECT intent_id FROM {table} WHERE signer_id = {account:String} "
                  "OR solver_id = {account:String} OR referral = {account:String})")


def _fold(store: Store, inner: str, outer: str, params: dict[str, Any], limit: int,
          order: str = _NEWEST_FIRST) -> list[tuple[Key, Intent]]:
    table = store.table("intent_updates")
    fold = _FOLD.replace("{table}", table).replace("{inner}", inner.replace("{table}", table))
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
    last = _time(r["i_last_ms"])
    signer, solver, referral = r["i_signer"] or None, r["i_solver"] or None, r["i_referral"] or None
    intent = Intent(
        intent_hash=r["i_id"], contract_id=r["i_contract"], status=status,
        relay_status=RELAY_STATUS.get(status, "NOT_FOUND_OR_NOT_VALID"),
        terminal=_terminal(status, r["i_deadline"], datetime.now(timezone.utc)), failure=r["i_failure"] or None,
        kinds=list(r["i_kinds"]), action=r["i_action"] or None, signer_id=signer, solver_id=solver,
        referral=referral, accounts=list(dict.fromkeys(a for a in (signer, solver, referral) if a)),
        tokens=[TokenAmount(token=t, amount=a) for t, a in zip(r["i_tokens"], r["i_amounts"])],
        deadline=r["i_deadline"] or None, attempts=int(r["i_attempts"]), first_block_height=int(r["i_first_h"]),
        last_block_height=int(r["i_last_h"]), first_seen=_time(r["i_first_ms"]), last_seen=last,
        verified_at=verified, completed_at=last if done else None,
        latency_s=(last - verified).total_seconds() if done and verified else None,
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
