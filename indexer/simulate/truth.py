"""The exact answers for a simulated lake, accumulated while it is generated (never read back).

``truth.json`` (``format: "near-intents-indexer/simulate-truth"``, ``version: 1``) holds:

``generator``
    Every simulate option, so a run can be repeated byte for byte.
``blocks``
    ``first_height`` / ``last_height`` (both exist), ``heights`` (last - first + 1), ``count``
    (existing blocks), ``skipped_heights`` (sorted list), ``missing_chunks`` (``[height, shard_id]``
    pairs: the shard file has ``"chunk": null`` and no outcomes), ``shard_ids`` (in chunk order),
    ``protocol_version``, ``first_timestamp_ns`` / ``last_timestamp_ns``, ``first_hash`` /
    ``last_hash`` and ``first_prev_hash`` / ``first_prev_height`` (the parent of the first block,
    which is not written), ``shard_files`` (all shard files) and ``shard_files_mentioning_tracked``
    (files whose bytes contain a tracked account name; the rest can be skipped by a decoder).
``contracts``
    Tracked contracts as ``"ACCOUNT:ROLE"`` (pass each to ``--contract``).
``solver_accounts``
    Solver accounts to pass to ``--solver-account``. Some intents.near solvers may be left out on
    purpose (``unlisted_solvers``): they are then attributed by the referral rule, or not at all.
``solvers``
    Every solver that exists, per contract: ``{"intents.near": [...], "verifier.workshop.near": [...]}``.
``totals``
    ``tracked_receipts`` (execution outcomes of receipts received by tracked contracts),
    ``events`` (valid NEP-297 logs of those receipts, either status), ``solver_executions``,
    ``intents``, ``dead_letters``, ``unfinished_receipts`` (receipts still scheduled after the
    last block; 0 unless an incident pushed work past the end).
``receipts``
    Per contract: ``count``, ``success``, ``failure``, ``gas_burnt`` (sum), ``by_method``
    (``method -> {"success": n, "failure": n}``; ``""`` for receipts without a FunctionCall, e.g.
    gas refunds), ``failures`` (failure text -> count) and ``per_block`` (height as a string ->
    receipts executed by that contract in that block; heights with none are absent).
``events``
    Per contract: ``"standard:event" -> {"success": n, "failure": n}`` by the execution status of
    the receipt that logged it (logs written before a panic count as ``failure``).
``solver_executions``
    Per contract (the verifier the execution belongs to: ``intents.near``, or the workshop verifier
    for ``solve_intent`` receipts), per solver: ``executions``, ``successes``, ``failures``
    (failure text -> count), ``gas_burnt`` (sum), ``gas_buckets`` (``indexer.gas.bucket_label``
    -> count) and ``latency_s`` (``{"count", "sum", "min", "max"}``; workshop only, else null).
``intents``
    Per contract: ``by_status`` (final status -> count), ``failures`` (failure text of intents
    whose final status is ``failed`` or ``expired`` -> count), ``per_minute`` (UTC minute
    ``"YYYY-MM-DD HH:MM:00"`` of the block in which an intent reached its final status ->
    ``{status: count}``) and ``attempts`` (number of receipts that decided an outcome for one
    intent -> intents with that many; replays and retries make it above 1). ``executed`` is
    final: a failed replay of an executed payload is an attempt, not a new status. Statuses: intents.near ``executed`` / ``failed``; workshop
    ``completed`` / ``failed`` / ``expired`` (``pending``, ``verified``, ``executing`` only for
    intents unfinished at the last block).
``dead_letters``
    ``{"total": n, "by_kind": {"log": n, "args": n}}``: one ``log`` per malformed EVENT_JSON line
    and one ``args`` per failed intents.near call whose arguments are not JSON or per ``bip322``
    payload (a standard with no intent hash) riding in a batch (``--malformed-rate``).
``incidents``
    The incidents applied, with their block offsets and heights.
``withdrawals``
    Per contract, per token id (``nep141:<acct>`` / ``nep245:<acct>:<id>``): ``started`` (withdraw
    events of successful receipts), ``ok``, ``refunded`` and ``failed`` (``*_resolve_withdraw``
    callbacks by outcome), ``failures`` (failure text of the failed callbacks -> count) and
    ``refunded_amount`` (decimal string; tokens minted back by successful refunding callbacks).
``deposits``
    Per contract, per token id, per method of the receipt that minted it (``ft_on_transfer`` /
    ``mt_on_transfer``): ``{"count", "amount"}`` (amount a decimal string), successful receipts only.
``details`` (unless ``--no-truth-details``)
    ``intents``: ``[contract, intent_id, status, failure, signer_id, solver_id, attempts]`` per intent;
    ``solver_executions``: ``[contract, solver_id, receipt_id, success (0/1), failure, gas_burnt,
    block_height, latency_s, tx_hash]`` per execution (``tx_hash``: the transaction that started the
    receipt chain). intents.near intent ids are the intent hash of the signed payload (what its
    events carry when it executes), for failed payloads too; workshop intent ids are the intent
    ``id``.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from indexer.gas import bucket_label

FORMAT = "near-intents-indexer/simulate-truth"
VERSION = 2
TERMINAL = frozenset({"executed", "failed", "completed", "expired"})


def minute_of(ts_ns: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:00", time.gmtime(ts_ns // 1_000_000_000))


def _counter() -> defaultdict[str, int]:
    return defaultdict(int)


@dataclass
class _ReceiptStats:
    count: int = 0
    success: int = 0
    failure: int = 0
    gas_burnt: int = 0
    by_method: dict[str, dict[str, int]] = field(default_factory=dict)
    failures: defaultdict[str, int] = field(default_factory=_counter)
    per_block: defaultdict[int, int] = field(default_factory=_counter)


@dataclass
class _SolverStats:
    executions: int = 0
    successes: int = 0
    failures: defaultdict[str, int] = field(default_factory=_counter)
    gas_burnt: int = 0
    gas_buckets: defaultdict[str, int] = field(default_factory=_counter)
    latency: list[float] | None = None  # [count, sum, min, max]


@dataclass
class _Intent:
    status: str
    failure: str
    signer_id: str
    solver_id: str
    status_ns: int = 0  # block time at which the current status was reached
    attempts: int = 0  # receipts that decided an outcome: executed, failed, completed, expired


class Truth:
    """Accumulates what the indexer must find; ``to_dict`` renders ``truth.json``."""

    def __init__(self, contracts: list[tuple[str, str]], solver_accounts: list[str],
                 solvers: dict[str, list[str]], details: bool = True):
        self.contracts = contracts
        self.tracked = {account for account, _ in contracts}
        self.solver_accounts = solver_accounts
        self.solvers = solvers
        self.details = details
        self.receipts: dict[str, _ReceiptStats] = {a: _ReceiptStats() for a, _ in contracts}
        self.events: dict[str, dict[str, dict[str, int]]] = {a: {} for a, _ in contracts}
        self.executions: dict[str, dict[str, _SolverStats]] = defaultdict(dict)
        self.execution_rows: list[list[Any]] = []
        self.intents: dict[str, dict[str, _Intent]] = defaultdict(dict)
        self.dead: defaultdict[str, int] = defaultdict(int)
        self.unfinished_receipts = 0
        # contract -> token -> counters (see ``withdrawal`` and ``deposit``)
        self.withdrawals: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
        self.deposits: dict[str, dict[str, dict[str, dict[str, int]]]] = defaultdict(dict)

    # --- recording, called by the generators at the moment something executes ---

    def receipt(self, contract: str, height: int, method: str, success: bool, failure: str, gas_burnt: int,
                events: list[tuple[str, str]]) -> None:
        st = self.receipts[contract]
        st.count += 1
        st.gas_burnt += gas_burnt
        label = "success" if success else "failure"
        if success:
            st.success += 1
        else:
            st.failure += 1
            st.failures[failure] += 1
        st.by_method.setdefault(method, {"success": 0, "failure": 0})[label] += 1
        st.per_block[height] += 1
        ev = self.events[contract]
        for standard, name in events:
            ev.setdefault(f"{standard}:{name}", {"success": 0, "failure": 0})[label] += 1

    def solver_execution(self, contract: str, solver: str, receipt_id: str, success: bool, failure: str,
                         gas_burnt: int, height: int, latency_s: float | None = None, tx_hash: str = "") -> None:
        st = self.executions[contract].get(solver)
        if st is None:
            st = self.executions[contract][solver] = _SolverStats()
        st.executions += 1
        if success:
            st.successes += 1
        else:
            st.failures[failure] += 1
        st.gas_burnt += gas_burnt
        st.gas_buckets[bucket_label(gas_burnt)] += 1
        if latency_s is not None:
            if st.latency is None:
                st.latency = [0, 0.0, latency_s, latency_s]
            lat = st.latency
            lat[0] += 1
            lat[1] += latency_s
            lat[2] = min(lat[2], latency_s)
            lat[3] = max(lat[3], latency_s)
        if self.details:
            self.execution_rows.append([contract, solver, receipt_id, int(success), failure, gas_burnt, height,
                                        latency_s, tx_hash])

    def intent(self, contract: str, intent_id: str, status: str, ts_ns: int, *, failure: str = "",
               signer_id: str | None = None, solver_id: str | None = None) -> None:
        """An intent's status changes. ``executed`` is final: a later failed receipt (a replay of
        the same payload) is one more attempt, not a new status."""
        cur = self.intents[contract].get(intent_id)
        if cur is None:
            cur = self.intents[contract][intent_id] = _Intent(status, failure, signer_id or "", solver_id or "",
                                                              ts_ns)
        elif cur.status == "executed":
            pass
        else:
            cur.status, cur.failure, cur.status_ns = status, failure, ts_ns
            if signer_id:
                cur.signer_id = signer_id
            if solver_id:
                cur.solver_id = solver_id
        if status in TERMINAL:
            cur.attempts += 1

    def dead_letter(self, kind: str) -> None:
        self.dead[kind] += 1

    def withdrawal(self, contract: str, token: str, outcome: str, failure: str = "", refunded: int = 0) -> None:
        """A withdrawal ``started`` (its event, in a successful receipt), or its resolve callback ran:
        ``ok``, ``refunded`` (``refunded`` tokens minted back) or ``failed`` (the callback's failure text)."""
        st = self.withdrawals[contract].setdefault(token, {"started": 0, "ok": 0, "refunded": 0, "failed": 0,
                                                          "failures": defaultdict(int), "refunded_amount": 0})
        st[outcome] += 1
        st["refunded_amount"] += refunded
        if outcome == "failed":
            st["failures"][failure] += 1

    def deposit(self, contract: str, token: str, method: str, amount: int) -> None:
        """Tokens minted on ``contract`` by a successful ``ft_on_transfer`` / ``mt_on_transfer`` (``method``)."""
        st = self.deposits[contract].setdefault(token, {}).setdefault(method, {"count": 0, "amount": 0})
        st["count"] += 1
        st["amount"] += amount

    # --- rendering ---

    def to_dict(self, generator: dict[str, Any], blocks: dict[str, Any],
                incidents: list[dict[str, Any]]) -> dict[str, Any]:
        receipts = {}
        for c, st in self.receipts.items():
            receipts[c] = {
                "count": st.count, "success": st.success, "failure": st.failure, "gas_burnt": st.gas_burnt,
                "by_method": {m: st.by_method[m] for m in sorted(st.by_method)},
                "failures": dict(sorted(st.failures.items())),
                "per_block": {str(h): n for h, n in sorted(st.per_block.items())},
            }
        events = {c: {k: ev[k] for k in sorted(ev)} for c, ev in self.events.items()}
        executions: dict[str, dict[str, Any]] = {}
        for c in sorted(self.executions):
            executions[c] = {}
            for s in sorted(self.executions[c]):
                st = self.executions[c][s]
                lat = st.latency
                executions[c][s] = {
                    "executions": st.executions, "successes": st.successes,
                    "failures": dict(sorted(st.failures.items())), "gas_burnt": st.gas_burnt,
                    "gas_buckets": dict(sorted(st.gas_buckets.items(), key=lambda kv: _bucket_order(kv[0]))),
                    "latency_s": None if lat is None else {
                        "count": lat[0], "sum": round(lat[1], 6), "min": lat[2], "max": lat[3]},
                }
        intents: dict[str, Any] = {}
        detail_intents: list[list[Any]] = []
        for c in sorted(self.intents):
            by_status: dict[str, int] = defaultdict(int)
            failures: dict[str, int] = defaultdict(int)
            per_minute: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
            attempts: dict[int, int] = defaultdict(int)
            for intent_id, it in self.intents[c].items():
                by_status[it.status] += 1
                attempts[it.attempts] += 1
                if it.status in ("failed", "expired"):
                    failures[it.failure] += 1
                if it.status in TERMINAL:
                    per_minute[minute_of(it.status_ns)][it.status] += 1
                if self.details:
                    detail_intents.append([c, intent_id, it.status, it.failure, it.signer_id, it.solver_id,
                                           it.attempts])
            intents[c] = {
                "by_status": dict(sorted(by_status.items())),
                "failures": dict(sorted(failures.items())),
                "per_minute": {m: dict(sorted(v.items())) for m, v in sorted(per_minute.items())},
                "attempts": {str(n): k for n, k in sorted(attempts.items())},
            }
        n_events = sum(sum(v.values()) for ev in events.values() for v in ev.values())
        n_exec = sum(st.executions for per in self.executions.values() for st in per.values())
        n_intents = sum(len(v) for v in self.intents.values())
        out: dict[str, Any] = {
            "format": FORMAT,
            "version": VERSION,
            "generator": generator,
            "blocks": blocks,
            "contracts": [f"{a}:{r}" for a, r in self.contracts],
            "solver_accounts": list(self.solver_accounts),
            "solvers": self.solvers,
            "totals": {
                "tracked_receipts": sum(st.count for st in self.receipts.values()),
                "events": n_events,
                "solver_executions": n_exec,
                "intents": n_intents,
                "dead_letters": sum(self.dead.values()),
                "unfinished_receipts": self.unfinished_receipts,
            },
            "receipts": receipts,
            "events": events,
            "solver_executions": executions,
            "intents": intents,
            "dead_letters": {"total": sum(self.dead.values()), "by_kind": dict(sorted(self.dead.items()))},
            "incidents": incidents,
            "withdrawals": {c: {t: {**st, "failures": dict(sorted(st["failures"].items())),
                                    "refunded_amount": str(st["refunded_amount"])}
                                for t, st in sorted(per.items())} for c, per in sorted(self.withdrawals.items())},
            "deposits": {c: {t: {m: {"count": v["count"], "amount": str(v["amount"])} for m, v in sorted(paths.items())}
                             for t, paths in sorted(per.items())} for c, per in sorted(self.deposits.items())},
        }
        if self.details:
            out["details"] = {"intents": detail_intents, "solver_executions": self.execution_rows}
        return out


def _bucket_order(label: str) -> float:
    return float("inf") if label == "+Inf" else float(label)
