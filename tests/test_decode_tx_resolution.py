"""tx_hash resolution through shards the pre-filter skips.

A user's ft_transfer_call on a token contract ends in ft_on_transfer on intents.near. The token
contract's shard never names intents.near (the call's arguments are base64), so by default that
shard is not decoded; its transaction list and receipt ids are still read, so the chain from the
transaction is followed and the intents.near receipt (and the intents it executes) get their
tx_hash and submission block. Decoding every shard (--resolve-all-tx) gives the same rows.
"""

from __future__ import annotations

import base64
import json

from indexer import metrics
from indexer.config import ContractSpec
from indexer.decode.block import BlockDecoder, DecoderConfig
from indexer.decode.rows import COLUMNS, Rows, ts_string
from indexer.sources.base import RawBlock

TX = "9xTransactionHash1111111111111111111111111111"
R1, R2 = "R1tokenReceipt11111111111111111111111111111", "R2intentsReceipt111111111111111111111111111"


def _b64(obj: object) -> str:
    return base64.b64encode(json.dumps(obj).encode()).decode()


def _call(method: str, args: object) -> dict:
    return {"FunctionCall": {"method_name": method, "args": _b64(args), "gas": 30 * 10**12, "deposit": "1"}}


PANIC = {"Failure": {"ActionError": {"index": 0, "kind": {"FunctionCallError": {
    "ExecutionError": "Smart contract panicked: deadline has expired"}}}}}
SIGNED = {"standard": "raw_ed25519", "payload": json.dumps({"signer_id": "alice.near", "deadline": "2026-01-01T00:00:00Z",
                                                            "intents": [{"intent": "transfer", "receiver_id": "bob.near",
                                                                         "tokens": {"nep141:usdc.near": "5"}}]}),
          "public_key": "ed25519:x", "signature": "ed25519:y"}


def _outcome(receipt_id: str, receiver: str, predecessor: str, action: dict, children: list[str],
             status: dict | None = None) -> dict:
    return {
        "execution_outcome": {"id": receipt_id, "block_hash": "x", "proof": [], "outcome": {
            "executor_id": receiver, "gas_burnt": 2 * 10**12, "logs": [], "receipt_ids": children,
            "status": status or {"SuccessValue": ""}, "tokens_burnt": "0",
            "metadata": {"gas_profile": [], "version": 3}}},
        "receipt": {"receipt_id": receipt_id, "receiver_id": receiver, "predecessor_id": predecessor,
                    "receipt": {"Action": {"signer_id": "alice.near", "actions": [action], "gas_price": "1"}}},
    }


def _block(height: int, shards: dict[int, dict]) -> RawBlock:
    block = {"author": "v.near", "header": {"height": height, "hash": f"h{height}", "prev_hash": f"h{height - 1}",
                                            "timestamp": 1_777_000_000_000_000_000 + height},
             "chunks": [{"shard_id": sid} for sid in shards]}
    return RawBlock(height, json.dumps(block).encode(),
                    [json.dumps({"shard_id": sid, **body}).encode() for sid, body in shards.items()])


def _chain(msg: str = "", status: dict | None = None) -> list[RawBlock]:
    transfer = {"receiver_id": "intents.near", "amount": "1000", "msg": msg}
    tx = {"transaction": {"hash": TX, "signer_id": "alice.near", "receiver_id": "usdc.near", "actions": []},
          "outcome": {"execution_outcome": {"id": TX, "outcome": {"receipt_ids": [R1]}}, "receipt": None}}
    empty = {"chunk": {"transactions": []}, "receipt_execution_outcomes": []}
    return [
        _block(10, {0: {"chunk": {"transactions": [tx]}, "receipt_execution_outcomes": []}, 1: empty}),
        _block(11, {0: {"chunk": {"transactions": []}, "receipt_execution_outcomes": [
            _outcome(R1, "usdc.near", "alice.near", _call("ft_transfer_call", transfer), [R2])]}, 1: empty}),
        _block(12, {0: empty, 1: {"chunk": {"transactions": []}, "receipt_execution_outcomes": [
            _outcome(R2, "intents.near", "usdc.near", _call("ft_on_transfer", {"sender_id": "alice.near",
                                                                                "amount": "1000", "msg": msg}), [],
                     status)]}}),
    ]


def _decode(resolve_all_tx: bool, blocks: list[RawBlock]) -> Rows:
    decoder = BlockDecoder(DecoderConfig([ContractSpec.parse("intents.near:verifier")], resolve_all_tx=resolve_all_tx))
    out = Rows()
    for raw in blocks:
        out.extend(decoder.decode(raw).rows)
    return out


def _receipt_row(resolve_all_tx: bool) -> dict:
    rows = _decode(resolve_all_tx, _chain()).tables["receipts"]
    assert len(rows) == 1
    return {"receipt_id": rows[0][5], "tx_hash": rows[0][9], "method": rows[0][10]}


def _unresolved() -> float:
    return metrics.TX_UNRESOLVED._value.get()


def test_default_mode_skips_the_token_shard_and_still_follows_the_chain() -> None:
    before, skipped = _unresolved(), metrics.SHARDS_SKIPPED._value.get()
    assert _receipt_row(resolve_all_tx=False) == {"receipt_id": R2, "tx_hash": TX, "method": "ft_on_transfer"}
    assert _unresolved() == before
    # the token's shard (block 11) and the empty ones were read for their links only
    assert metrics.SHARDS_SKIPPED._value.get() - skipped == 5


def test_intents_run_on_a_deposit_get_the_transaction_and_its_block() -> None:
    msg = json.dumps({"receiver_id": "alice.near", "execute_intents": [SIGNED]})
    for resolve_all in (False, True):
        rows = _decode(resolve_all, _chain(msg, PANIC))
        (update,) = rows.tables["intent_updates"]
        got = dict(zip(COLUMNS["intent_updates"], update))
        assert (got["status"], got["tx_hash"], got["submitted_height"]) == ("failed", TX, 10)
        assert got["submitted_at"] == ts_string(1_777_000_000_000_000_000 + 10)
        assert got["accounts"] == ["alice.near", "bob.near"]  # the signer and whom it transfers to
        lookups = {(r[3], r[4]) for r in rows.tables["intent_lookups"]}
        assert lookups == {("account", "alice.near"), ("account", "bob.near"), ("tx", TX)}
        assert [r[2:] for r in rows.tables["intent_status_counts"]] == [["intents.near", "intents.near", "failed", 1]]


def test_a_cut_off_shard_is_a_dead_letter_and_its_links_are_lost() -> None:
    blocks = _chain()
    blocks[1].shards[0] = b'{"shard_id": 0, "chunk": {"transactions": [' + b"x" * 10  # cut short
    rows = _decode(False, blocks)
    # the shard check files it (kind shard, with its bytes); the chain through it stays unresolved
    assert rows.tables["receipts"][0][9] == ""
    assert [r[4] for r in rows.tables["dead_letters"]] == ["shard"]


def test_resolve_all_tx_follows_the_chain_through_every_shard() -> None:
    before = _unresolved()
    assert _receipt_row(resolve_all_tx=True) == {"receipt_id": R2, "tx_hash": TX, "method": "ft_on_transfer"}
    assert _unresolved() == before
