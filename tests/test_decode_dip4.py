"""indexer.decode.dip4 on the real intents.near execute_intents receipt (z6Rx...) and variants of it."""

from __future__ import annotations

import json

import pytest

from decodehelpers import (
    MAIN_RECEIPT_ID, SOLVER, SOLVER_HASH, TOKEN_HOT, TOKEN_SOL, TX, TX_HASH, USER, USER_HASH, USER_REFERRAL,
    call_receipt, emitter, failure_status, main_args, table, tx_outcome, tx_tracked,
)
from indexer.decode import dip4
from indexer.decode.intent_hash import intent_hash
from indexer.decode.nep297 import PREFIX, parse_event

MAIN_LOGS: list[str] = tx_outcome(MAIN_RECEIPT_ID)["outcome"]["logs"]
# the hashes the real receipt's intents_executed event names, in signing order
EXECUTED_HASHES = [item["intent_hash"] for line in MAIN_LOGS if '"intents_executed"' in line
                   for item in parse_event(line).items()]
PANIC = "Smart contract panicked: deadline has expired"
NONE: frozenset[str] = frozenset()


def decode(r, solvers: frozenset[str] = NONE):
    out = emitter(r.block_height)
    dip4.decode_receipt(r, out, solvers)
    return out.rows


def _log(obj: dict) -> str:
    return PREFIX + json.dumps(obj, separators=(",", ":"))


def _edit_log(index: int, fn) -> list[str]:
    """MAIN_LOGS with the JSON of one log changed by ``fn``."""
    logs = list(MAIN_LOGS)
    obj = json.loads(logs[index][len(PREFIX):])
    fn(obj)
    logs[index] = _log(obj)
    return logs


# --- executed ---------------------------------------------------------------------------------

def test_executed_intents_of_the_real_receipt() -> None:
    r = tx_tracked()
    rows = decode(r)
    updates = table(rows, "intent_updates")
    assert [u["intent_id"] for u in updates] == [SOLVER_HASH, USER_HASH]  # intents_executed order
    assert [u["update_index"] for u in updates] == [0, 1]
    for u in updates:
        assert u["status"] == dip4.EXECUTED and u["failure"] == ""
        assert u["contract_id"] == "intents.near"
        assert u["receipt_id"] == MAIN_RECEIPT_ID and u["tx_hash"] == TX_HASH
        assert u["method_name"] == "execute_intents"
        assert u["block_height"] == r.block_height and u["block_timestamp"] == r.block_timestamp
    solver, user = updates
    assert solver["signer_id"] == SOLVER
    assert solver["kinds"] == ["token_diff"]
    assert solver["tokens"] == [TOKEN_SOL, TOKEN_HOT]
    assert solver["amounts"] == ["18999981", "-2541553358444100"]
    assert solver["referral"] == ""
    assert user["signer_id"] == USER
    assert user["kinds"] == ["token_diff", "mt_withdraw"]
    assert user["tokens"] == [TOKEN_SOL, TOKEN_HOT]
    assert user["amounts"] == ["-19000000", "2541550816890741"]
    assert user["referral"] == USER_REFERRAL
    # the solver is the signer without a referral, opposite a user with one
    assert solver["solver_id"] == SOLVER and user["solver_id"] == SOLVER

    execs = table(rows, "solver_executions")
    assert len(execs) == 1
    e = execs[0]
    assert e["solver_id"] == SOLVER and e["contract_id"] == "intents.near"
    assert e["intent_ids"] == [SOLVER_HASH, USER_HASH]
    assert e["success"] == 1 and e["failure"] == ""
    assert e["gas_burnt"] == 10038341571544
    assert e["receipt_id"] == MAIN_RECEIPT_ID and e["tx_hash"] == TX_HASH and e["method_name"] == "execute_intents"
    assert e["latency_s"] is None
    assert rows.tables["dead_letters"] == []


def test_executed_with_success_receipt_id_status_counts_as_executed() -> None:
    rows = decode(tx_tracked(status={"SuccessReceiptId": "93zM3pgLnzdStfNxAEYh8WwtxknbpkF9XGr1mnnQrfjk"}))
    assert [u["status"] for u in table(rows, "intent_updates")] == ["executed", "executed"]


def test_configured_solver_account_overrides_the_referral_rule() -> None:
    rows = decode(tx_tracked(), frozenset({USER}))
    assert [(e["solver_id"], e["intent_ids"]) for e in table(rows, "solver_executions")] == [
        (USER, [SOLVER_HASH, USER_HASH])]
    assert [u["solver_id"] for u in table(rows, "intent_updates")] == [USER, USER]


def test_configured_solver_same_as_rule() -> None:
    rows = decode(tx_tracked(), frozenset({SOLVER, "other-solver.near"}))
    assert [e["solver_id"] for e in table(rows, "solver_executions")] == [SOLVER]


def test_two_configured_solvers_each_get_a_row_and_their_own_intents() -> None:
    rows = decode(tx_tracked(), frozenset({SOLVER, USER}))
    assert [e["solver_id"] for e in table(rows, "solver_executions")] == [SOLVER, USER]
    assert [u["solver_id"] for u in table(rows, "intent_updates")] == [SOLVER, USER]


def test_single_signer_is_not_attributed() -> None:
    logs = [MAIN_LOGS[0], _log({"standard": "dip4", "version": "0.3.1", "event": "intents_executed",
                                "data": [{"intent_hash": SOLVER_HASH, "account_id": SOLVER, "nonce": "x"}]})]
    rows = decode(tx_tracked(logs=logs))
    updates = table(rows, "intent_updates")
    assert [(u["intent_id"], u["signer_id"], u["solver_id"]) for u in updates] == [(SOLVER_HASH, SOLVER, "")]
    assert rows.tables["solver_executions"] == []


def test_both_with_referral_is_not_attributed() -> None:
    logs = _edit_log(0, lambda o: o["data"][0].__setitem__("referral", "some-frontend"))
    rows = decode(tx_tracked(logs=logs))
    updates = table(rows, "intent_updates")
    assert [u["referral"] for u in updates] == ["some-frontend", USER_REFERRAL]
    assert [u["solver_id"] for u in updates] == ["", ""]
    assert rows.tables["solver_executions"] == []


def test_neither_with_referral_is_not_attributed() -> None:
    logs = _edit_log(1, lambda o: o["data"][0].pop("referral"))
    rows = decode(tx_tracked(logs=logs))
    assert rows.tables["solver_executions"] == []
    assert [u["solver_id"] for u in table(rows, "intent_updates")] == ["", ""]


def test_no_intents_executed_event_no_rows() -> None:
    rows = decode(tx_tracked(logs=MAIN_LOGS[:3]))
    assert rows.count() == 0


def test_direct_calls_without_intent_hash_give_no_rows() -> None:
    logs = [_log({"standard": "dip4", "version": "0.3.0", "event": "transfer",
                  "data": [{"account_id": "alice.near", "receiver_id": "bob.near", "tokens": {TOKEN_SOL: "5"}}]})]
    r = call_receipt("intents.near", "mt_transfer", {"receiver_id": "bob.near"}, logs=logs)
    assert decode(r).count() == 0


def test_other_standards_are_ignored() -> None:
    # only the nep245 logs of the real receipt: no dip4 intent
    rows = decode(tx_tracked(logs=MAIN_LOGS[4:]))
    assert rows.count() == 0


def test_real_non_intent_receipts_of_the_transaction_give_no_rows() -> None:
    for o in TX["receipts_outcome"]:
        if o["id"] == MAIN_RECEIPT_ID or o["outcome"]["executor_id"] != "intents.near":
            continue
        assert decode(tx_tracked(o["id"])).count() == 0, o["id"]


def test_intents_executed_duplicates_are_folded() -> None:
    logs = list(MAIN_LOGS) + [MAIN_LOGS[3]]
    rows = decode(tx_tracked(logs=logs))
    assert [u["intent_id"] for u in table(rows, "intent_updates")] == [SOLVER_HASH, USER_HASH]


# --- failed -----------------------------------------------------------------------------------

def _failed_variant(**kw):
    """The real receipt, same args, panicked after logging its two token_diff events."""
    return tx_tracked(status=failure_status(PANIC), logs=MAIN_LOGS[:2], **kw)


def test_failed_receipt_fails_every_signed_payload() -> None:
    r = _failed_variant()
    rows = decode(r)
    updates = table(rows, "intent_updates")
    # each failed payload is named by its intent hash: the id it has in the events when it executes
    assert [u["intent_id"] for u in updates] == EXECUTED_HASHES
    assert all(u["status"] == dip4.FAILED and u["failure"] == PANIC for u in updates)
    assert not any(u["status"] == "executed" for u in updates)  # logs before the panic do not count
    solver, user = updates
    # signer ids come from the nep413 messages inside the base64 arguments
    assert solver["signer_id"] == SOLVER and user["signer_id"] == USER
    assert solver["deadline"] == "2026-04-28T15:24:17.446Z"
    assert user["deadline"] == "2026-04-28T15:25:53.999Z"
    assert solver["kinds"] == ["token_diff"] and user["kinds"] == ["token_diff", "mt_withdraw"]
    assert solver["tokens"] == [TOKEN_SOL, TOKEN_HOT] and solver["amounts"] == ["18999981", "-2541553358444100"]
    assert user["tokens"] == [TOKEN_SOL, TOKEN_HOT] and user["amounts"] == ["-19000000", "2541550816890741"]
    assert user["referral"] == USER_REFERRAL and solver["referral"] == ""
    assert solver["solver_id"] == SOLVER and user["solver_id"] == SOLVER
    assert all(u["tx_hash"] == TX_HASH and u["method_name"] == "execute_intents" for u in updates)

    execs = table(rows, "solver_executions")
    assert len(execs) == 1
    e = execs[0]
    assert e["solver_id"] == SOLVER and e["success"] == 0 and e["failure"] == PANIC
    assert e["intent_ids"] == EXECUTED_HASHES
    assert e["gas_burnt"] == r.gas_burnt
    assert rows.tables["dead_letters"] == []


def test_failed_receipt_with_configured_solver() -> None:
    rows = decode(_failed_variant(), frozenset({USER}))
    assert [(e["solver_id"], e["success"]) for e in table(rows, "solver_executions")] == [(USER, 0)]


@pytest.mark.parametrize("panic", ["Smart contract panicked: nonce was already used",
                                   "Smart contract panicked: invalid signature"])
def test_failure_text_carried_verbatim(panic: str) -> None:
    rows = decode(tx_tracked(status=failure_status(panic), logs=[]))
    assert {u["failure"] for u in table(rows, "intent_updates")} == {panic}


def test_failed_non_intent_method_gives_no_rows() -> None:
    r = call_receipt("intents.near", "add_public_key", {"public_key": "ed25519:x"}, status=failure_status("boom"))
    assert decode(r).count() == 0


def test_failed_undecodable_args_go_to_dead_letters() -> None:
    r = call_receipt("intents.near", "execute_intents", b"\x00not json", status=failure_status(PANIC),
                     receipt_id="BadArgs1")
    rows = decode(r)
    assert rows.tables["intent_updates"] == [] and rows.tables["solver_executions"] == []
    (dl,) = table(rows, "dead_letters")
    assert dl["kind"] == "args" and dl["receipt_id"] == "BadArgs1" and dl["contract_id"] == "intents.near"
    assert "execute_intents arguments undecodable" in dl["reason"]
    assert dl["payload"].endswith("not json")


@pytest.mark.parametrize("args", [{"signed": "nope"}, {"signed": {"a": 1}}, [1, 2], "text"])
def test_failed_args_without_a_signed_list_go_to_dead_letters(args: object) -> None:
    rows = decode(call_receipt("intents.near", "execute_intents", args, status=failure_status(PANIC)))
    assert rows.tables["intent_updates"] == []
    assert len(rows.tables["dead_letters"]) == 1


def test_undecodable_payload_is_dead_lettered_and_decoding_goes_on() -> None:
    signed = main_args()["signed"]
    broken = {"standard": "nep413", "payload": {"message": "{not json", "nonce": "x", "recipient": "intents.near"}}
    no_signer = {"standard": "nep413", "payload": {"message": json.dumps({"deadline": "x", "intents": []})}}
    short_nonce = {"standard": "nep413", "payload": dict(signed[0]["payload"], nonce="AAAA")}
    args = {"signed": [signed[0], broken, no_signer, short_nonce, signed[1]]}
    r = call_receipt("intents.near", "execute_intents", args, status=failure_status(PANIC), receipt_id="Mixed")
    rows = decode(r)
    updates = table(rows, "intent_updates")
    assert [(u["intent_id"], u["signer_id"]) for u in updates] == [(SOLVER_HASH, SOLVER), (USER_HASH, USER)]
    dls = table(rows, "dead_letters")
    assert [d["reason"].split(" undecodable")[0] for d in dls[:2]] == ["signed payload 1", "signed payload 2"]
    assert json.loads(dls[0]["payload"]) == broken
    assert "no signer_id" in dls[1]["reason"]
    assert dls[2]["reason"] == f"signed payload 3 of {SOLVER} has no intent hash: nep413 'nonce' is 3 bytes, not 32"
    assert json.loads(dls[2]["payload"]) == short_nonce
    assert {d["kind"] for d in dls} == {"args"} and [d["seq"] for d in dls] == [0, 1, 2]
    assert [e["solver_id"] for e in table(rows, "solver_executions")] == [SOLVER]


def test_failed_bip322_payload_is_a_dead_letter_the_others_fail() -> None:
    message = json.dumps({"signer_id": "bc1qsigner", "deadline": "2030-01-01T00:00:00Z", "intents": []})
    bip322 = {"standard": "bip322", "address": "bc1qsigner", "message": message, "signature": "AkcwRAIg"}
    args = {"signed": [main_args()["signed"][0], bip322]}
    rows = decode(call_receipt("intents.near", "execute_intents", args, status=failure_status(PANIC)))
    assert [u["intent_id"] for u in table(rows, "intent_updates")] == [SOLVER_HASH]
    (dl,) = table(rows, "dead_letters")
    assert dl["kind"] == "args" and json.loads(dl["payload"]) == bip322
    assert dl["reason"] == ("signed payload 1 of bc1qsigner has no intent hash: bip322 payloads have no intent "
                            "hash: the Verifier does not accept the bip322 standard")


def test_failed_payload_of_an_unknown_standard_is_a_dead_letter() -> None:
    unknown = {"standard": "eip712", "payload": json.dumps(MESSAGE), "signature": "secp256k1:x"}
    rows = decode(call_receipt("intents.near", "execute_intents", {"signed": [unknown]}, status=failure_status(PANIC)))
    assert rows.tables["intent_updates"] == [] and rows.tables["solver_executions"] == []
    (dl,) = table(rows, "dead_letters")
    assert dl["reason"].endswith("has no intent hash: unknown signing standard 'eip712'")


def _signed_as(standard: str) -> dict:
    text = json.dumps(MESSAGE)
    if standard == "nep413":
        return {"standard": standard, "payload": {"message": text, "nonce": "A" * 43 + "=", "recipient": "intents.near"}}
    if standard == "ton_connect":
        return {"standard": standard, "address": "0:" + "ab" * 32, "domain": "app.example", "timestamp": 1_900_000_000,
                "payload": {"type": "text", "text": text}}
    return {"standard": standard, "payload": text}


@pytest.mark.parametrize("standard", ["nep413", "erc191", "tip191", "raw_ed25519", "webauthn", "ton_connect", "sep53"])
def test_failed_payload_of_every_standard_is_named_by_its_hash(standard: str) -> None:
    signed = _signed_as(standard)
    rows = decode(call_receipt("intents.near", "execute_intents", {"signed": [signed]}, status=failure_status(PANIC)))
    (u,) = table(rows, "intent_updates")
    assert (u["intent_id"], u["signer_id"], u["status"]) == (intent_hash(signed), "alice.near", "failed")
    assert rows.tables["dead_letters"] == []


def test_the_same_payload_twice_in_a_failed_batch_is_one_intent() -> None:
    signed = main_args()["signed"]
    args = {"signed": [signed[0], signed[1], signed[0]]}
    rows = decode(call_receipt("intents.near", "execute_intents", args, status=failure_status(PANIC)))
    assert [u["intent_id"] for u in table(rows, "intent_updates")] == [SOLVER_HASH, USER_HASH]
    assert [e["intent_ids"] for e in table(rows, "solver_executions")] == [[SOLVER_HASH, USER_HASH]]


# --- ft_on_transfer / mt_on_transfer ----------------------------------------------------------

def _deposit_args(method: str, msg: str) -> dict:
    if method == "ft_on_transfer":
        return {"sender_id": USER, "amount": "19000000", "msg": msg}
    return {"sender_id": USER, "previous_owner_ids": [USER], "token_ids": ["56_1"], "amounts": ["5"], "msg": msg}


@pytest.mark.parametrize("method", ["ft_on_transfer", "mt_on_transfer"])
def test_deposit_with_execute_intents_failed(method: str) -> None:
    msg = json.dumps({"receiver_id": USER, "execute_intents": main_args()["signed"]})
    r = call_receipt("intents.near", method, _deposit_args(method, msg), status=failure_status(PANIC),
                     predecessor="sol.omft.near", receipt_id="Dep1")
    rows = decode(r)
    updates = table(rows, "intent_updates")
    assert [(u["intent_id"], u["signer_id"], u["status"]) for u in updates] == [
        (SOLVER_HASH, SOLVER, "failed"), (USER_HASH, USER, "failed")]
    assert all(u["method_name"] == method for u in updates)
    assert [(e["solver_id"], e["success"]) for e in table(rows, "solver_executions")] == [(SOLVER, 0)]


@pytest.mark.parametrize("method", ["ft_on_transfer", "mt_on_transfer"])
def test_deposit_with_execute_intents_executed(method: str) -> None:
    msg = json.dumps({"execute_intents": main_args()["signed"]})
    r = call_receipt("intents.near", method, _deposit_args(method, msg), logs=MAIN_LOGS)
    rows = decode(r)
    assert [u["intent_id"] for u in table(rows, "intent_updates")] == [SOLVER_HASH, USER_HASH]
    assert [e["solver_id"] for e in table(rows, "solver_executions")] == [SOLVER]


@pytest.mark.parametrize("msg", ["", USER, "alice.near", "[1,2]", '"quoted"', json.dumps({"receiver_id": USER}),
                                 json.dumps({"refund_if_fails": True})])
@pytest.mark.parametrize("method", ["ft_on_transfer", "mt_on_transfer"])
def test_plain_deposits_give_nothing(method: str, msg: str) -> None:
    r = call_receipt("intents.near", method, _deposit_args(method, msg), status=failure_status(PANIC))
    assert decode(r).count() == 0
    ok = call_receipt("intents.near", method, _deposit_args(method, msg), logs=[])
    assert decode(ok).count() == 0


def test_deposit_execute_intents_not_a_list_is_dead_lettered() -> None:
    msg = json.dumps({"execute_intents": {"signed": 1}})
    rows = decode(call_receipt("intents.near", "ft_on_transfer", _deposit_args("ft_on_transfer", msg),
                               status=failure_status(PANIC)))
    assert len(rows.tables["dead_letters"]) == 1 and rows.tables["intent_updates"] == []


# --- payload shapes of other signing standards ------------------------------------------------

MESSAGE = {"signer_id": "alice.near", "deadline": "2030-01-01T00:00:00Z",
           "intents": [{"intent": "token_diff", "diff": {TOKEN_SOL: "-5", "nep141:wrap.near": "7"}, "referral": "fe"},
                       {"intent": "ft_withdraw", "token": "wrap.near", "receiver_id": "alice.near", "amount": "7"},
                       {"intent": "token_diff", "diff": {}}]}


def test_parse_payload_real_nep413() -> None:
    p0, p1 = (dip4.parse_payload(s) for s in main_args()["signed"])
    assert (p0.signer_id, p0.deadline, p0.kinds, p0.referral, p0.has_token_diff) == (
        SOLVER, "2026-04-28T15:24:17.446Z", ["token_diff"], "", True)
    assert (p1.signer_id, p1.kinds, p1.referral) == (USER, ["token_diff", "mt_withdraw"], USER_REFERRAL)


@pytest.mark.parametrize("standard", ["erc191", "tip191", "raw_ed25519", "sep53", "webauthn"])
def test_parse_payload_string_payload(standard: str) -> None:
    signed = {"standard": standard, "payload": json.dumps(MESSAGE), "signature": "secp256k1:x"}
    p = dip4.parse_payload(signed)
    assert p.signer_id == "alice.near" and p.deadline == "2030-01-01T00:00:00Z"
    assert p.kinds == ["token_diff", "ft_withdraw"]
    assert p.tokens == [TOKEN_SOL, "nep141:wrap.near"] and p.amounts == ["-5", "7"]
    assert p.referral == "fe" and p.has_token_diff


def test_parse_payload_ton_connect_text() -> None:
    signed = {"standard": "ton_connect", "address": "0:abc", "domain": "example.com", "timestamp": 1,
              "payload": {"type": "text", "text": json.dumps(MESSAGE)}, "public_key": "ed25519:x", "signature": "y"}
    p = dip4.parse_payload(signed)
    assert p.signer_id == "alice.near" and p.kinds == ["token_diff", "ft_withdraw"]


def test_parse_payload_bip322_message() -> None:
    p = dip4.parse_payload({"standard": "bip322", "address": "bc1q", "message": json.dumps(MESSAGE), "signature": "x"})
    assert p.signer_id == "alice.near" and p.kinds == ["token_diff", "ft_withdraw"]


def test_parse_payload_message_already_an_object() -> None:
    p = dip4.parse_payload({"standard": "custom", "payload": {"message": MESSAGE}})
    assert p.signer_id == "alice.near"


@pytest.mark.parametrize("signed", [
    "string", [1], {"standard": "nep413"}, {"standard": "erc191", "payload": "not json"},
    {"standard": "erc191", "payload": json.dumps({"intents": []})},
    {"standard": "nep413", "payload": {"message": json.dumps({"signer_id": 5})}},
    {"standard": "erc191", "payload": "[1]"},
])
def test_parse_payload_rejects(signed: object) -> None:
    with pytest.raises(ValueError):
        dip4.parse_payload(signed)


def test_signed_payloads() -> None:
    assert dip4.signed_payloads("execute_intents", main_args()) == main_args()["signed"]
    assert dip4.signed_payloads("ft_on_transfer", {"msg": "alice.near"}) == []
    assert dip4.signed_payloads("ft_on_transfer", {"msg": " {\"execute_intents\": [1]}"}) == [1]
    assert dip4.signed_payloads("mt_on_transfer", {}) == []
    with pytest.raises(ValueError):
        dip4.signed_payloads("execute_intents", [])
    with pytest.raises(ValueError):
        dip4.signed_payloads("execute_intents", {"signed": None})


def test_attribute_solvers_rule() -> None:
    def p(signer: str, referral: str = "", diff: bool = True) -> dip4.Payload:
        return dip4.Payload(signer_id=signer, referral=referral, has_token_diff=diff)

    assert dip4.attribute_solvers([p("u", "fe"), p("s")], NONE) == ["s"]
    assert dip4.attribute_solvers([p("u", "fe"), p("s1"), p("s2"), p("s1")], NONE) == ["s1", "s2"]
    assert dip4.attribute_solvers([p("u", "fe"), p("s", diff=False)], NONE) == []  # no token_diff: not a leg
    assert dip4.attribute_solvers([p("s")], NONE) == []
    assert dip4.attribute_solvers([p("a", "x"), p("b", "y")], NONE) == []
    assert dip4.attribute_solvers([p("u", "fe"), p("s")], frozenset({"u"})) == ["u"]
    assert dip4.attribute_solvers([], NONE) == []

