"""Solver economics and bridge health (README "Rollups", "Token flows and bridges").

Three families on the same machinery as the others (``buckets.recompute``):

* ``token_flows``: per contract, role (``solver`` / ``user``), account (the solver; ``*`` for
  users, who are unbounded) and token, from the ``token_diff`` events of successful receipts:
  settlements (receipts), intents, the positive side of the diffs, the negative side (as a
  positive number) and ``fees_collected``. A failed batch's logs carry ``fees_collected`` too:
  they are never counted. Amounts are Int256 parsed from the decimal strings, never floats.
  The role of an item is ``solver`` when its signer is the solver the decoder attributed to the
  intent (``intent_updates.solver_id`` of the same receipt and intent hash).
* ``solver_costs``: per contract and solver (and ``*``), from successful solver executions:
  settlements, intents settled and gas burnt, so gas per settlement and per intent are exact
  ratios of exact sums.
* ``bridge_flows``: per contract and token (with its token contract, from which the bridge is
  derived when read: ``indexer/bridges.py``): withdrawals started (dip4 ``*_withdraw`` events),
  their resolution (``*_resolve_withdraw`` receipts: ok, refunded when the callback minted the
  tokens back with memo ``refund``, failed when the callback itself failed; reasons kept), the
  time from the withdrawal to its resolution, and deposits (``mt_mint`` on the contract, other
  than refunds), also per path: the ``ft_on_transfer`` / ``mt_on_transfer`` receipt that minted them.

Every row of a 1-minute bucket is read from receipts of that minute, except the withdrawal time
of a resolution, looked up by transaction hash and token at most ``RESOLVE_HORIZON`` seconds
earlier. The family's ``lookahead`` makes a commit touch that many seconds of buckets after its
rows, so a withdrawal written after its resolution was rolled up (a late backfill) still updates
the resolution's bucket: exact by construction, like the other families.
"""

from __future__ import annotations

from typing import Any

from indexer.rollup.families import QUANTILES, Column, Family, _sum

_Q = ", ".join(str(q) for q in QUANTILES)
RESOLVE_HORIZON = 900  # seconds: a resolution later than this after its withdrawal is not timed
WITHDRAW_EVENTS = ("ft_withdraw", "mt_withdraw", "nft_withdraw", "native_withdraw")
RESOLVE_METHODS = ("ft_resolve_withdraw", "mt_resolve_withdraw", "nft_resolve_withdraw")
# deposit paths: the receipt whose mt_mint is a deposit was called by a NEP-141 / NEP-245 transfer_call
DEPOSIT_METHODS = ("ft_on_transfer", "mt_on_transfer")
NATIVE_TOKEN = "nep141:wrap.near"  # native_withdraw pays out unwrapped wNEAR
# the account of a token id: nep141:<acct>, nep245:<acct>:<id>, nep171:<acct>:<id>
TOKEN_CONTRACT_SQL = "if(position(token, ':') > 0, splitByChar(':', token)[2], token)"

# one JSON object per item: dip4 and NEP-245 data are lists, some contracts log one object
_ITEMS = "if(startsWith(data, '['), JSONExtractArrayRaw(data), [data])"


def _window(lo: int, hi: int, back: int = 0) -> str:
    return f"block_timestamp >= toDateTime({lo - back}, 'UTC') AND block_timestamp < toDateTime({hi}, 'UTC')"


def _in(values: tuple[str, ...]) -> str:
    return ", ".join(f"'{v}'" for v in values)


# --- token_flows ---------------------------------------------------------------------------------

def token_flow_rows(store: Any, lo: int, hi: int) -> str:
    """One row per (token_diff item, token it moved or paid a fee in) of successful receipts."""
    T = store.table
    items = (f"SELECT block_timestamp, contract_id, receipt_id, JSONExtractString(item, 'intent_hash') AS item_hash, "
             f"JSONExtractString(item, 'account_id') AS account, "
             f"JSONExtract(item, 'diff', 'Map(String, String)') AS diff, "
             f"JSONExtract(item, 'fees_collected', 'Map(String, String)') AS fees "
             f"FROM {T('events')} ARRAY JOIN {_ITEMS} AS item "
             f"WHERE standard = 'dip4' AND event = 'token_diff' AND execution_status = 'success' AND {_window(lo, hi)}")
    solvers = (f"SELECT receipt_id AS s_receipt, intent_id AS s_hash, any(solver_id) AS s_solver "
               f"FROM {T('intent_updates')} WHERE status = 'executed' AND solver_id != '' AND {_window(lo, hi)} "
               f"GROUP BY s_receipt, s_hash")
    return (f"(SELECT block_timestamp, contract_id, receipt_id, item_hash, "
            f"if(s_solver != '' AND s_solver = account, 'solver', 'user') AS role, "
            f"if(role = 'solver', account, '*') AS who, token, "
            f"toInt256OrZero(diff[token]) AS delta, toInt256OrZero(fees[token]) AS fee "
            f"FROM ({items}) AS i LEFT JOIN ({solvers}) AS s ON i.receipt_id = s.s_receipt AND i.item_hash = s.s_hash "
            f"ARRAY JOIN arrayDistinct(arrayConcat(mapKeys(diff), mapKeys(fees))) AS token)")


TOKEN_FLOWS = Family(
    "token_flows", "events", "",
    (("contract_id", "contract_id"), ("role", "role"), ("account_id", "who"), ("token", "token")),
    (
        # a receipt lies in one minute, so distinct receipts (and items) per minute add up exactly
        _sum("settlements", "uniqExact(receipt_id)"),
        _sum("intents", "uniqExact(receipt_id, item_hash)"),
        _sum("volume_in", "sumIf(delta, delta > 0)"),
        _sum("volume_out", "-sumIf(delta, delta < 0)"),
        _sum("fees", "sum(fee)"),
    ),
    source=token_flow_rows,
)


# --- solver_costs --------------------------------------------------------------------------------

SOLVER_COSTS = Family(
    "solver_costs", "solver_executions",
    "ARRAY JOIN [toString(solver_id), '*'] AS solver",
    (("contract_id", "contract_id"), ("solver_id", "solver")),
    (
        _sum("settlements", "countIf(success = 1)"),
        _sum("intents", "sumIf(length(intent_ids), success = 1)"),
        _sum("gas_burnt", "sumIf(toUInt128(gas_burnt), success = 1)"),
    ),
)


# --- bridge_flows --------------------------------------------------------------------------------

def _withdraw_pairs() -> str:
    """(token id, amount) pairs of one withdraw event item (``c``: its token contract)."""
    amount = "JSONExtractString(item, 'amount')"
    mt = ("arrayMap((i, k) -> (concat('nep245:', c, ':', i), JSONExtract(item, 'amounts', 'Array(String)')[k]), "
          "JSONExtract(item, 'token_ids', 'Array(String)'), "
          "arrayEnumerate(JSONExtract(item, 'token_ids', 'Array(String)')))")
    return (f"multiIf(event = 'mt_withdraw', {mt}, "
            f"event = 'nft_withdraw', [(concat('nep171:', c, ':', JSONExtractString(item, 'token_id')), '1')], "
            f"event = 'native_withdraw', [('{NATIVE_TOKEN}', {amount})], "
            f"[(concat('nep141:', c), {amount})])")


def _withdraws(store: Any, lo: int, hi: int, back: int = 0) -> str:
    """One row per withdrawn token of the withdraw events of successful receipts."""
    return (f"SELECT block_timestamp, contract_id, tx_hash, pair.1 AS token, toInt256OrZero(pair.2) AS amount "
            f"FROM (SELECT block_timestamp, contract_id, tx_hash, event, item, JSONExtractString(item, 'token') AS c "
            f"FROM {store.table('events')} ARRAY JOIN {_ITEMS} AS item "
            f"WHERE standard = 'dip4' AND event IN ({_in(WITHDRAW_EVENTS)}) AND execution_status = 'success' "
            f"AND {_window(lo, hi, back)}) ARRAY JOIN {_withdraw_pairs()} AS pair")


def _mints(store: Any, lo: int, hi: int, refunds: bool) -> str:
    """One row per token of the contract's own ``mt_mint`` items: refunds, or deposits (the rest)."""
    memo = "= 'refund'" if refunds else "!= 'refund'"
    return (f"SELECT block_timestamp, contract_id, receipt_id, pair.1 AS token, toInt256OrZero(pair.2) AS amount "
            f"FROM (SELECT block_timestamp, contract_id, receipt_id, item FROM {store.table('events')} "
            f"ARRAY JOIN {_ITEMS} AS item WHERE standard = 'nep245' AND event = 'mt_mint' "
            f"AND execution_status = 'success' AND JSONExtractString(item, 'memo') {memo} AND {_window(lo, hi)}) "
            f"ARRAY JOIN arrayZip(JSONExtract(item, 'token_ids', 'Array(String)'), "
            f"arrayResize(JSONExtract(item, 'amounts', 'Array(String)'), "
            f"length(JSONExtract(item, 'token_ids', 'Array(String)')))) AS pair")


def _resolves(store: Any, lo: int, hi: int) -> str:
    """One row per token of each ``*_resolve_withdraw`` receipt, with its outcome."""
    c = "JSONExtractString(args, 'token')"
    tokens = (f"multiIf(method_name = 'mt_resolve_withdraw', arrayMap((i, k) -> (concat('nep245:', {c}, ':', i), "
              f"JSONExtract(args, 'amounts', 'Array(String)')[k]), JSONExtract(args, 'token_ids', 'Array(String)'), "
              f"arrayEnumerate(JSONExtract(args, 'token_ids', 'Array(String)'))), "
              f"method_name = 'nft_resolve_withdraw', [(concat('nep171:', {c}, ':', JSONExtractString(args, 'token_id')), '1')], "
              f"[(concat('nep141:', {c}), JSONExtractString(args, 'amount'))])")
    resolves = (f"SELECT block_timestamp, receiver_id AS contract_id, receipt_id, tx_hash, status, failure, "
                f"pair.1 AS token, toInt256OrZero(pair.2) AS amount FROM {store.table('receipts')} "
                f"ARRAY JOIN {tokens} AS pair WHERE method_name IN ({_in(RESOLVE_METHODS)}) AND {_window(lo, hi)}")
    refunds = (f"SELECT receipt_id AS f_receipt, token AS f_token, sum(amount) AS refunded "
               f"FROM ({_mints(store, lo, hi, True)}) GROUP BY f_receipt, f_token")
    started = (f"SELECT tx_hash AS w_tx, token AS w_token, min(block_timestamp) AS w_at, 1 AS w_found "
               f"FROM ({_withdraws(store, lo, hi, RESOLVE_HORIZON)}) WHERE tx_hash != '' GROUP BY w_tx, w_token")
    outcome = "multiIf(status != 'success', 'failed', refunded > 0, 'refunded', 'ok')"
    reason = ("multiIf(status != 'success', if(failure = '', 'unknown', failure), refunded > 0, "
              "if(refunded >= amount, 'full refund', 'partial refund'), '')")
    seconds = (f"if(w_found = 1 AND tx_hash != '' AND w_at <= block_timestamp AND "
               f"w_at >= block_timestamp - {RESOLVE_HORIZON}, "
               f"toNullable(dateDiff('millisecond', w_at, block_timestamp) / 1000.0), NULL)")
    return (f"SELECT block_timestamp, contract_id, token, 'resolve' AS kind, {outcome} AS outcome, {reason} AS reason, "
            f"toInt256(0) AS amount, if(status = 'success', refunded, toInt256(0)) AS refund, {seconds} AS resolve_s "
            f"FROM ({resolves}) AS r "
            f"LEFT JOIN ({refunds}) AS f ON r.receipt_id = f.f_receipt AND r.token = f.f_token "
            f"LEFT JOIN ({started}) AS w ON r.tx_hash = w.w_tx AND r.token = w.w_token")


def _deposits(store: Any, lo: int, hi: int) -> str:
    """Deposit mints with their path: the method of the minting receipt if it is a deposit path, else ''.

    The mint and its receipt are the same block, so the receipt is looked up in the same window."""
    paths = (f"SELECT receipt_id AS p_receipt, any(toString(method_name)) AS p_method FROM {store.table('receipts')} "
             f"WHERE method_name IN ({_in(DEPOSIT_METHODS)}) AND {_window(lo, hi)} GROUP BY p_receipt")
    return (f"SELECT block_timestamp, contract_id, token, 'deposit' AS kind, p_method AS outcome, '' AS reason, "
            f"amount, toInt256(0) AS refund, CAST(NULL AS Nullable(Float64)) AS resolve_s "
            f"FROM ({_mints(store, lo, hi, False)}) AS m LEFT JOIN ({paths}) AS p ON m.receipt_id = p.p_receipt")


def bridge_flow_rows(store: Any, lo: int, hi: int) -> str:
    """Withdrawals, resolutions and deposits of [lo, hi) as one row set (``kind`` tells them apart;
    ``outcome`` is a resolution's outcome, or a deposit's path)."""
    none = "'' AS outcome, '' AS reason"
    nulls = "toInt256(0) AS refund, CAST(NULL AS Nullable(Float64)) AS resolve_s"
    withdraws = (f"SELECT block_timestamp, contract_id, token, 'withdraw' AS kind, {none}, amount, {nulls} "
                 f"FROM ({_withdraws(store, lo, hi)})")
    return (f"(SELECT *, {TOKEN_CONTRACT_SQL} AS token_contract FROM ({withdraws} UNION ALL "
            f"{_resolves(store, lo, hi)} UNION ALL {_deposits(store, lo, hi)}))")


def _resolved(outcome: str) -> str:
    return f"countIf(kind = 'resolve' AND outcome = '{outcome}')"


def _deposited(path: str) -> tuple[Column, Column]:
    prefix, where = path.split("_", 1)[0], f"kind = 'deposit' AND outcome = '{path}'"
    return _sum(f"{prefix}_deposits", f"countIf({where})"), _sum(f"{prefix}_deposited", f"sumIf(amount, {where})")

BRIDGE_FLOWS = Family(
    "bridge_flows", "events", "",
    (("contract_id", "contract_id"), ("token_contract", "token_contract"), ("token", "token")),
    (
        _sum("withdrawals", "countIf(kind = 'withdraw')"),
        _sum("withdrawn", "sumIf(amount, kind = 'withdraw')"),
        _sum("resolved", "countIf(kind = 'resolve')"),
        _sum("resolved_ok", _resolved("ok")),
        _sum("refunded", _resolved("refunded")),
        _sum("failed", _resolved("failed")),
        Column("failure_reasons",
               "sumMapIf(map(reason, toUInt64(1)), kind = 'resolve' AND outcome IN ('refunded', 'failed'))",
               "sumMap(failure_reasons)"),
        _sum("refunded_amount", "sum(refund)"),
        _sum("resolve_timed", "count(resolve_s)"),
        _sum("resolve_seconds_sum", "sum(ifNull(resolve_s, 0))"),
        Column("resolve_quantiles", f"quantilesExactState({_Q})(resolve_s)",
               f"quantilesExactMergeState({_Q})(resolve_quantiles)"),
        _sum("deposits", "countIf(kind = 'deposit')"),
        _sum("deposited", "sumIf(amount, kind = 'deposit')"),
        *_deposited("ft_on_transfer"),
        *_deposited("mt_on_transfer"),
    ),
    source=bridge_flow_rows,
    lookahead=RESOLVE_HORIZON,
)

ECONOMICS: tuple[Family, ...] = (TOKEN_FLOWS, SOLVER_COSTS, BRIDGE_FLOWS)
