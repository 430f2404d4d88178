"""Build small Lake folders from the real fixtures, for tests.

``fixture_lake`` re-chains the four mainnet blocks into consecutive heights and places the
real intents.near ``execute_intents`` transaction (tests/fixtures/rpc) into them: the
transaction and its first receipt in the first block, the other receipt outcomes in later
blocks grouped as they were on chain (by their ``block_hash``). Everything else is verbatim.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

# Real NEAR data kept in the repository, unedited; tests/fixtures/README.md says where each came from.
FIXTURES = Path(__file__).resolve().parent / "fixtures"
MAINNET = FIXTURES / "lake-mainnet"
LOCALNET = FIXTURES / "lake-localnet"
RPC = FIXTURES / "rpc"
TX_FILE = next(RPC.glob("execute_intents_tx_*.json"))
MAINNET_HEIGHTS = sorted(int(p.name) for p in MAINNET.iterdir())


def load_block(height: int, root: Path = MAINNET) -> tuple[dict[str, Any], dict[int, dict[str, Any]]]:
    folder = root / f"{height:012d}"
    block = json.loads((folder / "block.json").read_text())
    shards = {c["shard_id"]: json.loads((folder / f"shard_{c['shard_id']}.json").read_text()) for c in block["chunks"]}
    return block, shards


def write_block(root: Path, block: dict[str, Any], shards: dict[int, dict[str, Any]]) -> None:
    folder = root / f"{block['header']['height']:012d}"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "block.json").write_text(json.dumps(block))
    for sid, shard in shards.items():
        (folder / f"shard_{sid}.json").write_text(json.dumps(shard))


def _fake_hash(n: int) -> str:
    import base58
    import hashlib

    return base58.b58encode(hashlib.sha256(f"test-block-{n}".encode()).digest()).decode()


def fixture_lake(root: Path, start_height: int = 200_000_000, copies: int = 2, with_tx: bool = True,
                 skip_every: int = 0) -> list[int]:
    """Write ``copies`` rounds of the four mainnet blocks as one chain; returns the heights written.

    ``skip_every`` > 0 leaves out every n-th height (skipped blocks), keeping the prev_hash chain.
    """
    tx = json.loads(TX_FILE.read_text())
    groups: list[str] = []
    for o in tx["receipts_outcome"]:
        if o["block_hash"] not in groups:
            groups.append(o["block_hash"])
    receipts = {r["receipt_id"]: r for r in tx["receipts"]}
    first_receipt_id = tx["transaction_outcome"]["outcome"]["receipt_ids"][0]
    receipts.setdefault(first_receipt_id, {
        "predecessor_id": tx["transaction"]["signer_id"],
        "receipt": {"Action": {"actions": tx["transaction"]["actions"], "gas_price": "100000000",
                               "input_data_ids": [], "output_data_receivers": [],
                               "signer_id": tx["transaction"]["signer_id"],
                               "signer_public_key": tx["transaction"]["public_key"]}},
        "receipt_id": first_receipt_id, "receiver_id": tx["transaction"]["receiver_id"],
    })

    written: list[int] = []
    height = start_height
    prev_hash = _fake_hash(height - 1)
    n = 0
    for _ in range(copies):
        for src in MAINNET_HEIGHTS:
            if skip_every and n and n % skip_every == 0:
                height += 1
            block, shards = load_block(src)
            block = copy.deepcopy(block)
            h = block["header"]
            h["height"] = height
            h["prev_height"] = written[-1] if written else height - 1
            h["prev_hash"] = prev_hash
            h["hash"] = _fake_hash(height)
            h["timestamp"] = 1_777_000_000_000_000_000 + n * 600_000_000
            h["timestamp_nanosec"] = str(h["timestamp"])
            for c in block["chunks"]:
                c["height_included"] = height
            first_sid = block["chunks"][0]["shard_id"]
            if with_tx and n == 0:
                shards[first_sid]["chunk"]["transactions"].append(
                    {"transaction": tx["transaction"], "outcome": {
                        "execution_outcome": tx["transaction_outcome"],
                        "receipt": None}})
            if with_tx and n < len(groups):
                for o in tx["receipts_outcome"]:
                    if o["block_hash"] == groups[n]:
                        shards[first_sid]["receipt_execution_outcomes"].append(
                            {"execution_outcome": o, "receipt": receipts[o["id"]]})
            write_block(root, block, shards)
            written.append(height)
            prev_hash = h["hash"]
            height += 1
            n += 1
    return written


def copy_blocks(src: Path, dest: Path, heights: list[int]) -> None:
    """Copy some block folders of one lake into another (a mirror that has not caught up yet)."""
    import shutil

    dest.mkdir(parents=True, exist_ok=True)
    for h in heights:
        shutil.copytree(src / f"{h:012d}", dest / f"{h:012d}")
