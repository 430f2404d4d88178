"""indexer.decode.intent_hash against published vectors and the real intents.near transaction.

Where a vector states no hash, it is checked the way the Verifier checks it: the signature in the
vector must verify over the computed hash (ed25519 for nep413, sep53 and ton_connect; secp256k1
public-key recovery for erc191 / tip191, whose signer_id is the address of the recovered key), or
the WebAuthn ``challenge`` must be the base64url of the hash.

Sources: near/intents (``contracts/defuse/core/src/payload/*.rs``, ``crates/signatures/*``) and
defuse-protocol/sdk-monorepo (``packages/intents-sdk/src/intents/intent-hash.test.ts``,
``intent-hashes/ton-connect.test.ts``), whose hashes were checked against intents.near's
``simulate_intents``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import string

import base58
import coincurve
import pytest
from Crypto.Hash import keccak
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from hypothesis import given, settings
from hypothesis import strategies as st

from decodehelpers import MAIN_RECEIPT_ID, main_args, tx_outcome
from indexer.decode import intent_hash as ih
from indexer.decode.nep297 import parse_event


def _key(text: str) -> bytes:
    """The raw bytes of a NEAR-style ``curve:base58`` key or signature."""
    return base58.b58decode(text.split(":", 1)[1])


def _ed25519_verifies(public_key: bytes, signature: bytes, message: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
    except Exception:
        return False
    return True


def _recovered_public_key(signature: bytes, digest: bytes) -> bytes:
    """The uncompressed secp256k1 key (64 bytes, no 0x04) that made ``signature`` (r, s, v) over ``digest``."""
    return coincurve.PublicKey.from_signature_and_message(signature, digest, hasher=None).format(False)[1:]


def _eth_address(public_key: bytes) -> str:
    return "0x" + keccak.new(data=public_key, digest_bits=256).digest()[-20:].hex()


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


# --- the real transaction: the hashes its events carry ---------------------------------------

def test_real_nep413_payloads_hash_to_the_intent_hashes_of_their_events() -> None:
    logs = tx_outcome(MAIN_RECEIPT_ID)["outcome"]["logs"]
    executed = [parse_event(line) for line in logs if '"intents_executed"' in line]
    assert len(executed) == 1
    by_nonce = {item["nonce"]: item["intent_hash"] for item in executed[0].items()}
    signed = main_args()["signed"]
    assert len(signed) == len(by_nonce) == 2
    for payload in signed:
        assert ih.intent_hash(payload) == by_nonce[payload["payload"]["nonce"]]


# --- literal hashes -----------------------------------------------------------------------------

RAW_ED25519_MULTI_RS = {  # near/intents multi.rs test
    "standard": "raw_ed25519",
    "payload": "{\"signer_id\":\"74affa71ab030d400fdfa1bed033dfa6fd3ae34f92d17c046ebe368e80d53751\",\"verifying_contract\":\"intents.near\",\"deadline\":{\"timestamp\":1732035219},\"nonce\":\"XVoKfmScb3G+XqH9ke/fSlJ/3xO59sNhCxhpG821BH8=\",\"intents\":[{\"intent\":\"token_diff\",\"diff\":{\"nep141:base-0x833589fcd6edb6e08f4c7c32d4f71b54bda02913.omft.near\":\"-1000\",\"nep141:eth-0xdac17f958d2ee523a2206206994597c13d831ec7.omft.near\":\"998\"}}]}",  # noqa: E501
    "public_key": "ed25519:8rVvtHWFr8hasdQGGD5WiQBTyr4iH2ruEPPVfj491RPN",
    "signature": "ed25519:3vtbNQJHZfuV1s5DykzyjkbNLc583hnkrhTz57eDhd966iqzkor6Twgr4Loh2C195SCSEsiGfrd6KcxpjNq9ZbVj",
}

ERC191_CAFE = {  # sdk-monorepo: non-ASCII payload ("café"): the length prefix counts UTF-8 bytes
    "standard": "erc191",
    "payload": '{"signer_id":"0x5a95b4a393f0a8def7ac46907e1fb0782cd3538a","verifying_contract":"intents.near","deadline":"2025-07-30T12:57:16.264Z","nonce":"ZSqiEM8mCXluSxIrG03jw6th7vMfKNLRmYKaAkKb1xk=","intents":[{"amount":"100000000","intent":"ft_withdraw","memo":"café","receiver_id":"btc.omft.near","token":"btc.omft.near"}]}',  # noqa: E501
    "signature": "secp256k1:CvkU692XuyALYxSDvrpFviJozq5DPrwADzqqV6DA1DDAPy93PaBvWPEngZzREqJetbLpBEmYSV7Joo61yXKXAoJ3i",
}


def test_raw_ed25519_vector_of_near_intents() -> None:
    assert ih.intent_hash(RAW_ED25519_MULTI_RS) == "8LKE47o44ybZQR9ozLyDnvMDTh4Ao5ipy2mJWsYByG5Q"


def test_erc191_vector_with_non_ascii_text() -> None:
    # (its signature is a placeholder that recovers to no particular account: only the hash is checked)
    assert ih.intent_hash(ERC191_CAFE) == "APvv5zuHPLuSG4xwe24FiyCdiWVXVbkyfkXBBjGy5xJL"
    # counting characters instead of UTF-8 bytes gives another hash
    by_chars = ih.ERC191_PREFIX + str(len(ERC191_CAFE["payload"])).encode() + ERC191_CAFE["payload"].encode()
    assert base58.b58encode(keccak.new(data=by_chars, digest_bits=256).digest()).decode() != ih.intent_hash(ERC191_CAFE)


# --- vectors checked by their signatures --------------------------------------------------------

SDK_NEP413 = {
    "standard": "nep413",
    "payload": {"message": '{"deadline":"2035-11-03T15:05:57.549Z","intents":[],"signer_id":"226a0eceead177138b56937a05f8bdb19b4091a5cdc4419bdea07b3ea0bd9195"}',  # noqa: E501
                "nonce": "lsLpUoT0zvHcy1vPAEhdcY7jkUVJv1jYtdfFWkFGyvs=", "recipient": "intents.near"},
    "public_key": "ed25519:3KLfGdhUSYpdYtLvjRXDryT6Za5wEQHvhiJcBN398yjS",
    "signature": "ed25519:5ZwThUnnHDHqqMYE4A5A7jtAkGAyKYe63ZDmvvBysLkRt6YjyQwG1uyhc39VHZYxcmF9S3jsiAMSS9LWzB3FT8NZ",
}
SDK_SEP53 = {
    "standard": "sep53",
    "payload": '{\n  "signer_id": "1b1a88aa85913ee8ba7ffb093c7a77396c046be58414426ace3da33b19bc9846",\n  "verifying_contract": "intents.near",\n  "deadline": "2035-11-03T14:51:56.335Z",\n  "nonce": "331irxwHR+m4uNo8yVT2V5tG69OIYbshjbas8er0zvU=",\n  "intents": []\n}',  # noqa: E501
    "public_key": "ed25519:2poUXG8SwrwaSEmiEnqzLaVYQNJjvsMPkeq5h6zFz97b",
    "signature": "ed25519:2X7p3ZM6QGr2Pt5qpSuMSJKMwpZfzQQf7NVyZ8jduNpCkMrF6GhjP15x7xtVd9K372FTQNqzrodBtKFkjDA1jPWt",
}
SDK_TON_CONNECT = {
    "standard": "ton_connect",
    "address": "0:fa63f5195b0f8682d3f3413e2b40decfae7778b3691748a2d55dae5b243a3054",
    "domain": "tonconnect-demo-dapp-with-wallet.vercel.app",
    "timestamp": 1762354640,
    "payload": {"type": "text", "text": '{\n  "signer_id": "d1e7c122f8a43c7d7433548c4604edd4dffcfe5bb1d036499684980c115500bf",\n  "verifying_contract": "intents.near",\n  "deadline": "2035-11-03T14:57:16.445Z",\n  "nonce": "s7ne425+Pw+eVR7j02peS/wIxHKu64znkTJYeCTAfPk=",\n  "intents": []\n}'},  # noqa: E501
    "public_key": "ed25519:F8PB56zdMYNDL7Mq43DV4cV17uRqQkpn6ZygNdqavXCr",
    "signature": "ed25519:i5REHik6CRvvfnKsUtSDvxPeeLiPQsNMGpg9yARs9vtnZxSV9mht9K1tW2LZp8pGd4C83YZRXNG3Y5dBFdLMENd",
}


@pytest.mark.parametrize("signed", [SDK_NEP413, SDK_SEP53, SDK_TON_CONNECT], ids=lambda s: s["standard"])
def test_sdk_ed25519_vectors_sign_the_computed_hash(signed: dict) -> None:
    digest = ih.intent_hash_bytes(signed)
    assert _ed25519_verifies(_key(signed["public_key"]), _key(signed["signature"]), digest)
    assert not _ed25519_verifies(_key(signed["public_key"]), _key(signed["signature"]), digest[::-1])


SDK_ERC191 = {
    "standard": "erc191",
    "payload": '{\n  "signer_id": "0xdead698d1ff2efca2c4c1f171d6a92dd3b3e5e73",\n  "verifying_contract": "intents.near",\n  "deadline": "2035-11-03T14:56:10.273Z",\n  "nonce": "nwI7zQ3y64bUuyVKCy0Ar6mWyWJ4saYTC6JIrmE5tl8=",\n  "intents": []\n}',  # noqa: E501
    "signature": "secp256k1:C7BJg2rrPFWG17ZRQ4jFssKvDxwym3Erin5xoW3FncAUKtcHudESrRtfpBXjtS9eCRp4dE6TrQfpVJJKQK2LSbxZ5",
}
SDK_TIP191 = {
    "standard": "tip191",
    "payload": '{\n  "signer_id": "0xdead698d1ff2efca2c4c1f171d6a92dd3b3e5e73",\n  "verifying_contract": "intents.near",\n  "deadline": "2035-11-03T14:54:28.067Z",\n  "nonce": "w3dMuJp6v9PyJYyYSvMw+EcHqhHTrbtZWqdXb88k/IU=",\n  "intents": [],\n  "message_size_validation": "Validates message size compatibility with wallet signing requirements."\n}',  # noqa: E501
    "signature": "secp256k1:HDmTWTMrbckFD49vCTAF4XKPatECCuVXDqF1fN9TZoTYG6nEy1CoZXQ13nQMEwbe8j35Qikfym4tUKKgjnspkZtfh",
}


@pytest.mark.parametrize("signed", [SDK_ERC191, SDK_TIP191], ids=lambda s: s["standard"])
def test_sdk_secp256k1_vectors_recover_their_signer(signed: dict) -> None:
    digest = ih.intent_hash_bytes(signed)
    signer = json.loads(signed["payload"])["signer_id"]
    assert _eth_address(_recovered_public_key(_key(signed["signature"]), digest)) == signer
    # the prefixes differ, so the other standard's digest recovers someone else
    other = {**signed, "standard": "tip191" if signed["standard"] == "erc191" else "erc191"}
    assert _eth_address(_recovered_public_key(_key(signed["signature"]), ih.intent_hash_bytes(other))) != signer


# near/intents crates/signatures: (uncompressed public key, message, signature r|s|v)
SECP_CRATE_VECTORS = [
    ("erc191", "85a66984273f338ce4ef7b85e5430b008307e8591bb7c1b980852cf6423770b801f41e9438155eb53a5e20f748640093bb42ae3aeca035f7b7fd7a1a21f22f68",  # noqa: E501
     "Hello world!", "7800a70d05cde2c49ed546a6ce887ce6027c2c268c0285f6efef0cdfc4366b23643790f67a86468ee8301ed12cfffcb07c6530f90a9327ec057800fabd332e4701"),  # noqa: E501
    ("tip191", "85a66984273f338ce4ef7b85e5430b008307e8591bb7c1b980852cf6423770b801f41e9438155eb53a5e20f748640093bb42ae3aeca035f7b7fd7a1a21f22f68",  # noqa: E501
     "Hello, TRON!", "eea1651a60600ec4d9c45e8ae81da1a78377f789f0ac2019de66ad943459913015ef9256809ee0e6bb76e303a0b4802e475c1d26ade5d585292b80c9fe9cb10c01"),  # noqa: E501
]


@pytest.mark.parametrize(("standard", "public_key", "message", "signature"), SECP_CRATE_VECTORS)
def test_near_intents_secp256k1_crate_vectors(standard: str, public_key: str, message: str, signature: str) -> None:
    digest = ih.intent_hash_bytes({"standard": standard, "payload": message})
    assert _recovered_public_key(bytes.fromhex(signature), digest).hex() == public_key


def test_near_intents_nep413_crate_vector() -> None:
    signed = {"standard": "nep413", "payload": {"message": "Hello, world!", "nonce": base64.b64encode(bytes(32)).decode(),
                                                "recipient": "intents.near"}}
    public_key = bytes.fromhex("e2e9cb7ac57cb46d4da1ce1d1cc2c33bdfe17407c517916b522724a8ea2c6c50")
    signature = bytes.fromhex("e2ff6254871a3fec1853c167b42f0f14248c4cf7fef5452dc24d8dbdc5c4bf18"
                              "3ab707322b4d782d5f5a05571bae476c5f7ee41c473f3002e600865e46b75d0f")
    assert _ed25519_verifies(public_key, signature, ih.intent_hash_bytes(signed))
    # the callback URL is part of what is signed
    assert not _ed25519_verifies(public_key, signature,
                                 ih.intent_hash_bytes({**signed, "payload": {**signed["payload"], "callbackUrl": ""}}))


def _stellar_public_key(address: str) -> bytes:
    """The ed25519 key inside a Stellar ``G...`` address (version byte, key, CRC16)."""
    return base64.b32decode(address)[1:33]


# near/intents crates/signatures/sep53, the SEP-53 specification's test cases
@pytest.mark.parametrize(("message", "signature"), [
    ("Hello, World!", "7cee5d6d885752104c85eea421dfdcb95abf01f1271d11c4bec3fcbd7874dccd"
                      "6e2e98b97b8eb23b643cac4073bb77de5d07b0710139180ae9f3cbba78f2ba04"),
    ("こんにちは、世界！", "083536eb95ecf32dce59b07fe7a1fd8cf814b2ce46f40d2a16e4ea1f6cecd980"
                         "e04e6fbef9d21f98011c785a81edb85f3776a6e7d942b435eb0adc07da4d4604"),
])
def test_sep53_specification_vectors(message: str, signature: str) -> None:
    public_key = _stellar_public_key("GBXFXNDLV4LSWA4VB7YIL5GBD7BVNR22SGBTDKMO2SBZZHDXSKZYCP7L")
    digest = ih.intent_hash_bytes({"standard": "sep53", "payload": message})
    assert _ed25519_verifies(public_key, bytes.fromhex(signature), digest)


TON_KEY = "22e795a07e832fc9084ca35a488a711f1dbedef637d4e886a6997d93ee2c2e37"
TON_ADDRESS = "0:f4809e5ffac9dc42a6b1d94c5e74ad5fd86378de675c805f2274d0055cbc9378"


# near/intents crates/signatures/ton-connect: text and binary payloads
@pytest.mark.parametrize(("timestamp", "payload", "signature"), [
    (1747759882, {"type": "text", "text": "Hello, TON!" * 100},
     "7bc628f6d634ab6ddaf10463742b13f0ede3cb828737d9ce1962cc808fbfe703"
     "5e77c1a3d0b682acf02d645cc1a244992b276552c0e1c57d30b03c2820d73d01"),
    (1747760435, {"type": "binary", "bytes": base64.b64encode(bytes.fromhex("48656c6c6f2c20544f4e21")).decode()},
     "9cf4c1c16b47afce46940eb9cd410894f31544b74206c2254bb1651f9b32cf5b"
     "0e482b78a2e8251e54d3517fae4b06c6f23546667d63ff62dccce70451698d01"),
], ids=["text", "binary"])
def test_ton_connect_crate_vectors(timestamp: int, payload: dict, signature: str) -> None:
    signed = {"standard": "ton_connect", "address": TON_ADDRESS, "domain": "ton-connect.github.io",
              "timestamp": timestamp, "payload": payload}
    assert _ed25519_verifies(bytes.fromhex(TON_KEY), bytes.fromhex(signature), ih.intent_hash_bytes(signed))


def test_ton_connect_user_friendly_and_raw_address_hash_alike() -> None:
    # sdk-monorepo ton-connect.test.ts: the same account in both spellings
    friendly = {"standard": "ton_connect", "address": "UQBkxBWE4Gf9gd2sNbm1SJ6zXWnbA6ywoBvpAUQhBXJY_YiM",
                "domain": "near.com", "timestamp": 1778685374, "payload": {"type": "text", "text": "hello world"}}
    raw = {**friendly, "address": "0:64c41584e067fd81ddac35b9b5489eb35d69db03acb0a01be9014421057258fd"}
    assert ih.intent_hash(friendly) == ih.intent_hash(raw)
    assert ih.ton_address(friendly["address"]) == (0, bytes.fromhex(raw["address"][2:]))


# WebAuthn: the authenticator signs client_data_json, whose challenge is the base64url of the hash
WEBAUTHN_VECTORS = [
    ("sdk-monorepo p256",
     '{"signer_id":"0x5684ac3f39e9c2e7cf649cbc52477e0268623406","verifying_contract":"intents.near","deadline":"2035-11-03T15:10:02.899Z","nonce":"c80oewARgyvnE+vOYfQSaDJ2BIVJ1Y67V2SS0w2acg8=","intents":[]}',  # noqa: E501
     '{"type":"webauthn.get","challenge":"-ikLNwQabhBKULqw2pDaWlvsHveUA96SEYCCc5oE7Tc","origin":"http://localhost:3000","crossOrigin":false}'),  # noqa: E501
    ("near/intents p256",
     "{\"signer_id\":\"0x3602b546589a8fcafdce7fad64a46f91db0e4d50\",\"verifying_contract\":\"defuse.test.near\",\"deadline\":\"2025-03-30T00:00:00Z\",\"nonce\":\"A3nsY1GMVjzyXL3mUzOOP3KT+5a0Ruy+QDNWPhchnxM=\",\"intents\":[{\"intent\":\"transfer\",\"receiver_id\":\"user1.test.near\",\"tokens\":{\"nep141:ft1.poa-factory.test.near\":\"1000\"}}]}",  # noqa: E501
     "{\"type\":\"webauthn.get\",\"challenge\":\"4cveZsIe6p-WaEcL-Lhtzt3SZuXbYsjDdlFhLNrSjjk\",\"origin\":\"https://defuse-widget-git-feat-passkeys-defuse-94bbc1b2.vercel.app\"}"),  # noqa: E501
    ("near/intents ed25519",
     "{\"signer_id\":\"19a8cd22b37802c3cbc0031f55c70f3858ac48dbfb7697c435da637fea0e0e47\",\"verifying_contract\":\"intents.near\",\"deadline\":{\"timestamp\":1732035219},\"nonce\":\"XVoKfmScb3G+XqH9ke/fSlJ/3xO59sNhCxhpG821BH8=\",\"intents\":[{\"intent\":\"token_diff\",\"diff\":{\"nep141:base-0x833589fcd6edb6e08f4c7c32d4f71b54bda02913.omft.near\":\"-1000\",\"nep141:eth-0xdac17f958d2ee523a2206206994597c13d831ec7.omft.near\":\"998\"}}]}",  # noqa: E501
     "{\"type\":\"webauthn.get\",\"challenge\":\"PfRFOFrLxCfyomuDryxhv6v2OzJIWqyMXaMikUYHSmY\",\"origin\":\"http://localhost:3000\"}"),  # noqa: E501
]


@pytest.mark.parametrize(("source", "payload", "client_data_json"), WEBAUTHN_VECTORS, ids=[v[0] for v in WEBAUTHN_VECTORS])
def test_webauthn_challenge_is_the_hash(source: str, payload: str, client_data_json: str) -> None:
    signed = {"standard": "webauthn", "payload": payload, "client_data_json": client_data_json}
    assert json.loads(client_data_json)["challenge"] == _b64url(ih.intent_hash_bytes(signed))


# --- fields as the Verifier reads them -------------------------------------------------------------

def test_nep413_callback_url_absent_or_null_is_none() -> None:
    base = {"standard": "nep413", "payload": dict(SDK_NEP413["payload"])}
    null = {"standard": "nep413", "payload": {**SDK_NEP413["payload"], "callbackUrl": None}}
    assert ih.intent_hash(base) == ih.intent_hash(null) == ih.intent_hash(SDK_NEP413)
    assert ih.preimage(base).endswith(b"intents.near\x00")
    with_url = {"standard": "nep413", "payload": {**SDK_NEP413["payload"], "callbackUrl": "https://x.io"}}
    assert ih.preimage(with_url).endswith(b"intents.near\x01\x0c\x00\x00\x00https://x.io")


def test_nep413_preimage_starts_with_the_nep461_tag() -> None:
    assert ih.preimage(SDK_NEP413)[:4] == bytes([0x9D, 0x01, 0x00, 0x80])


@pytest.mark.parametrize("timestamp", [1762354640, "1762354640", "+1762354640", "2025-11-05T14:57:20Z",
                                       "2025-11-05T14:57:20.999Z", "2025-11-05t16:57:20+02:00",
                                       "2025-11-05T13:57:20-01:00"])
def test_ton_connect_timestamp_forms(timestamp: object) -> None:
    assert ih.intent_hash({**SDK_TON_CONNECT, "timestamp": timestamp}) == ih.intent_hash(SDK_TON_CONNECT)


@pytest.mark.parametrize(("signed", "reason"), [
    ({"standard": "bip322", "address": "bc1q...", "message": "{}", "signature": "x"}, "Verifier does not accept"),
    ({"standard": "eip712", "payload": "{}"}, "unknown signing standard 'eip712'"),
    ({"payload": "{}"}, "no 'standard' name: None"),
    ({"standard": {"nep413": 1}, "payload": "{}"}, "no 'standard' name"),
    ("text", "not an object"),
    ({"standard": "nep413", "payload": "text"}, "'payload' is not an object"),
    ({"standard": "nep413", "payload": {"message": "m", "nonce": "x", "recipient": "r"}}, "not base64"),
    ({"standard": "nep413", "payload": {"message": "m", "nonce": "AAAA", "recipient": "r"}}, "3 bytes, not 32"),
    ({"standard": "nep413", "payload": {"message": "m", "nonce": SDK_NEP413["payload"]["nonce"]}}, "no 'recipient'"),
    ({"standard": "nep413", "payload": {**SDK_NEP413["payload"], "callbackUrl": 5}}, "'callbackUrl' is not a string"),
    ({"standard": "erc191", "payload": {"message": "m"}}, "'payload' is not a string"),
    ({"standard": "sep53", "payload": "\ud800"}, "not valid UTF-8"),
    ({**SDK_TON_CONNECT, "address": "0:abc"}, "64 hex digits"),
    ({**SDK_TON_CONNECT, "address": "x:" + "00" * 32}, "neither 'workchain:hex'"),
    ({**SDK_TON_CONNECT, "address": "UQBkxBWE4Gf9gd2sNbm1SJ6zXWnbA6ywoBvpAUQhBXJY_YiN"}, "CRC"),
    ({**SDK_TON_CONNECT, "timestamp": "yesterday"}, "neither RFC 3339"),
    ({**SDK_TON_CONNECT, "timestamp": -1}, "before 1970"),
    ({**SDK_TON_CONNECT, "timestamp": True}, "neither RFC 3339"),
    ({**SDK_TON_CONNECT, "timestamp": "2025-02-30T00:00:00Z"}, "not a valid date"),
    ({**SDK_TON_CONNECT, "payload": {"type": "cell", "schema_crc": 1, "cell": "te6"}}, "'cell' has no intent hash"),
])
def test_payloads_without_a_hash_say_why(signed: object, reason: str) -> None:
    with pytest.raises(ih.IntentHashError) as exc:
        ih.intent_hash(signed)
    assert reason in str(exc.value)


def test_every_deployed_standard_has_a_hash() -> None:
    assert ih.STANDARDS == {"nep413", "erc191", "tip191", "raw_ed25519", "webauthn", "ton_connect", "sep53"}


# --- properties ----------------------------------------------------------------------------------

def _read_borsh_string(data: bytes, at: int) -> tuple[str, int]:
    n = int.from_bytes(data[at:at + 4], "little")
    return data[at + 4:at + 4 + n].decode(), at + 4 + n


@settings(max_examples=200, deadline=None)
@given(message=st.text(), nonce=st.binary(min_size=32, max_size=32), recipient=st.text(),
       callback=st.none() | st.text())
def test_nep413_preimage_is_borsh_that_reads_back(message: str, nonce: bytes, recipient: str,
                                                  callback: str | None) -> None:
    payload = {"message": message, "nonce": base64.b64encode(nonce).decode(), "recipient": recipient}
    if callback is not None:
        payload["callbackUrl"] = callback
    try:
        data = ih.preimage({"standard": "nep413", "payload": payload})
    except ih.IntentHashError:
        assert any(0xD800 <= ord(c) <= 0xDFFF for c in message + recipient + (callback or ""))
        return
    assert data[:4] == (2**31 + 413).to_bytes(4, "little")
    got_message, at = _read_borsh_string(data, 4)
    got_nonce, at = data[at:at + 32], at + 32
    got_recipient, at = _read_borsh_string(data, at)
    if data[at] == 0:
        got_callback, at = None, at + 1
    else:
        assert data[at] == 1
        got_callback, at = _read_borsh_string(data, at + 1)
    assert at == len(data)
    assert (got_message, got_nonce, got_recipient, got_callback) == (message, nonce, recipient, callback)
    assert ih.intent_hash_bytes({"standard": "nep413", "payload": payload}) == hashlib.sha256(data).digest()


@settings(max_examples=200, deadline=None)
@given(text=st.text(alphabet=st.characters(blacklist_categories=("Cs",))), standard=st.sampled_from(["erc191", "tip191"]))
def test_signed_message_length_is_the_utf8_byte_count(text: str, standard: str) -> None:
    data = ih.preimage({"standard": standard, "payload": text})
    prefix = ih.ERC191_PREFIX if standard == "erc191" else ih.TIP191_PREFIX
    body = text.encode()
    assert data == prefix + str(len(body)).encode() + body
    assert ih.intent_hash_bytes({"standard": standard, "payload": text}) == keccak.new(data=data, digest_bits=256).digest()


def _user_friendly(workchain: int, address: bytes, tag: int, url_safe: bool) -> str:
    raw = bytes([tag, workchain & 0xFF]) + address
    raw += binascii.crc_hqx(raw, 0).to_bytes(2, "big")  # CRC-16/XMODEM
    return (base64.urlsafe_b64encode if url_safe else base64.b64encode)(raw).decode()


@settings(max_examples=100, deadline=None)
@given(workchain=st.integers(-128, 127), address=st.binary(min_size=32, max_size=32),
       tag=st.sampled_from([0x11, 0x51, 0x91, 0xD1]), url_safe=st.booleans(),
       upper=st.booleans(), text=st.text(alphabet=string.printable))
def test_ton_connect_address_spellings_hash_alike(workchain: int, address: bytes, tag: int, url_safe: bool,
                                                  upper: bool, text: str) -> None:
    friendly = _user_friendly(workchain, address, tag, url_safe)
    hex_part = address.hex().upper() if upper else address.hex()
    base = {"standard": "ton_connect", "domain": "near.com", "timestamp": 1, "payload": {"type": "text", "text": text}}
    a = ih.intent_hash({**base, "address": friendly})
    b = ih.intent_hash({**base, "address": f"{workchain}:{hex_part}"})
    assert a == b
    assert ih.preimage({**base, "address": friendly})[24:60] == workchain.to_bytes(4, "big", signed=True) + address
