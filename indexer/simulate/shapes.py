"""The JSON shapes of NEAR Lake files, copied field for field from the mainnet fixtures.

Field names, nesting and status forms follow ``tests/fixtures/lake-mainnet`` and the protocol-80
RPC block; newer fields (receipt ``priority``, tx ``priority_fee``, chunk ``congestion_info`` ...)
are included because the simulated protocol version is >= 83.
"""

from __future__ import annotations

import base64
from typing import Any

GAS_PRICE = 100_000_000  # yoctoNEAR per gas, mainnet's floor price
GAS_PRICE_S = str(GAS_PRICE)
REFUND_GAS = 223_182_562_500  # gas_burnt of a system gas-refund receipt on mainnet

# (cost, category, share in Mgas) of a real execute_intents receipt; scaled to each gas_burnt so
# tracked outcomes carry a realistic ~3 KB profile.
_PROFILE = (
    ("FUNCTION_CALL_BASE", "A", 400000), ("FUNCTION_CALL_BYTE", "A", 13920), ("NEW_ACTION_RECEIPT", "A", 289092),
    ("BASE", "W", 27006), ("CONTRACT_LOADING_BASE", "W", 35), ("CONTRACT_LOADING_BYTES", "W", 1460427),
    ("ED25519_VERIFY_BASE", "W", 420000), ("ED25519_VERIFY_BYTE", "W", 576), ("LOG_BASE", "W", 21259),
    ("LOG_BYTE", "W", 38302), ("READ_CACHED_TRIE_NODE", "W", 661200), ("READ_MEMORY_BASE", "W", 242717),
    ("READ_MEMORY_BYTE", "W", 39457), ("READ_REGISTER_BASE", "W", 93135), ("READ_REGISTER_BYTE", "W", 403),
    ("SHA256_BASE", "W", 108983), ("SHA256_BYTE", "W", 86725), ("STORAGE_HAS_KEY_BASE", "W", 486359),
    ("STORAGE_HAS_KEY_BYTE", "W", 8867), ("STORAGE_READ_BASE", "W", 845352), ("STORAGE_READ_KEY_BYTE", "W", 16126),
    ("STORAGE_READ_VALUE_BYTE", "W", 9869), ("STORAGE_REMOVE_BASE", "W", 160419),
    ("STORAGE_REMOVE_KEY_BYTE", "W", 5847), ("STORAGE_WRITE_BASE", "W", 706164),
    ("STORAGE_WRITE_EVICTED_BYTE", "W", 55273), ("STORAGE_WRITE_KEY_BYTE", "W", 22906),
    ("STORAGE_WRITE_VALUE_BYTE", "W", 55368), ("TOUCHING_TRIE_NODE", "W", 285000), ("UTF8_DECODING_BASE", "W", 24894),
    ("UTF8_DECODING_BYTE", "W", 854330), ("WASM_INSTRUCTION", "W", 1434695), ("WRITE_MEMORY_BASE", "W", 106544),
    ("WRITE_MEMORY_BYTE", "W", 11189), ("WRITE_REGISTER_BASE", "W", 137545), ("WRITE_REGISTER_BYTE", "W", 16339),
)
_PROFILE_TOTAL = sum(p[2] for p in _PROFILE)
_CATEGORY = {"A": "ACTION_COST", "W": "WASM_HOST_COST"}


def b64json(obj_bytes: bytes) -> str:
    return base64.b64encode(obj_bytes).decode()


def gas_profile(gas_burnt: int, entries: int = len(_PROFILE)) -> list[dict[str, str]]:
    """A gas profile summing to roughly 90% of ``gas_burnt`` (the rest is the receipt's base cost)."""
    budget = gas_burnt * 9 // 10
    total = sum(p[2] for p in _PROFILE[:entries])
    return [{"cost": cost, "cost_category": _CATEGORY[cat], "gas_used": str(budget * share // total)}
            for cost, cat, share in _PROFILE[:entries]]


def function_call(method: str, args: bytes, gas: int, deposit: str = "0") -> dict[str, Any]:
    return {"FunctionCall": {"args": b64json(args), "deposit": deposit, "gas": gas, "method_name": method}}


def transfer(deposit: str) -> dict[str, Any]:
    return {"Transfer": {"deposit": deposit}}


def action_receipt(receipt_id: str, predecessor: str, receiver: str, signer: str, signer_pk: str,
                   actions: list[Any], *, gas_price: str = GAS_PRICE_S, input_data_ids: list[str] | None = None,
                   output_data_receivers: list[dict[str, str]] | None = None) -> dict[str, Any]:
    return {
        "predecessor_id": predecessor,
        "priority": 0,
        "receipt": {"Action": {
            "actions": actions,
            "gas_price": gas_price,
            "input_data_ids": input_data_ids or [],
            "is_promise_yield": False,
            "output_data_receivers": output_data_receivers or [],
            "signer_id": signer,
            "signer_public_key": signer_pk,
        }},
        "receipt_id": receipt_id,
        "receiver_id": receiver,
    }


def data_receipt(receipt_id: str, predecessor: str, receiver: str, data_id: str, data: str | None) -> dict[str, Any]:
    return {"predecessor_id": predecessor, "priority": 0, "receipt": {"Data": {"data": data, "data_id": data_id}},
            "receipt_id": receipt_id, "receiver_id": receiver}


def success_value(value: bytes = b"") -> dict[str, str]:
    return {"SuccessValue": b64json(value)}


def success_receipt(receipt_id: str) -> dict[str, str]:
    return {"SuccessReceiptId": receipt_id}


def panic(message: str) -> dict[str, Any]:
    """The Failure form of a contract panic; ``message`` is the verbatim ExecutionError text."""
    return {"Failure": {"ActionError": {"index": 0, "kind": {"FunctionCallError": {"ExecutionError": message}}}}}


def proof(hashes: list[str]) -> list[dict[str, str]]:
    return [{"direction": "Right" if i % 2 else "Left", "hash": h} for i, h in enumerate(hashes)]


def execution_outcome(block_hash: str, outcome_id: str, executor: str, gas_burnt: int, logs: list[str],
                      receipt_ids: list[str], status: Any, proof_hashes: list[str], *, profile: bool = True,
                      tokens_burnt: int | None = None) -> dict[str, Any]:
    return {
        "block_hash": block_hash,
        "id": outcome_id,
        "outcome": {
            "executor_id": executor,
            "gas_burnt": gas_burnt,
            "logs": logs,
            "metadata": {"gas_profile": gas_profile(gas_burnt) if profile else [], "version": 3},
            "receipt_ids": receipt_ids,
            "status": status,
            "tokens_burnt": str(gas_burnt * GAS_PRICE if tokens_burnt is None else tokens_burnt),
        },
        "proof": proof(proof_hashes),
    }


def tx_outcome(block_hash: str, tx_hash: str, signer: str, gas_burnt: int, receipt_id: str,
               proof_hashes: list[str]) -> dict[str, Any]:
    """A transaction's own outcome: converted into one receipt (``SuccessReceiptId``)."""
    return {
        "block_hash": block_hash,
        "id": tx_hash,
        "outcome": {
            "executor_id": signer,
            "gas_burnt": gas_burnt,
            "logs": [],
            "metadata": {"gas_profile": None, "version": 1},
            "receipt_ids": [receipt_id],
            "status": {"SuccessReceiptId": receipt_id},
            "tokens_burnt": str(gas_burnt * GAS_PRICE),
        },
        "proof": proof(proof_hashes),
    }


def transaction(tx_hash: str, signer: str, public_key: str, nonce: int, receiver: str, actions: list[Any],
                signature: str) -> dict[str, Any]:
    return {"actions": actions, "hash": tx_hash, "nonce": nonce, "priority_fee": 0, "public_key": public_key,
            "receiver_id": receiver, "signature": signature, "signer_id": signer}


def tx_with_outcome(tx: dict[str, Any], outcome: dict[str, Any]) -> dict[str, Any]:
    return {"outcome": {"execution_outcome": outcome, "receipt": None}, "transaction": tx}


def outcome_with_receipt(outcome: dict[str, Any], receipt: dict[str, Any]) -> dict[str, Any]:
    return {"execution_outcome": outcome, "receipt": receipt}


def account_update(account: str, amount: str, storage_usage: int, cause: dict[str, str],
                   code_hash: str = "11111111111111111111111111111111") -> dict[str, Any]:
    return {"cause": cause, "change": {"account_id": account, "amount": amount, "code_hash": code_hash, "locked": "0",
                                       "storage_paid_at": 0, "storage_usage": storage_usage},
            "type": "account_update"}


def data_update(account: str, key_b64: str, value_b64: str, cause: dict[str, str]) -> dict[str, Any]:
    return {"cause": cause, "change": {"account_id": account, "key_base64": key_b64, "value_base64": value_b64},
            "type": "data_update"}


def tx_gas(args_len: int) -> int:
    """Gas burnt converting a FunctionCall transaction: base + per-byte cost, as on mainnet."""
    return 308_066_207_000 + 2_235_934 * args_len
