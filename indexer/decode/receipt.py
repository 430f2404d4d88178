"""One executed receipt of a tracked contract, with everything role decoders need."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from typing import Any

import orjson

from indexer.decode.nep297 import Event
from indexer.decode.status import Status


@dataclass(slots=True)
class FunctionCall:
    method_name: str
    args_raw: bytes  # base64-decoded
    gas: int
    deposit: int

    def args_json(self) -> Any:
        """The arguments as JSON; raises ValueError when they are not JSON."""
        return orjson.loads(self.args_raw)


@dataclass(slots=True)
class TrackedReceipt:
    block_height: int
    block_timestamp: str  # DateTime64(3) text, see rows.ts_string
    block_timestamp_ns: int
    block_hash: str
    shard_id: int
    receipt_id: str
    receiver_id: str
    predecessor_id: str
    signer_id: str
    tx_hash: str
    status: Status
    gas_burnt: int
    tokens_burnt: str
    calls: list[FunctionCall] = field(default_factory=list)
    action_kinds: list[str] = field(default_factory=list)
    deposit: int = 0
    logs: list[str] = field(default_factory=list)
    events: list[tuple[int, Event]] = field(default_factory=list)  # (log index, event)
    index_in_block: int = 0  # shard_id * 100_000 + position in the shard, as receipts.index_in_block
    tx_height: int | None = None  # block of the originating transaction, when it was seen
    tx_timestamp: str | None = None  # its block time, as block_timestamp

    @property
    def method_name(self) -> str:
        return self.calls[0].method_name if self.calls else ""


def parse_actions(actions: list[Any]) -> tuple[list[str], list[FunctionCall], int]:
    """Action kinds, the FunctionCalls (args base64-decoded) and the total deposit."""
    kinds: list[str] = []
    calls: list[FunctionCall] = []
    deposit = 0
    for action in actions:
        if isinstance(action, str):  # e.g. "CreateAccount"
            kinds.append(action)
            continue
        if not isinstance(action, dict) or len(action) != 1:
            raise ValueError(f"unrecognised action: {str(action)[:200]}")
        kind, body = next(iter(action.items()))
        kinds.append(kind)
        if not isinstance(body, dict):
            continue
        if "deposit" in body:
            deposit += int(body["deposit"])
        if kind == "FunctionCall":
            try:
                raw = base64.b64decode(body.get("args") or "", validate=True)
            except binascii.Error as exc:
                raise ValueError(f"FunctionCall args are not base64: {exc}") from None
            calls.append(
                FunctionCall(
                    method_name=str(body.get("method_name", "")),
                    args_raw=raw,
                    gas=int(body.get("gas", 0)),
                    deposit=int(body.get("deposit", 0)),
                )
            )
    return kinds, calls, deposit


def args_text(call: FunctionCall | None) -> str:
    """Arguments as JSON text for the ``receipts.args`` column, or '' when they are not JSON."""
    if call is None or not call.args_raw:
        return ""
    try:
        orjson.loads(call.args_raw)
    except orjson.JSONDecodeError:
        return ""
    return call.args_raw.decode()
