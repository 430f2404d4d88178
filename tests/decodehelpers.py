"""Shared helpers for the decode / store unit tests: real fixtures turned into decoder inputs.

Everything here reads the real fixtures under tests/fixtures (never modified): the
``execute_intents`` transaction of intents.near (rpc) and the four mainnet Lake blocks.
"""

from __future__ import annotations

import base64
import copy
import json
import uuid
from pathlib import Path
from typing import Any

import orjson

try:
    from lakebuild import LOCALNET, MAINNET, MAINNET_HEIGHTS, RPC, TX_FILE  # noqa: F401 (re-exported; conftest puts tests/ on sys.path)
except ImportError:
    from tests.lakebuild import LOCALNET, MAINNET, MAINNET_HEIGHTS, RPC, TX_FILE  # noqa: F401

from indexer.decode.emit import Emitter
from indexer.decode.nep297 import is_event, parse_event
from indexer.decode.receipt import TrackedReceipt, parse_actions
from indexer.decode.rows import COLUMNS, Rows, ts_string
from indexer.decode.status import parse_status
from indexer.sources.base import RawBlock


# --- the real execute_intents transaction ---------------------------------------------------

TX: dict[str, Any] = json.loads(TX_FILE.read_text())
TX_HASH = TX["transaction"]["hash"]
MAIN_RECEIPT_ID = TX["transaction_outcome"]["outcome"]["receipt_ids"][0]  # z6Rx...: execute_intents
SOLVER = "solver-priv-liq.near"
USER = "69307005629debbd360f5a567fe151a96d3d67082bfbe175273ff784e094927f"
USER_REFERRAL = "1click-rango"
SOLVER_HASH = "B6NsFf8v8T8dCc671uxYWaeHcMdRf8DBn2ZXn2Y18aZz"
USER_HASH = "DaqjLUF4BMwGPWpYgJbrymGzpb8H82spkTjuapdL8JGX"
TOKEN_SOL = "nep141:sol.omft.near"
TOKEN_HOT = "nep245:v2_1.omni.hot.tg:56_11111111111111111111"


def tx_outcome(receipt_id: str) -> dict[str, Any]:
    """The receipt outcome (``{"id", "outcome": {...}, "block_hash"}``) of the transaction."""
    return copy.deepcopy(next(o for o in TX["receipts_outcome"] if o["id"] == receipt_id))


def tx_receipt(receipt_id: str) -> dict[str, Any]:
    """The receipt view of the transaction; the first receipt is rebuilt from the transaction."""
    for r in TX["receipts"]:
        if r["receipt_id"] == receipt_id:
            return copy.deepcopy(r)
    assert receipt_id == MAIN_RECEIPT_ID
    t = TX["transaction"]
    return {
        "predecessor_id": t["signer_id"],
        "receipt": {"Action": {"actions": copy.deepcopy(t["actions"]), "gas_price": "100000000",
                               "input_data_ids": [], "output_data_receivers": [], "signer_id": t["signer_id"],
                               "signer_public_key": t["public_key"]}},
        "receipt_id": receipt_id,
        "receiver_id": t["receiver_id"],
    }


def main_args() -> dict[str, Any]:
    """The decoded ``execute_intents`` arguments of the real transaction."""
    b64 = TX["transaction"]["actions"][0]["FunctionCall"]["args"]
    return orjson.loads(base64.b64decode(b64))


def b64json(obj: Any) -> str:
    return base64.b64encode(orjson.dumps(obj)).decode()


def b64(data: bytes | str) -> str:
    return base64.b64encode(data.encode() if isinstance(data, str) else data).decode()


def failure_status(message: str) -> dict[str, Any]:
    return {"Failure": {"ActionError": {"index": 0, "kind": {"FunctionCallError": {"ExecutionError": message}}}}}


# --- receipts for role decoders ------------------------------------------------------------

def tracked_from_views(outcome: dict[str, Any], receipt: dict[str, Any], *, height: int = 200_000_000,
                       ts_ns: int = 1_777_000_000_000_000_000, tx_hash: str = "", shard_id: int = 0,
                       block_hash: str = "blockhash") -> TrackedReceipt:
    """A TrackedReceipt built from Lake-shaped views, the way BlockDecoder builds one."""
    o = outcome["outcome"]
    action = receipt["receipt"]["Action"]
    kinds, calls, deposit = parse_actions(action["actions"])
    r = TrackedReceipt(
        block_height=height, block_timestamp=ts_string(ts_ns), block_timestamp_ns=ts_ns, block_hash=block_hash,
        shard_id=shard_id, receipt_id=receipt["receipt_id"], receiver_id=receipt["receiver_id"],
        predecessor_id=receipt["predecessor_id"], signer_id=action["signer_id"], tx_hash=tx_hash,
        status=parse_status(o["status"]), gas_burnt=int(o["gas_burnt"]), tokens_burnt=str(o["tokens_burnt"]),
        calls=calls, action_kinds=kinds, deposit=deposit, logs=list(o["logs"]),
    )
    for i, line in enumerate(r.logs):
        if is_event(line):
            r.events.append((i, parse_event(line)))
    return r


def tx_tracked(receipt_id: str = MAIN_RECEIPT_ID, *, status: Any = None, logs: list[str] | None = None,
               **kw: Any) -> TrackedReceipt:
    """A receipt of the real transaction, optionally with another status or other logs."""
    outcome, receipt = tx_outcome(receipt_id), tx_receipt(receipt_id)
    if status is not None:
        outcome["outcome"]["status"] = status
    if logs is not None:
        outcome["outcome"]["logs"] = logs
    kw.setdefault("tx_hash", TX_HASH)
    return tracked_from_views(outcome, receipt, **kw)


def call_receipt(receiver: str, method: str, args: Any, *, status: Any = None, logs: list[str] | None = None,
                 predecessor: str = "relayer.near", signer: str = "relayer.near", receipt_id: str | None = None,
                 deposit: str = "0", gas: int = 30_000_000_000_000, gas_burnt: int = 2_500_000_000_000,
                 **kw: Any) -> TrackedReceipt:
    """A FunctionCall receipt; ``args`` is JSON-encoded unless it is bytes (used verbatim)."""
    raw = args if isinstance(args, bytes) else orjson.dumps(args)
    receipt = {
        "predecessor_id": predecessor,
        "receipt": {"Action": {"actions": [{"FunctionCall": {"args": b64(raw), "deposit": deposit, "gas": gas,
                                                             "method_name": method}}],
                               "gas_price": "100000000", "signer_id": signer}},
        "receipt_id": receipt_id or f"R{uuid.uuid4().hex[:20]}",
        "receiver_id": receiver,
    }
    outcome = {"id": receipt["receipt_id"], "outcome": {
        "executor_id": receiver, "gas_burnt": gas_burnt, "logs": logs or [], "receipt_ids": [],
        "status": status if status is not None else {"SuccessValue": ""}, "tokens_burnt": "0"}}
    return tracked_from_views(outcome, receipt, **kw)


def emitter(height: int = 200_000_000) -> Emitter:
    return Emitter(Rows(), height)


def table(rows: Rows, name: str) -> list[dict[str, Any]]:
    """Rows of one table as dicts keyed by column name."""
    cols = COLUMNS[name]
    out = []
    for row in rows.tables[name]:
        assert len(row) == len(cols), f"{name} row has {len(row)} values for {len(cols)} columns"
        out.append(dict(zip(cols, row)))
    return out


# --- raw Lake blocks ------------------------------------------------------------------------

def fixture_folder(height: int) -> Path:
    return MAINNET / f"{height:012d}"


def read_block(folder: Path) -> tuple[dict[str, Any], list[tuple[int, dict[str, Any]]]]:
    """block.json and the shards in ``block.chunks`` order, as objects."""
    block = json.loads((folder / "block.json").read_text())
    shards = [(c["shard_id"], json.loads((folder / f"shard_{c['shard_id']}.json").read_text()))
              for c in block["chunks"]]
    return block, shards


def raw_block(folder: Path) -> RawBlock:
    """The exact bytes of a Lake folder as a source delivers them (shards in chunk order)."""
    block_bytes = (folder / "block.json").read_bytes()
    block = json.loads(block_bytes)
    shards = [(folder / f"shard_{c['shard_id']}.json").read_bytes() for c in block["chunks"]]
    return RawBlock(height=int(block["header"]["height"]), block=block_bytes, shards=shards)


def raw_from_objects(block: dict[str, Any], shards: list[tuple[int, dict[str, Any]]] | list[dict[str, Any]]) -> RawBlock:
    shard_objs = [s[1] if isinstance(s, tuple) else s for s in shards]
    return RawBlock(height=int(block["header"]["height"]), block=json.dumps(block).encode(),
                    shards=[json.dumps(s).encode() for s in shard_objs])

