"""tx_hash resolution: what the shard pre-filter costs, and what --resolve-all-tx buys back.

A user's ft_transfer_call on a token contract ends in ft_on_transfer on intents.near. The token
contract's shard never names intents.near (the call's arguments are base64), so by default that
shard is skipped, the chain from the transaction is lost and the intents.near receipt is stored
with an empty tx_hash (and counted); decoding every shard resolves it.
"""

from __future__ import annotations

import base64
import json

from indexer import metrics
from indexer.config import ContractSpec
from indexer.decode.block import BlockDecoder, DecoderConfig
from indexer.sources.base import RawBlock

TX = "9xTransactionHash1111111111111111111111111111"
R1, R2 = "R1tokenReceipt11111111111111111111111111111", "R2intentsReceipt111111111111111111111111111"


def _b64(obj: object) -> str:
    return base64.b64encode(json.dumps(obj).encode()).decode()


def _call(method: str, args: object) -> dict:
    return {"FunctionCall": {"method_name": method, "args": _b64(args), "gas": 30 * 10**12, "deposit": "1"}}


def _outcome(receipt_id: str, receiver: str, predecessor: str, action: dict, children: list[str]) -> dict:
    return {
        "execution_outcome": {"id": receipt_id, "block_hash": "x", "proof": [], "outcome": {
            "executor_id": receiver, "gas_burnt": 2 * 10**12, "logs": [], "receipt_ids": children,
            "status": {"SuccessValue": ""}, "tokens_burnt": "0", "metadata": {"gas_profile": [], "version": 3}}},
        "receipt": {"receipt_id": receipt_id, "receiver_id": receiver, "predecessor_id": predecessor,
                    "receipt": {"Action": {"signer_id": "alice.near", "actions": [action], "gas_price": "1"}}},
    }


def _block(height: int, shards: dict[int, dict]) -> RawBlock:
    block = {"author": "v.near", "header": {"height": height, "hash": f"h{height}", "prev_hash": f"h{height - 1}",
                                            "timestamp": 1_777_000_000_000_000_000 + height},
             "chunks": [{"shard_id": sid} for sid in shards]}
    return RawBlock(height, json.dumps(block).encode(),
                    [json.dumps({"shard_id": sid, **body}).encode() for sid, body in shards.items()])


def _chain() -> list[RawBlock]:
    transfer = {"receiver_id": "intents.near", "amount": "1000", "msg": ""}
    tx = {"transaction": {"hash": TX, "signer_id": "alice.near", "receiver_id": "usdc.near", "actions": []},
          "outcome": {"execution_outcome": {"id": TX, "outcome": {"receipt_ids": [R1]}}, "receipt": None}}
    empty = {"chunk": {"transactions": []}, "receipt_execution_outcomes": []}
    return [
        _block(10, {0: {"chunk": {"transactions": [tx]}, "receipt_execution_outcomes": []}, 1: empty}),
        _block(11, {0: {"chunk": {"transactions": []}, "receipt_execution_outcomes": [
            _outcome(R1, "usdc.near", "alice.near", _call("ft_transfer_call", transfer), [R2])]}, 1: empty}),
        _block(12, {0: empty, 1: {"chunk": {"transactions": []}, "receipt_execution_outcomes": [
            _outcome(R2, "intents.near", "usdc.near", _call("ft_on_transfer", {"sender_id": "alice.near",
                                                                                "amount": "1000", "msg": ""}), [])]}}),
    ]


def _receipt_row(resolve_all_tx: bool) -> dict:
    decoder = BlockDecoder(DecoderConfig([ContractSpec.parse("intents.near:verifier")], resolve_all_tx=resolve_all_tx))
    rows = [r for raw in _chain() for r in decoder.decode(raw).rows.tables["receipts"]]
    assert len(rows) == 1
    return {"receipt_id": rows[0][5], "tx_hash": rows[0][9], "method": rows[0][10]}


def _unresolved() -> float:
    return metrics.TX_UNRESOLVED._value.get()


def test_default_mode_skips_the_token_shard_and_says_so() -> None:
    before = _unresolved()
    assert _receipt_row(resolve_all_tx=False) == {"receipt_id": R2, "tx_hash": "", "method": "ft_on_transfer"}
    assert _unresolved() == before + 1


def test_resolve_all_tx_follows_the_chain_through_every_shard() -> None:
    before = _unresolved()
    assert _receipt_row(resolve_all_tx=True) == {"receipt_id": R2, "tx_hash": TX, "method": "ft_on_transfer"}
    assert _unresolved() == before
