"""indexer.decode.workshop: the workshop Verifier / Solver logs and calls -> intent lifecycle rows."""

from __future__ import annotations

import base64
import json

import pytest

from decodehelpers import call_receipt, emitter, failure_status, table
from indexer.decode.roles import Role
from indexer.decode import workshop
from indexer.decode.nep297 import PREFIX

VERIFIER = "verifier.workshop.near"
SOLVER = "solver.workshop.near"
USER = "alice.near"
ROLES = {VERIFIER: Role.WORKSHOP_VERIFIER, SOLVER: Role.WORKSHOP_SOLVER}
T0 = 1_777_000_000_000_000_000  # ns
INTENT = {"id": "intent-1", "user_account": USER, "action": "swap", "input_token": "wrap.near",
          "input_amount": "1000000000000000000000000", "output_token": "usdt.tether-token.near",
          "min_output_amount": "3500000", "max_slippage": 50, "deadline": 1777000600000000000}


def ok_value(obj: object) -> dict:
    return {"SuccessValue": base64.b64encode(json.dumps(obj).encode()).decode()}


def nep297(event: str, data: object) -> str:
    return PREFIX + json.dumps({"standard": "near_intent", "version": "1.0.0", "event": event, "data": data})


def verifier(method: str, args: object, *, state: workshop.WorkshopState | None = None, height: int = 100,
             ts_ns: int = T0, **kw):
    state = state or workshop.WorkshopState(250)
    state.begin_block(height)
    r = call_receipt(VERIFIER, method, args, height=height, ts_ns=ts_ns, **kw)
    out = emitter(height)
    workshop.decode_verifier_receipt(r, out, state, ROLES)
    return out.rows, state


def solver(args: object, *, state: workshop.WorkshopState | None = None, height: int = 101, ts_ns: int = T0,
           predecessor: str = VERIFIER, method: str = "solve_intent", roles: dict | None = None, **kw):
    state = state or workshop.WorkshopState(250)
    state.begin_block(height)
    r = call_receipt(SOLVER, method, args, height=height, ts_ns=ts_ns, predecessor=predecessor, **kw)
    out = emitter(height)
    workshop.decode_solver_receipt(r, out, state, ROLES if roles is None else roles)
    return out.rows, state


def statuses(rows) -> list[tuple[str, str]]:
    return [(u["intent_id"], u["status"]) for u in table(rows, "intent_updates")]


# --- plain-text logs ------------------------------------------------------------------------

@pytest.mark.parametrize("line, status, extra", [
    ("Intent verified: intent-1", "verified", {}),
    (f"Verified intent intent-1, calling solver at {SOLVER}", "verified", {"solver_id": SOLVER}),
    ("Intent intent-1 was successfully solved", "completed", {}),
    ("Intent intent-1 execution failed at solver", "failed", {"failure": "execution failed at solver"}),
])
def test_verifier_plain_text_logs(line: str, status: str, extra: dict) -> None:
    rows, _ = verifier("on_intent_solved", {"intent_id": "intent-1"}, logs=[line])
    (u,) = table(rows, "intent_updates")
    assert (u["intent_id"], u["status"], u["contract_id"]) == ("intent-1", status, VERIFIER)
    assert u["method_name"] == "on_intent_solved"
    for k, v in extra.items():
        assert u[k] == v
    if status != "failed":
        assert u["failure"] == ""


def test_solver_executing_log_gives_user_and_solver() -> None:
    rows, _ = solver({"intent_id": "intent-1", "user": USER, "input_amount": "1"},
                     logs=[f"Executing intent intent-1 for user {USER}"],
                     status=ok_value({"intent_id": "intent-1", "success": True, "output_amount": "1", "fee_amount": "0"}))
    (u,) = table(rows, "intent_updates")
    assert (u["status"], u["signer_id"], u["solver_id"], u["contract_id"]) == ("executing", USER, SOLVER, VERIFIER)


def test_unrelated_logs_are_ignored() -> None:
    logs = ["Intent verified:", "intent verified: x", "Intent verified: a b", "Verified intent x calling solver at y",
            PREFIX + json.dumps({"standard": "nep141", "version": "1.0.0", "event": "ft_transfer",
                                 "data": [{"old_owner_id": "a", "new_owner_id": "b", "amount": "1"}]})]
    rows, _ = verifier("on_intent_solved", {"intent_id": "x"}, logs=logs)
    assert rows.tables["intent_updates"] == []


def test_several_logs_in_order() -> None:
    logs = ["Intent verified: a", "Intent verified: b", "Intent a was successfully solved"]
    rows, _ = verifier("on_intent_solved", {}, logs=logs)
    assert statuses(rows) == [("a", "verified"), ("b", "verified"), ("a", "completed")]
    assert [u["update_index"] for u in table(rows, "intent_updates")] == [0, 1, 2]


# --- near_intent NEP-297 variant ------------------------------------------------------------

@pytest.mark.parametrize("event, status", [
    ("intent_verified", "verified"), ("intent_executing", "executing"), ("intent_solved", "completed"),
    ("intent_completed", "completed"), ("intent_failed", "failed"), ("intent_expired", "expired"),
    ("intent_created", "pending"),
])
def test_near_intent_events(event: str, status: str) -> None:
    rows, _ = verifier("on_intent_solved", {}, logs=[nep297(event, [{"intent_id": "i9"}])])
    assert statuses(rows) == [("i9", status)]


def test_near_intent_event_fields_and_shapes() -> None:
    logs = [
        nep297("intent_verified", {"id": "i1", "solver": SOLVER, "user": USER}),  # object data, "id"
        nep297("intent_failed", [{"intent_id": "i2", "reason": "slippage"}, {"intent_id": "i3"}]),
        nep297("intent_verified", [{"intent_id": 42, "solver_account": "s2.near"}]),
        nep297("something_else", [{"intent_id": "i4"}]),  # unknown event: nothing
        nep297("intent_verified", [{"no_id": 1}]),  # no id: nothing
    ]
    rows, state = verifier("on_intent_solved", {}, logs=logs)
    updates = table(rows, "intent_updates")
    assert [(u["intent_id"], u["status"], u["solver_id"], u["signer_id"], u["failure"]) for u in updates] == [
        ("i1", "verified", SOLVER, USER, ""),
        ("i2", "failed", "", "", "slippage"),
        ("i3", "failed", "", "", "execution failed at solver"),
        ("42", "verified", "s2.near", "", ""),
    ]
    assert state.verified_ns.get("i1") == T0 and state.verified_ns.get("42") == T0


def test_other_standard_event_with_intent_words_ignored() -> None:
    line = PREFIX + json.dumps({"standard": "dip4", "version": "0.3.0", "event": "intent_verified",
                                "data": [{"intent_id": "x"}]})
    rows, _ = verifier("on_intent_solved", {}, logs=[line])
    assert rows.tables["intent_updates"] == []


# --- verify calls ---------------------------------------------------------------------------

def test_verify_and_solve_pending_with_intent_fields() -> None:
    rows, state = verifier("verify_and_solve", {"intent": INTENT, "solver_account": SOLVER},
                           logs=[f"Verified intent intent-1, calling solver at {SOLVER}"], receipt_id="V1",
                           tx_hash="TX1")
    pending, verified = table(rows, "intent_updates")
    assert pending["status"] == "pending" and pending["intent_id"] == "intent-1"
    assert pending["contract_id"] == VERIFIER
    assert pending["signer_id"] == USER and pending["solver_id"] == SOLVER
    assert pending["action"] == "swap"
    assert pending["tokens"] == ["wrap.near", "usdt.tether-token.near"]
    assert pending["amounts"] == ["1000000000000000000000000", "3500000"]
    assert pending["deadline"] == "1777000600000000000"
    assert pending["receipt_id"] == "V1" and pending["tx_hash"] == "TX1" and pending["method_name"] == "verify_and_solve"
    assert verified["status"] == "verified" and verified["solver_id"] == SOLVER
    assert state.verified_ns.get("intent-1") == T0


def test_verify_intent_then_log() -> None:
    rows, _ = verifier("verify_intent", {"intent": INTENT}, logs=["Intent verified: intent-1"])
    assert statuses(rows) == [("intent-1", "pending"), ("intent-1", "verified")]
    assert table(rows, "intent_updates")[0]["solver_id"] == ""


def test_verify_multiple_intents() -> None:
    second = dict(INTENT, id="intent-2", action="transfer")
    rows, _ = verifier("verify_multiple_intents", {"intents": [INTENT, second]})
    assert statuses(rows) == [("intent-1", "pending"), ("intent-2", "pending")]
    assert [u["action"] for u in table(rows, "intent_updates")] == ["swap", "transfer"]


@pytest.mark.parametrize("panic, status", [
    ("Smart contract panicked: Intent expired", "expired"),
    ("Smart contract panicked: Deadline passed", "expired"),
    ("Smart contract panicked: Insufficient balance", "failed"),
])
def test_failed_verify_receipt(panic: str, status: str) -> None:
    rows, state = verifier("verify_and_solve", {"intent": INTENT, "solver_account": SOLVER},
                           status=failure_status(panic), logs=["Intent verified: intent-1"])
    updates = table(rows, "intent_updates")
    assert statuses(rows) == [("intent-1", "pending"), ("intent-1", status)]  # the log does not count
    assert updates[1]["failure"] == panic
    assert "intent-1" not in state.verified_ns


def test_logs_of_failed_receipts_advance_nothing() -> None:
    rows, state = verifier("on_intent_solved", {"intent_id": "intent-1"}, status=failure_status("x"),
                           logs=["Intent intent-1 was successfully solved", nep297("intent_completed", [{"id": "intent-1"}])])
    assert rows.count() == 0
    rows, _ = solver({"intent_id": "intent-1", "user": USER, "input_amount": "1"}, status=failure_status("boom"),
                     logs=["Executing intent intent-1 for user alice.near"])
    assert rows.tables["intent_updates"] == []


@pytest.mark.parametrize("args", [b"not json", {"intent": {"no_id": 1}}, {"intents": "x"}, [1]])
def test_undecodable_verify_args_dead_lettered_logs_still_applied(args: object) -> None:
    rows, _ = verifier("verify_intent", args, logs=["Intent verified: intent-1"], receipt_id="BAD")
    (dl,) = table(rows, "dead_letters")
    assert dl["kind"] == "args" and dl["receipt_id"] == "BAD" and "verify_intent arguments undecodable" in dl["reason"]
    assert statuses(rows) == [("intent-1", "verified")]


# --- solver ---------------------------------------------------------------------------------

SOLVE_ARGS = {"intent_id": "intent-1", "user": USER, "input_amount": "1000000000000000000000000"}


def test_solve_intent_success_with_latency_from_verify_time() -> None:
    state = workshop.WorkshopState(250)
    verifier("verify_and_solve", {"intent": INTENT, "solver_account": SOLVER},
             logs=[f"Verified intent intent-1, calling solver at {SOLVER}"], state=state, height=100, ts_ns=T0)
    rows, _ = solver(SOLVE_ARGS, state=state, height=102, ts_ns=T0 + 1_234_000_000, gas_burnt=3_000_000_000_000,
                     status=ok_value({"intent_id": "intent-1", "success": True, "output_amount": "3600000",
                                      "fee_amount": "36000"}), receipt_id="S1")
    (e,) = table(rows, "solver_executions")
    assert e["contract_id"] == VERIFIER  # filed under the tracked predecessor verifier
    assert e["solver_id"] == SOLVER and e["intent_ids"] == ["intent-1"]
    assert e["success"] == 1 and e["failure"] == ""
    assert e["latency_s"] == pytest.approx(1.234)
    assert e["gas_burnt"] == 3_000_000_000_000 and e["receipt_id"] == "S1" and e["method_name"] == "solve_intent"


def test_solve_intent_success_false() -> None:
    rows, _ = solver(SOLVE_ARGS, status=ok_value({"intent_id": "intent-1", "success": False, "output_amount": "0",
                                                  "fee_amount": "0"}))
    (e,) = table(rows, "solver_executions")
    assert e["success"] == 0 and e["failure"] == "solver returned success=false"
    assert e["latency_s"] is None  # never saw it verified


def test_solve_intent_panics() -> None:
    rows, _ = solver(SOLVE_ARGS, status=failure_status("Smart contract panicked: no liquidity"))
    (e,) = table(rows, "solver_executions")
    assert e["success"] == 0 and e["failure"] == "Smart contract panicked: no liquidity"


@pytest.mark.parametrize("value", [{"SuccessValue": ""}, ok_value("done"), ok_value({"success": True}),
                                   {"SuccessReceiptId": "abc"}])
def test_solve_intent_other_success_values_are_success(value: dict) -> None:
    rows, _ = solver(SOLVE_ARGS, status=value)
    assert table(rows, "solver_executions")[0]["success"] == 1


def test_solver_receipt_from_untracked_predecessor_filed_under_solver() -> None:
    rows, _ = solver(SOLVE_ARGS, predecessor="someone.near", logs=["Executing intent intent-1 for user alice.near"])
    assert table(rows, "solver_executions")[0]["contract_id"] == SOLVER
    assert table(rows, "intent_updates")[0]["contract_id"] == SOLVER


def test_solver_receipt_from_a_predecessor_with_another_role_filed_under_solver() -> None:
    roles = dict(ROLES, **{"intents.near": Role.VERIFIER})
    rows, _ = solver(SOLVE_ARGS, predecessor="intents.near", roles=roles)
    assert table(rows, "solver_executions")[0]["contract_id"] == SOLVER


@pytest.mark.parametrize("args", [b"nope", {"user": USER}, [1]])
def test_undecodable_solve_args_dead_lettered(args: object) -> None:
    rows, _ = solver(args, receipt_id="BADS")
    assert rows.tables["solver_executions"] == []
    (dl,) = table(rows, "dead_letters")
    assert dl["receipt_id"] == "BADS" and "solve_intent arguments undecodable" in dl["reason"]


def test_other_solver_methods_only_logs() -> None:
    rows, _ = solver({"fee": 5}, method="set_fee")
    assert rows.count() == 0


def test_latency_forgotten_after_lookback_blocks() -> None:
    state = workshop.WorkshopState(10)
    verifier("verify_intent", {"intent": INTENT}, logs=["Intent verified: intent-1"], state=state, height=100)
    rows, _ = solver(SOLVE_ARGS, state=state, height=110, ts_ns=T0 + 6_000_000_000)
    assert table(rows, "solver_executions")[0]["latency_s"] == pytest.approx(6.0)
    rows, _ = solver(SOLVE_ARGS, state=state, height=111, ts_ns=T0 + 7_000_000_000)
    assert table(rows, "solver_executions")[0]["latency_s"] is None


def test_latest_verification_time_is_used() -> None:
    # the latest one: a resumed run that replays only the last lookback blocks must agree
    state = workshop.WorkshopState(250)
    verifier("verify_intent", {"intent": INTENT}, logs=["Intent verified: intent-1"], state=state, height=100, ts_ns=T0)
    verifier("on_intent_solved", {}, logs=["Intent verified: intent-1"], state=state, height=101,
             ts_ns=T0 + 5_000_000_000)
    assert state.verified_ns.get("intent-1") == T0 + 5_000_000_000


def test_latency_identical_after_replay_of_lookback_blocks() -> None:
    """A solver latency computed by a resumed decoder (replaying lookback blocks) equals a clean run's."""
    lookback = 5
    script = [  # (height, verified ids)
        (100, ["a"]), (103, ["a"]), (104, ["b"]), (107, []), (109, ["b"]),
    ]

    def run(start: int) -> dict[str, float | None]:
        state = workshop.WorkshopState(lookback)
        for height, ids in script:
            if height >= start:
                verifier("on_intent_solved", {}, logs=[f"Intent verified: {i}" for i in ids], state=state,
                         height=height, ts_ns=T0 + height * 1_000_000_000)
        out = {}
        for i in ("a", "b"):
            rows, _ = solver(dict(SOLVE_ARGS, intent_id=i), state=state, height=110, ts_ns=T0 + 110 * 1_000_000_000)
            out[i] = table(rows, "solver_executions")[0]["latency_s"]
        return out

    clean = run(0)
    assert clean == run(110 - lookback)
    assert clean == {"a": None, "b": pytest.approx(1.0)}
