"""indexer.decode.status: every outcome status form of the Lake, with real statuses where they exist."""

from __future__ import annotations

import base64
import json

import pytest

from decodehelpers import TX, fixture_folder, read_block
from indexer.decode.status import FAILURE, SUCCESS, Status, failure_message, parse_status


def _statuses_in_fixtures() -> list[dict]:
    found = [o["outcome"]["status"] for o in TX["receipts_outcome"]]
    for h in (107503704, 115185108):
        _, shards = read_block(fixture_folder(h))
        for _, shard in shards:
            found += [r["execution_outcome"]["outcome"]["status"] for r in shard["receipt_execution_outcomes"]]
    return found


def test_success_value_empty() -> None:
    s = parse_status({"SuccessValue": ""})
    assert s.ok and s.label == SUCCESS and s.failure == ""
    assert s.value_b64 == ""
    assert s.value_json() is None


def test_success_value_with_json_payload_from_real_outcome() -> None:
    # 9y2toH... (mt_resolve_transfer on v2_1.omni.hot.tg) returned ["2541550816890741"]
    raw = next(o for o in TX["receipts_outcome"] if o["id"].startswith("9y2toH"))["outcome"]["status"]
    s = parse_status(raw)
    assert s.ok and s.value_b64 == "WyIyNTQxNTUwODE2ODkwNzQxIl0="
    assert s.value_json() == ["2541550816890741"]


def test_success_value_string_json() -> None:
    raw = next(o for o in TX["receipts_outcome"] if o["id"].startswith("9eXE"))["outcome"]["status"]
    assert parse_status(raw).value_json() == "1777389836000001146850"


def test_value_json_not_json_or_not_base64_is_none() -> None:
    assert Status(True, value_b64=base64.b64encode(b"not json {").decode()).value_json() is None
    assert Status(True, value_b64="!!!").value_json() is None
    assert Status(True, value_b64=None).value_json() is None
    assert Status(True, value_b64=base64.b64encode(b'{"success": false}').decode()).value_json() == {"success": False}


def test_success_receipt_id() -> None:
    s = parse_status({"SuccessReceiptId": "z6RxSWKZD7cgpU2sArqTVUQQRLe2mv8z2sJrMHti1uA"})
    assert s.ok and s.failure == "" and s.value_b64 is None and s.value_json() is None


def test_function_call_execution_error_gives_panic_text_verbatim() -> None:
    # the real failed receipt of block 107503704 (corn.v1.corn-staging.near)
    _, shards = read_block(fixture_folder(107503704))
    raw = next(r["execution_outcome"]["outcome"]["status"] for _, s in shards for r in s["receipt_execution_outcomes"]
               if r["execution_outcome"]["id"] == "34Bstf8ZpJt4DLk16s4ckTKrVRgZpue5b3gKvVQSVw4B")
    s = parse_status(raw)
    assert not s.ok and s.label == FAILURE
    assert s.failure == "Smart contract panicked: Distribution amount exceeds total mintable"
    assert s.value_b64 is None


def test_panic_text_with_unicode_and_quotes_is_verbatim() -> None:
    msg = 'Smart contract panicked: deadline has expired "x" – ü'
    s = parse_status({"Failure": {"ActionError": {"index": 0, "kind": {"FunctionCallError": {"ExecutionError": msg}}}}})
    assert s.failure == msg


def test_other_function_call_error() -> None:
    s = parse_status({"Failure": {"ActionError": {"index": 0, "kind": {"FunctionCallError": {
        "MethodResolveError": "MethodNotFound"}}}}})
    assert not s.ok
    assert s.failure == 'FunctionCallError: {"MethodResolveError":"MethodNotFound"}'


def test_other_action_error_kind_real_delegate_nonce() -> None:
    # the real failed receipt of block 115185108 (a meta-transaction with a used nonce)
    _, shards = read_block(fixture_folder(115185108))
    raw = next(r["execution_outcome"]["outcome"]["status"] for _, s in shards for r in s["receipt_execution_outcomes"]
               if r["execution_outcome"]["id"] == "a6HpWCRbCYcKGgsJThF8x36M743bxzetYsTrigwxxLh")
    s = parse_status(raw)
    assert not s.ok
    assert s.failure.startswith("DelegateActionInvalidNonce: ")
    assert json.loads(s.failure.split(": ", 1)[1]) == {"ak_nonce": 114504837000230, "delegate_nonce": 114504837000230}


def test_action_error_account_does_not_exist() -> None:
    s = parse_status({"Failure": {"ActionError": {"index": 1, "kind": {"AccountDoesNotExist": {"account_id": "x.near"}}}}})
    assert s.failure == 'AccountDoesNotExist: {"account_id":"x.near"}'


def test_invalid_tx_error() -> None:
    s = parse_status({"Failure": {"InvalidTxError": {"InvalidNonce": {"tx_nonce": 5, "ak_nonce": 6}}}})
    assert not s.ok
    assert s.failure.startswith("InvalidTxError: ")
    assert json.loads(s.failure.split(": ", 1)[1]) == {"InvalidNonce": {"tx_nonce": 5, "ak_nonce": 6}}


def test_unknown() -> None:
    s = parse_status("Unknown")
    assert not s.ok and s.failure == "Unknown" and s.label == FAILURE


@pytest.mark.parametrize("bad", [{}, {"Weird": 1}, "Pending", None, 3, ["SuccessValue", ""]])
def test_unrecognised_status_raises_value_error(bad: object) -> None:
    with pytest.raises(ValueError, match="unrecognised execution status"):
        parse_status(bad)


def test_failure_message_of_non_dict_is_compact_json() -> None:
    assert failure_message("Oops") == '"Oops"'
    assert failure_message({"a": 1, "b": 2}) == '{"a":1,"b":2}'


def test_every_status_in_the_fixtures_parses() -> None:
    statuses = _statuses_in_fixtures()
    parsed = [parse_status(s) for s in statuses]
    assert sum(not p.ok for p in parsed) == 3  # two panics in 107503704, one delegate error in 115185108
    for raw, p in zip(statuses, parsed):
        assert p.ok == ("Failure" not in raw)
        assert (p.failure != "") == (not p.ok)
