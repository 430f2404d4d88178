"""NEAR Intents (dip4) Verifier, as ``intents.near``: intents and solver executions.

* A successful receipt's ``intents_executed`` event lists every executed signed payload
  (``intent_hash``, ``account_id``); the other dip4 events carrying the same ``intent_hash``
  (token_diff, mt_withdraw ...) give its kinds, tokens, amounts and referral.
* A failed receipt panicked as a whole: every signed payload in its arguments failed. The
  arguments are ``{"signed": [...]}`` for ``execute_intents``, and the ``msg`` JSON's
  ``execute_intents`` for ``ft_on_transfer`` / ``mt_on_transfer``. Its logs carry no hash, so
  each payload's id is the intent hash computed from the payload (``intent_hash``), the same
  id the payload gets when it executes. A payload without one (unknown or undeployed standard,
  malformed fields) is an ``args`` dead letter.
* The solver of a settlement is a configured solver account if one signed it; otherwise the
  signer whose token_diff has no ``referral`` when another signer's has one; otherwise none.
  Each solver gets one ``solver_executions`` row per receipt.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from indexer.decode.emit import Emitter
from indexer.decode.intent_hash import IntentHashError, intent_hash
from indexer.decode.receipt import TrackedReceipt

STANDARD = "dip4"
INTENT_METHODS = frozenset({"execute_intents", "ft_on_transfer", "mt_on_transfer"})
EXECUTED = "executed"
FAILED = "failed"


@dataclass(slots=True)
class Payload:
    """What one signed payload (or one executed intent hash) amounts to."""

    signer_id: str = ""
    kinds: list[str] = field(default_factory=list)
    tokens: list[str] = field(default_factory=list)
    amounts: list[str] = field(default_factory=list)
    referral: str = ""
    has_token_diff: bool = False
    deadline: str = ""
    accounts: list[str] = field(default_factory=list)  # receivers of its transfers and withdrawals

    def add_receiver(self, receiver: Any) -> None:
        if isinstance(receiver, str) and receiver and receiver not in self.accounts:
            self.accounts.append(receiver)

    def add_diff(self, diff: Any) -> None:
        if isinstance(diff, dict):
            self.has_token_diff = True
            for token, amount in diff.items():
                self.tokens.append(str(token))
                self.amounts.append(str(amount))


def attribute_solvers(payloads: list[Payload], solver_accounts: frozenset[str]) -> list[str]:
    """Solvers of one receipt's settlement, in signing order, by the rule in the module docstring."""
    configured = [p.signer_id for p in payloads if p.signer_id in solver_accounts]
    if configured:
        return list(dict.fromkeys(configured))
    with_referral = [p for p in payloads if p.has_token_diff and p.referral]
    without = [p.signer_id for p in payloads if p.has_token_diff and not p.referral and p.signer_id]
    if with_referral and without:
        return list(dict.fromkeys(without))
    return []


def _solver_of(signer: str, solvers: list[str]) -> str:
    if signer in solvers:
        return signer
    return solvers[0] if len(solvers) == 1 else ""


def decode_receipt(r: TrackedReceipt, out: Emitter, solver_accounts: frozenset[str]) -> None:
    if r.status.ok:
        _executed(r, out, solver_accounts)
    elif any(c.method_name in INTENT_METHODS for c in r.calls):
        _failed(r, out, solver_accounts)


def _executed(r: TrackedReceipt, out: Emitter, solver_accounts: frozenset[str]) -> None:
    by_hash: dict[str, Payload] = {}
    executed: list[str] = []
    for _, event in r.events:
        if event.standard != STANDARD:
            continue
        for item in event.items():
            intent_hash = item.get("intent_hash")
            if intent_hash is None and event.event == "intents_executed":
                intent_hash = item.get("hash")  # dip4 0.1.0: {"signer_id", "hash"}
            if not isinstance(intent_hash, str) or not intent_hash:
                continue  # direct calls (no signed intent) carry no hash
            p = by_hash.setdefault(intent_hash, Payload())
            account = item.get("account_id", item.get("signer_id"))
            if isinstance(account, str) and not p.signer_id:
                p.signer_id = account
            if event.event == "intents_executed":
                executed.append(intent_hash)
                continue
            if event.event not in p.kinds:
                p.kinds.append(event.event)
            p.add_receiver(item.get("receiver_id"))
            if event.event == "token_diff":
                p.add_diff(item.get("diff"))
                if isinstance(item.get("referral"), str):
                    p.referral = item["referral"]
    if not executed:
        return
    executed = list(dict.fromkeys(executed))
    payloads = [by_hash[h] for h in executed]
    solvers = attribute_solvers(payloads, solver_accounts)
    for h, p in zip(executed, payloads):
        out.intent_update(r, r.receiver_id, h, EXECUTED, signer_id=p.signer_id,
                          solver_id=_solver_of(p.signer_id, solvers), kinds=p.kinds, tokens=p.tokens,
                          amounts=p.amounts, referral=p.referral, accounts=p.accounts)
    for solver in solvers:
        out.solver_execution(r, r.receiver_id, solver, executed, True, "")


def signed_payloads(method: str, args: Any) -> list[Any]:
    """The signed payloads a call carried; raises ValueError when the arguments hold none."""
    if not isinstance(args, dict):
        raise ValueError("arguments are not a JSON object")
    if method == "execute_intents":
        signed = args.get("signed")
    else:  # ft_on_transfer / mt_on_transfer: intents travel in msg
        msg = args.get("msg")
        if not isinstance(msg, str) or not msg.lstrip().startswith("{"):
            return []  # a plain deposit, no intents
        deposit = orjson.loads(msg)
        signed = deposit.get("execute_intents")
        action = deposit.get("action")  # DepositMessage V2: the intents sit in a tagged "action"
        if signed is None and isinstance(action, dict) and action.get("type") == "execute":
            signed = action.get("execute_intents")
        if signed is None:
            return []
    if not isinstance(signed, list):
        raise ValueError("'signed' / 'execute_intents' is not a list")
    return signed


def parse_payload(signed: Any) -> Payload:
    """Signer and intents of one MultiPayload, whatever its signing standard.

    nep413 keeps the message JSON in ``payload.message``; erc191, tip191, raw_ed25519, sep53 and
    webauthn sign the message JSON as ``payload`` text; ton_connect wraps it as ``payload.text``;
    bip322 (never deployed) has it as top-level ``message`` text.
    """
    if not isinstance(signed, dict):
        raise ValueError("signed payload is not an object")
    body = signed.get("payload")
    message: Any = None
    if isinstance(body, dict):
        message = body.get("message", body.get("text"))
    elif isinstance(body, str):
        message = body
    elif body is None and isinstance(signed.get("message"), str):
        message = signed["message"]
    if isinstance(message, str):
        message = orjson.loads(message)
    if not isinstance(message, dict) or not isinstance(message.get("signer_id"), str):
        raise ValueError(f"no signer_id in a {signed.get('standard', '?')} payload")
    deadline = message.get("deadline", "")
    if not isinstance(deadline, str):  # early payloads: {"timestamp": <unix seconds>}
        deadline = orjson.dumps(deadline).decode()
    p = Payload(signer_id=message["signer_id"], deadline=deadline)
    for intent in message.get("intents") or []:
        if not isinstance(intent, dict):
            continue
        kind = str(intent.get("intent", ""))
        if kind and kind not in p.kinds:
            p.kinds.append(kind)
        p.add_receiver(intent.get("receiver_id"))
        if kind == "token_diff":
            p.add_diff(intent.get("diff"))
            if isinstance(intent.get("referral"), str):
                p.referral = intent["referral"]
    return p


def _failed(r: TrackedReceipt, out: Emitter, solver_accounts: frozenset[str]) -> None:
    # A receipt's actions are atomic: every intent call of a failed receipt failed, not only the
    # first action's. Payload indexes (in dead letters) run over all of them.
    by_hash: dict[str, Payload] = {}
    index = 0
    for call in r.calls:
        if call.method_name not in INTENT_METHODS:
            continue
        try:
            signed = signed_payloads(call.method_name, call.args_json())
        except (ValueError, AttributeError) as exc:
            out.dead_letter("args", f"{call.method_name} arguments undecodable: {exc}", call.args_raw,
                            shard_id=r.shard_id, receipt_id=r.receipt_id, contract_id=r.receiver_id)
            continue
        for item in signed:
            i, index = index, index + 1
            try:
                p = parse_payload(item)
            except ValueError as exc:
                _payload_dead_letter(r, out, item, f"signed payload {i} undecodable: {exc}")
                continue
            try:
                h = intent_hash(item)
            except IntentHashError as exc:
                _payload_dead_letter(r, out, item, f"signed payload {i} of {p.signer_id} has no intent hash: {exc}")
                continue
            by_hash.setdefault(h, p)  # the same payload twice is one intent
    payloads = list(by_hash.values())
    solvers = attribute_solvers(payloads, solver_accounts)
    for h, p in by_hash.items():
        out.intent_update(r, r.receiver_id, h, FAILED, failure=r.status.failure, signer_id=p.signer_id,
                          solver_id=_solver_of(p.signer_id, solvers), kinds=p.kinds, tokens=p.tokens,
                          amounts=p.amounts, referral=p.referral, deadline=p.deadline, accounts=p.accounts)
    for solver in solvers:
        out.solver_execution(r, r.receiver_id, solver, list(by_hash), False, r.status.failure)


def _payload_dead_letter(r: TrackedReceipt, out: Emitter, item: Any, reason: str) -> None:
    out.dead_letter("args", reason, orjson.dumps(item), shard_id=r.shard_id, receipt_id=r.receipt_id,
                    contract_id=r.receiver_id)
