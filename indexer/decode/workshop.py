"""The workshop Verifier and Solver contracts: plain-text logs and method calls -> intent lifecycle.

Verifier (role ``workshop-verifier``):
  * ``verify_intent({"intent": I})``, ``verify_and_solve({"intent": I, "solver_account": S})``,
    ``verify_multiple_intents({"intents": [I, ...]})`` -> ``pending`` with the intent's fields
    (I = ``{"id", "user_account", "action", "input_token", "input_amount", "output_token",
    "min_output_amount", "max_slippage", "deadline"}``); a failed verify receipt -> ``expired``
    when its panic mentions expiry or the deadline, else ``failed`` with the panic text.
  * logs ``Intent verified: {id}`` and ``Verified intent {id}, calling solver at {solver}``
    -> ``verified``; ``Intent {id} was successfully solved`` -> ``completed``;
    ``Intent {id} execution failed at solver`` -> ``failed`` ("execution failed at solver").
Solver (role ``workshop-solver``):
  * ``solve_intent({"intent_id", "user", "input_amount"})`` -> one ``solver_executions`` row:
    success when the receipt succeeded and its return value ``{"intent_id", "success",
    "output_amount", "fee_amount"}`` says ``success: true``; failure is the panic text or
    "solver returned success=false"; latency is the time since the intent was verified.
    Log ``Executing intent {id} for user {user}`` -> ``executing``.
Intents belong to the verifier: a solver receipt's updates and executions are filed under its
predecessor when that is a tracked workshop verifier, else under the solver itself.
NEP-297 logs with ``"standard": "near_intent"`` (``intent_verified``, ``intent_executing``,
``intent_solved``/``intent_completed``, ``intent_failed``, ``intent_expired``, ``intent_created``)
drive the same transitions. Logs of failed receipts never advance an intent.
"""

from __future__ import annotations

import re
from typing import Any

from indexer.decode.emit import Emitter
from indexer.decode.receipt import TrackedReceipt
from indexer.decode.roles import Role
from indexer.decode.state import ExpiringMap


VERIFY_METHODS = frozenset({"verify_intent", "verify_and_solve", "verify_multiple_intents"})
SOLVE_METHOD = "solve_intent"
SOLVER_FAILED = "execution failed at solver"
SOLVER_SAID_NO = "solver returned success=false"

_LOG_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^Intent verified: (?P<id>\S+)$"), "verified"),
    (re.compile(r"^Verified intent (?P<id>\S+), calling solver at (?P<solver>\S+)$"), "verified"),
    (re.compile(r"^Executing intent (?P<id>\S+) for user (?P<user>\S+)$"), "executing"),
    (re.compile(r"^Intent (?P<id>\S+) was successfully solved$"), "completed"),
    (re.compile(r"^Intent (?P<id>\S+) execution failed at solver$"), "failed"),
]
_EVENT_STATUS = [("verified", "verified"), ("executing", "executing"), ("solved", "completed"),
                 ("completed", "completed"), ("failed", "failed"), ("expired", "expired"),
                 ("created", "pending"), ("submitted", "pending"), ("pending", "pending")]


class WorkshopState:
    """When each intent was last verified (for solver latency), remembered ``lookback`` blocks."""

    def __init__(self, lookback: int):
        self.verified_ns: ExpiringMap[int] = ExpiringMap(lookback)

    def begin_block(self, height: int) -> None:
        self.verified_ns.begin_block(height)


def _transitions(r: TrackedReceipt) -> list[tuple[str, str, dict[str, str]]]:
    """(intent id, status, extra fields) in log order, from plain-text and near_intent logs."""
    found: list[tuple[str, str, dict[str, str]]] = []
    events = dict(r.events)
    for index, line in enumerate(r.logs):
        event = events.get(index)
        if event is not None:
            if event.standard != "near_intent":
                continue
            status = next((s for word, s in _EVENT_STATUS if word in event.event), None)
            for item in event.items():
                intent_id = item.get("intent_id", item.get("id"))
                if status and intent_id is not None:
                    extra = {k: str(item[k]) for k in ("solver", "solver_account", "user", "reason") if k in item}
                    found.append((str(intent_id), status, extra))
            continue
        for pattern, status in _LOG_PATTERNS:
            m = pattern.match(line)
            if m:
                found.append((m["id"], status, {k: v for k, v in m.groupdict().items() if k != "id"}))
                break
    return found


def _apply_logs(r: TrackedReceipt, out: Emitter, state: WorkshopState, contract_id: str,
                solver_default: str = "") -> None:
    for intent_id, status, extra in _transitions(r):
        solver = extra.get("solver") or extra.get("solver_account") or solver_default
        failure = SOLVER_FAILED if status == "failed" and not extra.get("reason") else extra.get("reason", "")
        if status == "verified":  # the latest verification: a replay of lookback blocks sees the same
            state.verified_ns.set(intent_id, r.block_timestamp_ns)
        out.intent_update(r, contract_id, intent_id, status, failure=failure, solver_id=solver,
                          signer_id=extra.get("user", ""))


def _intents_in(args: Any) -> list[dict[str, Any]]:
    if not isinstance(args, dict):
        raise ValueError("arguments are not a JSON object")
    items = args.get("intents") if "intents" in args else [args.get("intent")]
    if not isinstance(items, list) or not all(isinstance(i, dict) and "id" in i for i in items):
        raise ValueError("no intent objects with an 'id' in the arguments")
    return items


def decode_verifier_receipt(r: TrackedReceipt, out: Emitter, state: WorkshopState,
                            roles: dict[str, Role]) -> None:
    method = r.method_name
    if method in VERIFY_METHODS:
        call = r.calls[0]
        try:
            args = call.args_json()
            intents = _intents_in(args)
        except ValueError as exc:
            out.dead_letter("args", f"{method} arguments undecodable: {exc}", call.args_raw, shard_id=r.shard_id,
                            receipt_id=r.receipt_id, contract_id=r.receiver_id)
            intents, args = [], {}
        solver = str(args.get("solver_account", "")) if isinstance(args, dict) else ""
        for intent in intents:
            out.intent_update(
                r, r.receiver_id, str(intent["id"]), "pending", signer_id=str(intent.get("user_account", "")),
                solver_id=solver, action=str(intent.get("action", "")),
                tokens=[str(intent.get("input_token", "")), str(intent.get("output_token", ""))],
                amounts=[str(intent.get("input_amount", "")), str(intent.get("min_output_amount", ""))],
                deadline=str(intent.get("deadline", "")),
            )
            if not r.status.ok:
                failure = r.status.failure
                lowered = failure.lower()
                status = "expired" if "expired" in lowered or "deadline" in lowered else "failed"
                out.intent_update(r, r.receiver_id, str(intent["id"]), status, failure=failure)
    if r.status.ok:
        _apply_logs(r, out, state, r.receiver_id)


def decode_solver_receipt(r: TrackedReceipt, out: Emitter, state: WorkshopState, roles: dict[str, Role]) -> None:
    contract_id = r.predecessor_id if roles.get(r.predecessor_id) == Role.WORKSHOP_VERIFIER else r.receiver_id
    if r.method_name == SOLVE_METHOD:
        call = r.calls[0]
        try:
            args = call.args_json()
            intent_id = str(args["intent_id"])
        except (ValueError, KeyError, TypeError) as exc:
            out.dead_letter("args", f"solve_intent arguments undecodable: {exc!r}", call.args_raw,
                            shard_id=r.shard_id, receipt_id=r.receipt_id, contract_id=r.receiver_id)
            return
        success, failure = r.status.ok, r.status.failure
        if success:
            result = r.status.value_json()
            if isinstance(result, dict) and result.get("success") is False:
                success, failure = False, SOLVER_SAID_NO
        verified = state.verified_ns.get(intent_id)
        latency = (r.block_timestamp_ns - verified) / 1e9 if verified is not None else None
        out.solver_execution(r, contract_id, r.receiver_id, [intent_id], success, failure, latency)
    if r.status.ok:
        _apply_logs(r, out, state, contract_id, solver_default=r.receiver_id)
