"""How simulated signers sign: one wallet (MultiPayload standard) per account, payloads as intents.near reads them.

Named accounts and solvers sign NEP-413 with a NEAR key. Implicit accounts follow what made them:
a 64-hex account is an ed25519 key (a NEAR, Solana, Stellar or TON wallet), a ``0x`` account an
Ethereum-style address (an EVM or TRON wallet, or a passkey). Which one is derived from the
account name, so a user keeps the same wallet across runs and flows, and no random draw is spent.

Signatures are deterministic bytes of the right length, not real signatures (the indexer never
checks them). The intent hash is the one the Verifier would compute, taken from
``indexer.decode.intent_hash``: it is checked against published vectors on its own, and the
simulated events must carry exactly what the Verifier would log.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import orjson

from indexer.decode.intent_hash import intent_hash, intent_hash_bytes
from indexer.simulate.ids import Ids, b58encode

ED25519_WALLETS = ("nep413", "nep413", "raw_ed25519", "sep53", "ton_connect")
ETH_WALLETS = ("erc191", "erc191", "tip191", "webauthn")
DAPP_DOMAIN = "app.near-intents.org"


def is_eth_account(account: str) -> bool:
    return len(account) == 42 and account.startswith("0x")


def is_ed25519_implicit(account: str) -> bool:
    return len(account) == 64 and all(c in "0123456789abcdef" for c in account)


def wallet_of(ids: Ids, account: str, solver: bool = False) -> str:
    """The signing standard an account uses."""
    if solver:
        return "nep413"
    if is_eth_account(account):
        choices = ETH_WALLETS
    elif is_ed25519_implicit(account):
        choices = ED25519_WALLETS
    else:
        return "nep413"
    return choices[ids.digest("wallet", account)[0] % len(choices)]


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def sign(ids: Ids, standard: str, signer: str, verifying_contract: str, deadline: str, nonce: str,
         intents: list[dict[str, Any]], signed_at_s: int) -> tuple[dict[str, Any], str]:
    """The MultiPayload ``signer`` sends for ``intents``, and its intent hash."""
    if standard == "nep413":
        # NEP-413 carries the contract and nonce outside the message
        message = orjson.dumps({"signer_id": signer, "deadline": deadline, "intents": intents}).decode()
        multi: dict[str, Any] = {"standard": "nep413",
                                 "payload": {"message": message, "nonce": nonce, "recipient": verifying_contract},
                                 "public_key": ids.public_key(signer), "signature": ids.signature(message, nonce)}
        return multi, intent_hash(multi)
    text = orjson.dumps({"signer_id": signer, "verifying_contract": verifying_contract, "deadline": deadline,
                         "nonce": nonce, "intents": intents}).decode()
    if standard in ("erc191", "tip191"):
        # a recoverable secp256k1 signature (r, s, v) names its key: no public_key field
        sig = ids.digest("sig-a", text) + ids.digest("sig-b", text) + bytes([ids.digest("v", text)[0] & 1])
        multi = {"standard": standard, "payload": text, "signature": "secp256k1:" + b58encode(sig)}
    elif standard in ("raw_ed25519", "sep53"):
        multi = {"standard": standard, "payload": text, "public_key": ids.public_key(signer),
                 "signature": ids.signature(text)}
    elif standard == "webauthn":
        multi = _webauthn(ids, signer, text)
    elif standard == "ton_connect":
        multi = {"standard": "ton_connect", "address": "0:" + ids.digest("ton", signer).hex(), "domain": DAPP_DOMAIN,
                 "timestamp": signed_at_s, "payload": {"type": "text", "text": text},
                 "public_key": ids.public_key(signer), "signature": ids.signature(text)}
    else:
        raise ValueError(f"no simulated wallet signs {standard!r}")
    return multi, intent_hash(multi)


def _webauthn(ids: Ids, signer: str, text: str) -> dict[str, Any]:
    """A passkey assertion: the authenticator signs client data whose challenge is the payload's hash."""
    multi: dict[str, Any] = {"standard": "webauthn", "payload": text}
    challenge = _b64url(intent_hash_bytes(multi))
    client_data = orjson.dumps({"type": "webauthn.get", "challenge": challenge, "origin": f"https://{DAPP_DOMAIN}",
                                "crossOrigin": False}).decode()
    # rpIdHash, flags (user present + verified), sign counter 0
    authenticator_data = hashlib.sha256(DAPP_DOMAIN.encode()).digest() + b"\x05" + bytes(4)
    multi.update(public_key="p256:" + b58encode(ids.digest("p256-x", signer) + ids.digest("p256-y", signer)),
                 signature="p256:" + b58encode(ids.digest("p256-r", text) + ids.digest("p256-s", text)),
                 client_data_json=client_data, authenticator_data=_b64url(authenticator_data))
    return multi


def bip322(ids: Ids, signer: str, verifying_contract: str, deadline: str, seed: str) -> dict[str, Any]:
    """A BIP-322 (Bitcoin) payload: a standard intents.near never deployed, so it has no intent hash."""
    nonce = base64.b64encode(ids.digest("bip322-nonce", seed)).decode()
    message = orjson.dumps({"signer_id": signer, "verifying_contract": verifying_contract, "deadline": deadline,
                            "nonce": nonce, "intents": []}).decode()
    return {"standard": "bip322", "address": "bc1q" + ids.digest("btc", signer).hex()[:38], "message": message,
            "signature": base64.b64encode(ids.digest("sig-a", message) + ids.digest("sig-b", message)).decode()}
