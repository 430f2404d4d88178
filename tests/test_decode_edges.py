"""Decoders against input shapes real intents.near data can carry (near/intents source)."""

from __future__ import annotations

import json

from decodehelpers import (
    MAIN_RECEIPT_ID, SOLVER, SOLVER_HASH, USER, USER_HASH, b64, call_receipt, emitter, failure_status, main_args,
    table, tx_outcome, tx_receipt, tracked_from_views,
)
from indexer.decode import dip4
from indexer.decode.nep297 import PREFIX

PANIC = "Smart contract panicked: deadline has expired"


def decode(r, solvers: frozenset[str] = frozenset()):
    out = emitter(r.block_height)
    dip4.decode_receipt(r, out, solvers)
    return out.rows


def test_failed_deposit_with_v2_deposit_message_action_execute() -> None:
    # near/intents DepositMessageV2: {"receiver_id", "action": {"type": "execute", "execute_intents", ...}}
    msg = json.dumps({"receiver_id": USER, "action": {"type": "execute", "execute_intents": main_args()["signed"],
                                                      "refund_if_fails": True}})
    r = call_receipt("intents.near", "ft_on_transfer", {"sender_id": USER, "amount": "19000000", "msg": msg},
                     status=failure_status(PANIC), predecessor="sol.omft.near", receipt_id="DepV2")
    rows = decode(r)
    assert [(u["intent_id"], u["signer_id"], u["status"]) for u in table(rows, "intent_updates")] == [
        (SOLVER_HASH, SOLVER, "failed"), (USER_HASH, USER, "failed")]
    assert [e["solver_id"] for e in table(rows, "solver_executions")] == [SOLVER]
    # a V2 notify action carries no intents
    notify = json.dumps({"receiver_id": USER, "action": {"type": "notify", "msg": "x"}})
    r2 = call_receipt("intents.near", "ft_on_transfer", {"sender_id": USER, "amount": "1", "msg": notify},
                      status=failure_status(PANIC))
    assert decode(r2).count() == 0


def _two_call_receipt(status: dict):
    """The real execute_intents receipt split into two execute_intents actions (one payload each)."""
    outcome, receipt = tx_outcome(MAIN_RECEIPT_ID), tx_receipt(MAIN_RECEIPT_ID)
    signed = main_args()["signed"]
    fc = receipt["receipt"]["Action"]["actions"][0]["FunctionCall"]
    receipt["receipt"]["Action"]["actions"] = [
        {"FunctionCall": dict(fc, args=b64(json.dumps({"signed": [signed[0]]})))},
        {"FunctionCall": dict(fc, args=b64(json.dumps({"signed": [signed[1]]})))},
    ]
    outcome["outcome"]["status"] = status
    outcome["outcome"]["logs"] = []
    return tracked_from_views(outcome, receipt)


def test_failed_receipt_with_several_execute_intents_actions_fails_all_payloads() -> None:
    r = _two_call_receipt(failure_status(PANIC))
    rows = decode(r)
    updates = table(rows, "intent_updates")
    assert [(u["intent_id"], u["signer_id"]) for u in updates] == [(SOLVER_HASH, SOLVER), (USER_HASH, USER)]
    (ex,) = table(rows, "solver_executions")
    assert ex["solver_id"] == SOLVER and ex["intent_ids"] == [SOLVER_HASH, USER_HASH]


def test_failed_receipt_whose_first_action_is_not_an_intent_call() -> None:
    signed = main_args()["signed"]
    r = call_receipt("intents.near", "storage_deposit", {}, status=failure_status(PANIC), receipt_id="Mixed")
    r.calls.append(type(r.calls[0])("execute_intents", json.dumps({"signed": signed}).encode(), 1, 0))
    rows = decode(r)
    assert [u["intent_id"] for u in table(rows, "intent_updates")] == [SOLVER_HASH, USER_HASH]


def test_legacy_dip4_0_1_0_intents_executed_with_hash_and_signer_id() -> None:
    # dip4 0.1.0: IntentsExecuted(&[SignerEvent<IntentExecutedEvent>]) -> {"signer_id", "hash"}
    log = PREFIX + json.dumps({"standard": "dip4", "version": "0.1.0", "event": "intents_executed",
                               "data": [{"signer_id": SOLVER, "hash": SOLVER_HASH},
                                        {"signer_id": USER, "hash": USER_HASH}]})
    r = call_receipt("intents.near", "execute_intents", main_args(), logs=[log], receipt_id="Old")
    updates = table(decode(r), "intent_updates")
    assert [(u["intent_id"], u["signer_id"], u["status"]) for u in updates] == [
        (SOLVER_HASH, SOLVER, "executed"), (USER_HASH, USER, "executed")]


def test_object_deadline_is_json_text_not_python_repr() -> None:
    # early payloads: "deadline": {"timestamp": 1732035219} (near/intents raw_ed25519 test vector)
    msg = {"signer_id": "alice.near", "deadline": {"timestamp": 1732035219}, "intents": []}
    p = dip4.parse_payload({"standard": "raw_ed25519", "payload": json.dumps(msg)})
    assert p.deadline == '{"timestamp":1732035219}'


def test_workshop_verified_log_with_comma_in_intent_id() -> None:
    # intent ids are free-form strings in the workshop contract: "Verified intent {id}, calling solver at {S}"
    from indexer.decode.roles import Role
    from indexer.decode import workshop
    v, s = "verifier.workshop.near", "solver.workshop.near"
    state = workshop.WorkshopState(250)
    state.begin_block(100)
    r = call_receipt(v, "verify_and_solve", {"intent": {"id": "order,42", "user_account": "alice.near"},
                                              "solver_account": s},
                     logs=[f"Verified intent order,42, calling solver at {s}"], height=100)
    out = emitter(100)
    workshop.decode_verifier_receipt(r, out, state, {v: Role.WORKSHOP_VERIFIER, s: Role.WORKSHOP_SOLVER})
    assert [(u["intent_id"], u["status"], u["solver_id"]) for u in table(out.rows, "intent_updates")] == [
        ("order,42", "pending", s), ("order,42", "verified", s)]
