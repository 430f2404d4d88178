"""msgspec views of NEAR Lake JSON that name only the fields the indexer reads.

msgspec skips everything else while scanning, which is several times faster than building
dicts for the whole shard; fields that only tracked receipts need stay ``msgspec.Raw`` and are
decoded on demand. Unknown and newer fields (``congestion_info``, ``priority`` ...) are ignored,
and fields dropped by newer protocols have defaults.
"""

from __future__ import annotations

from typing import Any

import msgspec
from msgspec import Raw, Struct


class ChunkHeader(Struct):
    shard_id: int
    chunk_hash: str = ""


class BlockHeader(Struct):
    height: int
    hash: str
    prev_hash: str
    timestamp: int = 0
    timestamp_nanosec: str = ""
    latest_protocol_version: int = 0

    @property
    def timestamp_ns(self) -> int:
        return self.timestamp or int(self.timestamp_nanosec or 0)


class BlockView(Struct):
    header: BlockHeader
    chunks: list[ChunkHeader]
    author: str = ""


class Outcome(Struct):
    executor_id: str
    gas_burnt: int
    receipt_ids: list[str]
    status: Raw
    logs: Raw = Raw(b"[]")
    tokens_burnt: str = "0"


class ExecutionOutcome(Struct):
    id: str
    outcome: Outcome


class ReceiptView(Struct):
    receipt_id: str
    receiver_id: str
    predecessor_id: str
    receipt: Raw


class ExecutionOutcomeWithReceipt(Struct):
    execution_outcome: ExecutionOutcome
    receipt: ReceiptView


class TxOutcomeInner(Struct):
    receipt_ids: list[str]


class TxExecutionOutcome(Struct):
    outcome: TxOutcomeInner


class TxOutcome(Struct):
    execution_outcome: TxExecutionOutcome


class TxView(Struct):
    hash: str
    signer_id: str = ""
    receiver_id: str = ""


class TxWithOutcome(Struct):
    transaction: TxView
    outcome: TxOutcome


class ChunkView(Struct):
    transactions: list[TxWithOutcome] = []


class ShardView(Struct):
    shard_id: int
    chunk: ChunkView | None = None
    receipt_execution_outcomes: list[ExecutionOutcomeWithReceipt] = []


# --- the receipt chain of a shard only: what links receipts to their transactions ---
# A skipped shard (no tracked account in its bytes) is still read this far, so a chain that
# passes through it (ft_transfer_call on a token -> ft_on_transfer on intents.near) keeps its
# transaction hash. Everything else of the shard is skipped by the scanner.


class LinkOutcomeInner(Struct):
    receipt_ids: list[str]


class LinkOutcome(Struct):
    outcome: LinkOutcomeInner


class LinkReceipt(Struct):
    receipt_id: str


class LinkReceiptOutcome(Struct):
    execution_outcome: LinkOutcome
    receipt: LinkReceipt


class LinkChunk(Struct):
    transactions: list[TxWithOutcome] = []


class LinkShard(Struct):
    chunk: LinkChunk | None = None
    receipt_execution_outcomes: list[LinkReceiptOutcome] = []


# Decoders are built once: constructing them is the expensive part.
decode_block = msgspec.json.Decoder(BlockView).decode
decode_shard = msgspec.json.Decoder(ShardView).decode
decode_links = msgspec.json.Decoder(LinkShard).decode
decode_any = msgspec.json.Decoder().decode


# --- receipts of tracked contracts: decoded lazily from ReceiptView.receipt ---


class ActionReceipt(Struct):
    signer_id: str = ""
    actions: list[Any] = []
    gas_price: str = "0"


class ReceiptBody(Struct):
    Action: ActionReceipt | None = None
    Data: Any = None


decode_receipt_body = msgspec.json.Decoder(ReceiptBody).decode
decode_logs = msgspec.json.Decoder(list[str]).decode


class ReceiptContext(Struct):
    """A tracked receipt as a dead letter keeps it: the Lake outcome verbatim (its raw parts stay
    raw) with where it executed, so that it decodes again exactly as it did in its block."""

    height: int
    block_hash: str
    timestamp_ns: int
    shard_id: int
    index_in_block: int
    tx_hash: str
    role: str
    outcome: ExecutionOutcomeWithReceipt
    v: int = 1
    tx_height: int | None = None  # the block of the transaction that started the receipt chain
    tx_timestamp: str = ""


encode = msgspec.json.encode
decode_receipt_context = msgspec.json.Decoder(ReceiptContext).decode
