"""Intent lookups that stay fast with history: by intent hash, account, solver, transaction; counts over time.

Each lookup reads a narrow range of a table ordered by what it looks up, then folds only the
updates of the intents it found (the ``intents`` view, filtered on its GROUP BY key before it
groups):

* by id: ``intent_updates`` is ordered by (contract_id, intent_id, ...);
* by account, solver, transaction: ``intent_lookups`` rows of kind ``account`` / ``solver`` /
  ``tx`` and that key, in chain order; "newest N" reads the end of the key's range backwards;
* counts over time: ``intent_status_counts``, a few rows per block (updates per contract and
  status), pruned by block time.

``intent_lookups`` and ``intent_status_counts`` rows are written and deleted by the writer with
the rest of their batch (owner ``receiver_id``, ``block_height``), so every answer equals a GROUP
BY over ``intent_updates`` whatever batches were replaced (README "intent_lookups").
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Callable

from indexer.store.client import Store

Intent = dict[str, Any]

# Point reads touch a granule or two per part: one thread each, so that they do not queue behind
# each other's thread pools on a busy machine.
_POINT = {"max_threads": 1}

# the update the "newest" order goes by: (block_height, update_index) of an intent's latest update
Cursor = tuple[int, int]


@dataclass(frozen=True)
class Page:
    """Intents newest first, and the cursor to pass as ``before`` for the next page (None: no more)."""

    intents: list[Intent]
    next_before: Cursor | None


def intent(store: Store, intent_id: str, contract_id: str | None = None) -> list[Intent]:
    """The intent(s) with this id: one per contract that knows it (usually one)."""
    return _fold(store, [(contract_id, intent_id)] if contract_id else None, ids=[intent_id])


def attempts(store: Store, intent_id: str, contract_id: str | None = None) -> list[Intent]:
    """Every update of the intent in chain order: each receipt that tried it, with its outcome and reason."""
    where = "intent_id = {id:String}" + (" AND contract_id = {c:String}" if contract_id else "")
    cols, rows = store.query(
        f"SELECT contract_id, intent_id, block_height, block_timestamp, update_index, status, failure, receipt_id, "
        f"tx_hash, method_name, submitted_height, submitted_at FROM {store.table('intent_updates')} "
        f"WHERE {where} ORDER BY contract_id, block_height, update_index",
        {"id": intent_id, "c": contract_id or ""}, settings=_POINT)
    return [dict(zip(cols, r)) for r in rows]


def by_tx(store: Store, tx_hash: str) -> list[Intent]:
    """Intents that a transaction carried or moved (any of their updates came from its receipts)."""
    return _fold_where(store, f"intent_id IN (SELECT intent_id FROM {store.table('intent_lookups')} "
                              "WHERE kind = 'tx' AND key = {v:String})", {"v": tx_hash},
                       keep=lambda updates: any(u["tx_hash"] == tx_hash for u in updates))


def by_account(store: Store, account: str, limit: int = 50, before: Cursor | None = None) -> Page:
    """An account's intents (signed by it, or moving tokens to it), newest latest update first."""
    return _newest(store, "account", account, limit, before)


def by_solver(store: Store, solver_id: str, limit: int = 50, before: Cursor | None = None) -> Page:
    """A solver's intents, newest latest update first."""
    return _newest(store, "solver", solver_id, limit, before)


def status_counts(store: Store, contract_id: str, start: dt.datetime, end: dt.datetime,
                  bucket_s: int = 3600) -> list[tuple[dt.datetime, str, int]]:
    """(bucket start, status, updates) for block times in [start, end): per bucket of ``bucket_s``
    seconds, how many intent updates had each status: intents that reached it there, and for
    ``failed`` every failed attempt (a replay of an executed intent, a try before a retry)."""
    _, rows = store.query(
        f"SELECT toStartOfInterval(block_timestamp, toIntervalSecond({{b:UInt32}})) AS t, status, "
        f"sum(updates) FROM {store.table('intent_status_counts')} WHERE contract_id = {{c:String}} "
        "AND block_timestamp >= {lo:DateTime64(3, 'UTC')} AND block_timestamp < {hi:DateTime64(3, 'UTC')} "
        "GROUP BY t, status ORDER BY t, status",
        {"b": int(bucket_s), "c": contract_id, "lo": _utc(start), "hi": _utc(end)}, settings=_POINT)
    return [(_aware(t), s, int(n)) for t, s, n in rows]


# --- helpers ---------------------------------------------------------------------------------

def _newest(store: Store, kind: str, key: str, limit: int, before: Cursor | None) -> Page:
    """The ``limit`` intents whose newest row under this key is newest, reading the key's range backwards.

    An intent has a few updates, so ~``limit`` rows usually suffice; when duplicates leave the
    page short, twice as many rows are read, until the key's range is exhausted.
    """
    if limit <= 0:
        return Page([], None)
    found: dict[tuple[str, str], Cursor] = {}
    seen: set[tuple[str, str]] = set()
    cursor = before
    want = limit * 3
    while len(found) < limit:
        bound = "" if cursor is None else " AND (block_height, update_index) < ({h:UInt64}, {i:UInt64})"
        _, rows = store.query(
            f"SELECT contract_id, intent_id, block_height, update_index FROM {store.table('intent_lookups')} "
            f"WHERE kind = {{k:String}} AND key = {{v:String}}{bound} "
            "ORDER BY block_height DESC, update_index DESC LIMIT {n:UInt32}",
            {"k": kind, "v": key, "h": cursor[0] if cursor else 0, "i": cursor[1] if cursor else 0, "n": want},
            settings=_POINT)
        fresh: dict[tuple[str, str], Cursor] = {}
        for c, i, h, u in rows:
            if (c, i) not in seen:
                seen.add((c, i))
                fresh[(c, i)] = (h, u)
        if before is not None and fresh:  # shown on an earlier page: it has a row at or after the cursor
            shown = _rows_since(store, kind, key, list(fresh), before)
            fresh = {k: v for k, v in fresh.items() if k not in shown}
        for k, v in fresh.items():
            if len(found) == limit:
                break
            found[k] = v
        if len(rows) < want:
            break
        cursor = (rows[-1][2], rows[-1][3])
        want *= 2
    order = sorted(found.items(), key=lambda kv: kv[1], reverse=True)[:limit]
    intents = {(r["contract_id"], r["intent_id"]): r for r in _fold(store, [k for k, _ in order])}
    page = [intents[k] | {"cursor": v} for k, v in order if k in intents]
    more = len(order) == limit
    return Page(page, order[-1][1] if more else None)


def _rows_since(store: Store, kind: str, key: str, keys: list[tuple[str, str]], before: Cursor) -> set[tuple[str, str]]:
    """Those of ``keys`` with a row under the key at or after ``before``."""
    _, rows = store.query(
        f"SELECT DISTINCT contract_id, intent_id FROM {store.table('intent_lookups')} "
        "WHERE kind = {k:String} AND key = {v:String} AND (block_height, update_index) >= ({h:UInt64}, {u:UInt64}) "
        "AND intent_id IN {ids:Array(String)}",
        {"k": kind, "v": key, "h": before[0], "u": before[1], "ids": [i for _, i in keys]}, settings=_POINT)
    return {(c, i) for c, i in rows} & set(keys)


# the columns of intent_updates a fold reads
_UPDATE_COLUMNS = ("contract_id", "intent_id", "block_height", "update_index", "block_timestamp", "status", "failure",
                   "signer_id", "solver_id", "kinds", "tokens", "amounts", "referral", "action", "deadline",
                   "accounts", "receipt_id", "tx_hash", "gas_burnt", "submitted_height", "submitted_at")
_OUTCOMES = frozenset({"executed", "failed", "completed", "expired"})


def _fold(store: Store, keys: list[tuple[str | None, str]] | None, ids: list[str] | None = None) -> list[Intent]:
    """Rows of the ``intents`` view for these (contract_id, intent_id) keys (or any contract for ``ids``).

    The updates are read by the sort key of ``intent_updates`` and folded here (``fold``): the
    view's SQL costs more to plan than a point lookup may take."""
    if keys is not None:
        if not keys:
            return []
        ids = sorted({i for _, i in keys})
    wanted = None if keys is None else set(keys)
    return _fold_where(store, "intent_id IN {ids:Array(String)}", {"ids": ids},
                       keep=lambda updates: wanted is None or (updates[0]["contract_id"], updates[0]["intent_id"]) in wanted)


def _fold_where(store: Store, where: str, parameters: dict[str, Any],
                keep: Callable[[list[dict[str, Any]]], bool]) -> list[Intent]:
    """Fold the updates of every intent matching ``where`` (a condition on intent_id) that ``keep`` accepts."""
    cols, rows = store.query(
        f"SELECT {', '.join(_UPDATE_COLUMNS)} FROM {store.table('intent_updates')} WHERE {where} "
        "ORDER BY contract_id, intent_id, block_height, update_index", parameters, settings=_POINT)
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        u = dict(zip(cols, r))
        groups.setdefault((u["contract_id"], u["intent_id"]), []).append(u)
    return [fold(updates) for updates in groups.values() if keep(updates)]


def fold(updates: list[dict[str, Any]]) -> Intent:
    """One intent's updates (in chain order) -> its row of the ``intents`` view, by the same rules
    (migrations/0004_intent_lookups.sql; tests/test_lookups.py checks they agree)."""
    last = updates[-1]
    executed = [u for u in updates if u["status"] == "executed"]
    status = "executed" if executed else last["status"]

    def latest(column: str) -> Any:
        return next((u[column] for u in reversed(updates) if u[column]), type(last[column])())

    def first_time(*statuses: str) -> Any:
        return next((u["block_timestamp"] for u in updates if u["status"] in statuses), None)

    submitted = [u for u in updates if u["submitted_height"] is not None]
    submitted_at = min((u["submitted_at"] for u in updates if u["submitted_at"] is not None), default=None)
    verified_at, executed_at = first_time("verified"), first_time("executed", "completed")
    last_seen = max(u["block_timestamp"] for u in updates)
    if verified_at is not None:
        latency = _seconds(verified_at, executed_at) if status == "completed" else None
    else:
        latency = _seconds(submitted_at, executed_at) if status == "executed" and submitted_at is not None else None
    return {
        "contract_id": last["contract_id"], "intent_id": last["intent_id"], "status": status,
        "failure": "" if status == "executed" else last["failure"],
        **{c: latest(c) for c in ("signer_id", "solver_id", "kinds", "tokens", "amounts", "referral", "action",
                                  "deadline")},
        "accounts": sorted({a for u in updates for a in u["accounts"]}),
        "receipt_id": (executed or updates)[-1]["receipt_id"],
        "tx_hash": next((u["tx_hash"] for u in updates if u["tx_hash"]), ""),
        "gas_burnt": sum(g for _, g in {(u["receipt_id"], u["gas_burnt"]) for u in updates}),
        "attempts": len({u["receipt_id"] for u in updates if u["status"] in _OUTCOMES}),
        "submitted_height": min((u["submitted_height"] for u in submitted), default=None),
        "submitted_at": submitted_at,
        "first_seen": min(u["block_timestamp"] for u in updates), "last_seen": last_seen,
        "block_height": max(u["block_height"] for u in updates),
        "verified_at": verified_at, "first_failed_at": first_time("failed"), "executed_at": executed_at,
        "completed_at": executed_at if status in ("completed", "executed") else None,
        "status_at": executed_at if status == "executed" else last_seen,
        "latency_s": latency,
    }


def _seconds(start: Any, end: Any) -> float | None:
    if start is None or end is None:
        return None
    return ((end - start) // dt.timedelta(milliseconds=1)) / 1000.0


def _utc(t: dt.datetime) -> str:
    if t.tzinfo is not None:
        t = t.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return t.isoformat(sep=" ", timespec="milliseconds")


def _aware(v: Any) -> Any:
    if isinstance(v, dt.datetime) and v.tzinfo is None:
        return v.replace(tzinfo=dt.timezone.utc)
    return v
