"""indexer.decode.receipt: parse_actions / args_text on real actions of the fixtures."""

from __future__ import annotations

import base64
import json

import pytest

from decodehelpers import MAIN_RECEIPT_ID, TX, fixture_folder, main_args, read_block, tx_receipt
from indexer.decode.receipt import FunctionCall, TrackedReceipt, args_text, parse_actions
from indexer.decode.status import Status


def _fixture_receipt(height: int, receipt_id: str) -> dict:
    _, shards = read_block(fixture_folder(height))
    return next(r["receipt"] for _, s in shards for r in s["receipt_execution_outcomes"]
                if r["receipt"]["receipt_id"] == receipt_id)


def test_real_execute_intents_function_call() -> None:
    actions = tx_receipt(MAIN_RECEIPT_ID)["receipt"]["Action"]["actions"]
    kinds, calls, deposit = parse_actions(actions)
    assert kinds == ["FunctionCall"]
    assert deposit == 0
    assert len(calls) == 1
    call = calls[0]
    assert call.method_name == "execute_intents"
    assert call.gas == 300_000_000_000_000
    assert call.deposit == 0
    assert call.args_raw == base64.b64decode(actions[0]["FunctionCall"]["args"])
    assert call.args_json() == main_args()
    assert len(call.args_json()["signed"]) == 2
    assert args_text(call) == call.args_raw.decode()
    assert json.loads(args_text(call)) == main_args()


def test_real_function_call_with_one_yocto_deposit() -> None:
    # 9eXE... withdraw on v2_1.omni.hot.tg: deposit "1"
    r = next(x for x in TX["receipts"] if x["receipt_id"].startswith("9eXE"))
    kinds, calls, deposit = parse_actions(r["receipt"]["Action"]["actions"])
    assert kinds == ["FunctionCall"] and deposit == 1 and calls[0].deposit == 1
    assert calls[0].method_name == "withdraw" and calls[0].gas == 7_000_000_000_000
    assert calls[0].args_json() == {"amount": "2528550816890741", "receiver_id": "2EXw7ycP6tb4Yyqm6WQxTF1zsLwR",
                                    "token_id": "56_11111111111111111111"}


def test_real_transfer_refund_deposit_exceeds_64_bits() -> None:
    r = next(x for x in TX["receipts"] if x["receipt_id"].startswith("3Fop"))
    kinds, calls, deposit = parse_actions(r["receipt"]["Action"]["actions"])
    assert kinds == ["Transfer"] and calls == []
    assert deposit == 12194367129602600000000 and deposit > 2**64


def test_real_create_account_string_action_add_key_transfer() -> None:
    receipt = _fixture_receipt(107503704, "92nz2arX34dfkJvvRdD4sCE8fygyL13JVzn6Ugnfm1Nz")
    kinds, calls, deposit = parse_actions(receipt["receipt"]["Action"]["actions"])
    assert kinds == ["CreateAccount", "AddKey", "Transfer"]
    assert calls == []
    assert deposit == int(receipt["receipt"]["Action"]["actions"][2]["Transfer"]["deposit"])


def test_real_batch_of_function_calls_sums_gas_and_keeps_order() -> None:
    receipt = _fixture_receipt(115185108, "5xj2YCbrHKJBho4XpnhtU58MLnsMLdXhsxENDZrWcaXr")
    kinds, calls, deposit = parse_actions(receipt["receipt"]["Action"]["actions"])
    assert kinds == ["FunctionCall"] * 4
    assert [c.method_name for c in calls] == ["new_user"] * 4
    assert sum(c.gas for c in calls) == 4 * 7_000_000_000_000
    assert [c.args_json()["account_id"] for c in calls] == [
        "i5466779148-hot.tg", "i1629615228.tg", "i5220252859.tg", "mlaknow.tg"]
    assert deposit == 0


def test_real_delegate_action_is_a_kind_without_calls() -> None:
    receipt = _fixture_receipt(105793821, "Dpego7SpsK36PyXjUMrFoSze8ZpNsB9xhb3XJJYtXSix")
    kinds, calls, deposit = parse_actions(receipt["receipt"]["Action"]["actions"])
    assert kinds == ["Delegate"] and calls == [] and deposit == 0


def test_deposits_summed_over_actions() -> None:
    actions = [
        {"Transfer": {"deposit": "340282366920938463463374607431768211455"}},
        {"FunctionCall": {"args": "", "deposit": "1", "gas": 5, "method_name": "m"}},
        "CreateAccount",
        {"Stake": {"stake": "100", "public_key": "ed25519:x"}},
    ]
    kinds, calls, deposit = parse_actions(actions)
    assert kinds == ["Transfer", "FunctionCall", "CreateAccount", "Stake"]
    assert deposit == 2**128  # the stake is not a deposit
    assert calls[0].args_raw == b"" and calls[0].gas == 5


@pytest.mark.parametrize("args", ["not base64!", "eyJ", "@@@@"])
def test_bad_base64_args_raise_value_error(args: str) -> None:
    with pytest.raises(ValueError, match="base64"):
        parse_actions([{"FunctionCall": {"args": args, "deposit": "0", "gas": 1, "method_name": "m"}}])


@pytest.mark.parametrize("action", [["FunctionCall"], {"A": {}, "B": {}}, {}, 5])
def test_unrecognised_action_shapes_raise_value_error(action: object) -> None:
    with pytest.raises(ValueError, match="unrecognised action"):
        parse_actions([action])


def test_non_integer_deposit_raises_value_error() -> None:
    with pytest.raises(ValueError):
        parse_actions([{"Transfer": {"deposit": "lots"}}])


def test_args_text_only_for_json() -> None:
    assert args_text(None) == ""
    assert args_text(FunctionCall("m", b"", 0, 0)) == ""
    assert args_text(FunctionCall("m", b"\x00\x01binary", 0, 0)) == ""
    assert args_text(FunctionCall("m", b"\xff\xfe", 0, 0)) == ""
    assert args_text(FunctionCall("m", b'{"a": "\xc3\xbc"}', 0, 0)) == '{"a": "\u00fc"}'
    assert args_text(FunctionCall("m", b"[1,2]", 0, 0)) == "[1,2]"


def test_args_json_raises_value_error_on_non_json() -> None:
    with pytest.raises(ValueError):
        FunctionCall("m", b"nope", 0, 0).args_json()


def test_tracked_receipt_method_name() -> None:
    base = dict(block_height=1, block_timestamp="0.000", block_timestamp_ns=0, block_hash="h", shard_id=0,
                receipt_id="r", receiver_id="a", predecessor_id="b", signer_id="c", tx_hash="",
                status=Status(True), gas_burnt=0, tokens_burnt="0")
    assert TrackedReceipt(**base).method_name == ""
    r = TrackedReceipt(**base, calls=[FunctionCall("first", b"", 0, 0), FunctionCall("second", b"", 0, 0)])
    assert r.method_name == "first"
