"""POST /api/v1/intents/validate: every rule, every error at once, and never a 5xx."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apiserver import fixed_clock, serve  # noqa: F401 - serve is a fixture

NOW = "2026-01-01T00:00:00Z"
LATER = "2026-01-01T00:10:00.000Z"
NOW_NS = 1_767_225_600 * 10**9


def _msg(signer: str, *intents: dict[str, Any], deadline: str = LATER) -> dict[str, Any]:
    return {"signer_id": signer, "deadline": deadline, "nonce": "AAAA", "verifying_contract": "intents.near",
            "intents": list(intents)}


WRAP, USDT = "nep141:wrap.near", "nep141:usdt.tether-token.near"
EVERY_KIND = [
    {"intent": "token_diff", "diff": {WRAP: "-100", USDT: "350"}, "referral": "app.near"},
    {"intent": "transfer", "receiver_id": "bob.near", "tokens": {WRAP: "5", "nep245:v2_1.omni.hot.tg:56_x": "1"}},
    {"intent": "ft_withdraw", "token": "wrap.near", "receiver_id": "bob.near", "amount": "10", "memo": "m"},
    {"intent": "nft_withdraw", "token": "nft.near", "receiver_id": "bob.near", "token_id": "42"},
    {"intent": "mt_withdraw", "token": "v2_1.omni.hot.tg", "receiver_id": "bob.near", "token_ids": ["1", "2"],
     "amounts": ["3", "4"]},
    {"intent": "native_withdraw", "receiver_id": "bob.near", "amount": "1000000000000000000000000"},
    {"intent": "storage_deposit", "contract_id": "wrap.near", "deposit_for_account_id": "bob.near",
     "amount": "1250000000000000000000"},
    {"intent": "add_public_key", "public_key": "ed25519:5fuWD9aMWCe7ryVuhMSdyH9uNuKBGovTpBZMX9rAhXhQ"},
    {"intent": "remove_public_key", "public_key": "ed25519:5fuWD9aMWCe7ryVuhMSdyH9uNuKBGovTpBZMX9rAhXhQ"},
    {"intent": "set_auth_by_predecessor_id", "enabled": False},
    {"intent": "auth_call", "contract_id": "app.near", "msg": "{}", "attached_deposit": "0"},
    {"intent": "imt_mint", "receiver_id": "bob.near", "tokens": {"points": "10"}},
    {"intent": "imt_burn", "minter_id": "app.near", "tokens": {"points": "10"}},
]


def _post(api, body: Any):  # type: ignore[no-untyped-def]
    r = api.post("/api/v1/intents/validate", data=json.dumps(body), headers={"Content-Type": "application/json"})
    assert r.status == 200, r
    return r.json


def _codes(result: dict[str, Any]) -> list[tuple[str, str]]:
    return [(e["path"], e["code"]) for e in result["errors"]]


@pytest.fixture
def api(store, serve):  # type: ignore[no-untyped-def]
    return serve(store, now=fixed_clock(NOW), api_validate_limit="100000/minute")


def test_every_dip4_kind_valid(api) -> None:  # type: ignore[no-untyped-def]
    assert _post(api, {"type": "dip4", "messages": [_msg("alice.near", *EVERY_KIND)]}) == {"valid": True, "errors": []}


def test_a_balanced_settlement_is_valid_and_an_unbalanced_one_is_not(api) -> None:  # type: ignore[no-untyped-def]
    user = _msg("alice.near", {"intent": "token_diff", "diff": {WRAP: "-100", USDT: "350"}, "referral": "app.near"})
    solver = _msg("solver.near", {"intent": "token_diff", "diff": {WRAP: "100", USDT: "-350"}})
    assert _post(api, {"type": "dip4", "messages": [user, solver]})["valid"] is True
    greedy = _msg("solver.near", {"intent": "token_diff", "diff": {WRAP: "100", USDT: "-349"}})
    result = _post(api, {"type": "dip4", "messages": [user, greedy]})
    assert _codes(result) == [("$.messages", "unbalanced")]
    assert USDT in result["errors"][0]["message"] and "+1" in result["errors"][0]["message"]


def test_every_error_at_once_with_its_path(api) -> None:  # type: ignore[no-untyped-def]
    body = {"type": "dip4", "messages": [
        _msg("Alice", deadline="2025-12-31T23:59:59Z"),
        _msg("bob.near",
             {"intent": "token_diff", "diff": {"wrap.near": "5", WRAP: "0", USDT: "-" + "9" * 39,
                                               "nep245:x.near": "1", "nep171:nft.near:7": "1.5"}},
             {"intent": "transfer", "receiver_id": "bob.near", "tokens": {WRAP: "-5"}},
             {"intent": "ft_withdraw", "token": "wrap.near", "receiver_id": "-bad-", "amount": str(2**128)},
             {"intent": "mt_withdraw", "token": "mt.near", "receiver_id": "bob.near", "token_ids": ["1"],
              "amounts": ["1", "2"]},
             {"intent": "native_withdraw", "receiver_id": "bob.near", "amount": 5},
             {"intent": "add_public_key", "public_key": "rsa:xyz"},
             {"intent": "teleport"}),
    ]}
    codes = _codes(_post(api, body))
    expected = [
        ("$.messages[0].signer_id", "account_id"),
        ("$.messages[0].deadline", "deadline_past"),
        ("$.messages[0].intents", "too_short"),
        ("$.messages[1].intents[0].diff['wrap.near']", "token_id"),
        (f"$.messages[1].intents[0].diff[{WRAP!r}]", "amount_zero"),
        (f"$.messages[1].intents[0].diff[{USDT!r}]", "amount_range"),
        ("$.messages[1].intents[0].diff['nep245:x.near']", "token_id"),
        ("$.messages[1].intents[0].diff['nep171:nft.near:7']", "amount_format"),
        (f"$.messages[1].intents[1].tokens[{WRAP!r}]", "amount_sign"),
        ("$.messages[1].intents[2].receiver_id", "account_id"),
        ("$.messages[1].intents[2].amount", "amount_range"),
        ("$.messages[1].intents[4].amount", "string_type"),
        ("$.messages[1].intents[5].public_key", "public_key"),
        ("$.messages[1].intents[6]", "union_tag_invalid"),
    ]
    assert sorted(codes) == sorted(expected)


def test_semantic_rules_once_fields_are_valid(api) -> None:  # type: ignore[no-untyped-def]
    body = {"type": "dip4", "messages": [_msg(
        "bob.near",
        {"intent": "mt_withdraw", "token": "mt.near", "receiver_id": "carol.near", "token_ids": ["1"],
         "amounts": ["1", "2"]},
        {"intent": "transfer", "receiver_id": "bob.near", "tokens": {WRAP: "5"}})]}
    assert _codes(_post(api, body)) == [("$.messages[0].intents[0].amounts", "length_mismatch"),
                                        ("$.messages[0].intents[1].receiver_id", "self_transfer")]


def _workshop(**fields: Any) -> dict[str, Any]:
    intent = {"id": "intent-1", "user_account": "alice.near", "action": "swap", "input_token": "wrap.near",
              "input_amount": "5000", "output_token": "usdc.near", "min_output_amount": "4950",
              "max_slippage": 0.5, "deadline": NOW_NS + 600 * 10**9}
    intent.update(fields)
    return {"type": "workshop", "intent": {k: v for k, v in intent.items() if v is not None}}


def test_workshop_intent(api) -> None:  # type: ignore[no-untyped-def]
    assert _post(api, _workshop()) == {"valid": True, "errors": []}
    assert _post(api, _workshop(deadline="2026-01-01T00:05:00Z"))["valid"] is True
    codes = _codes(_post(api, _workshop(input_amount="0", output_token="wrap.near", max_slippage=150,
                                        deadline=NOW_NS - 1, user_account=None, min_output_amount="-3")))
    assert sorted(codes) == sorted([
        ("$.intent.user_account", "missing"), ("$.intent.input_amount", "amount_sign"),
        ("$.intent.min_output_amount", "amount_sign"), ("$.intent.max_slippage", "slippage_range"),
        ("$.intent.deadline", "deadline_past"), ("$.intent.output_token", "same_token")])
    assert _codes(_post(api, _workshop(output_token="wrap.near"))) == [("$.intent.output_token", "same_token")]
    assert _codes(_post(api, _workshop(id="has space"))) == [("$.intent.id", "string_pattern_mismatch")]


@pytest.mark.parametrize("body, code", [
    ({}, "union_tag_not_found"), ({"type": "solana"}, "union_tag_invalid"), ([], "model_attributes_type"),
    (None, "model_attributes_type"), ({"type": "dip4", "messages": []}, "too_short"),
])
def test_wrong_shapes_are_results_not_errors(api, body: Any, code: str) -> None:  # type: ignore[no-untyped-def]
    result = _post(api, body)
    assert result["valid"] is False and result["errors"][0]["code"] == code


def test_a_body_that_is_not_json_is_a_400_problem(api) -> None:  # type: ignore[no-untyped-def]
    for raw in (b"{not json", b"", b"\xff\xfe", b"[" * 100_000):
        r = api.post("/api/v1/intents/validate", data=raw, headers={"Content-Type": "application/json"})
        assert r.status == 400, r
        assert r.headers["Content-Type"].startswith("application/problem+json")
        assert "Traceback" not in r.raw.decode(errors="replace")
    r = api.post("/api/v1/intents/validate", data=b'"' + b"x" * 300_000 + b'"')
    assert r.status == 413


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=25,
)
KEYS = st.sampled_from(["type", "messages", "intent", "intents", "signer_id", "deadline", "diff", "tokens",
                        "amount", "receiver_id", "token", "id", "input_token", "output_token", "max_slippage"])
VALUES = st.sampled_from(["dip4", "workshop", "token_diff", "transfer", "ft_withdraw", "mt_withdraw", WRAP,
                          "alice.near", LATER, "-5", "5", "0", str(2**200)])
SHAPED = st.recursive(VALUES | JSON, lambda inner: st.dictionaries(KEYS, inner, max_size=6)
                      | st.lists(inner, max_size=3), max_leaves=30)


@settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=st.one_of(JSON, SHAPED, st.builds(lambda m: {"type": "dip4", "messages": m}, SHAPED),
                      st.builds(lambda i: {"type": "workshop", "intent": i}, SHAPED)))
def test_fuzz_never_5xx(validate_api, body: Any) -> None:  # type: ignore[no-untyped-def]
    r = validate_api.post("/api/v1/intents/validate", data=json.dumps(body),
                          headers={"Content-Type": "application/json"})
    assert r.status == 200, r
    result = r.json
    assert isinstance(result["valid"], bool) and isinstance(result["errors"], list)
    assert result["valid"] == (result["errors"] == [])
    for e in result["errors"]:
        assert set(e) == {"path", "code", "message"} and e["path"].startswith("$")


@pytest.fixture(scope="module")
def validate_api(chdb_store_path):  # type: ignore[no-untyped-def]
    """One API for every fuzz example (hypothesis runs them in one test)."""
    import uuid

    from apiserver import ApiServer, api_settings
    from indexer.store import migrations
    from indexer.store.client import Store

    store = Store(f"chdb://{chdb_store_path}", database=f"t_{uuid.uuid4().hex[:12]}")
    migrations.migrate(store)
    server = ApiServer(api_settings(api_validate_limit="100000/minute"), store, fixed_clock(NOW))
    yield server
    server.close()
