"""Heights, skips, timestamps, hashes and the block/chunk headers of the simulated chain.

Continuity is what an indexer checks: each written block's ``header.prev_hash`` is the hash of
the previous *written* block and ``prev_height`` its height, with skipped heights in between.
The first and the last ``drain`` heights are never skipped and never miss a chunk, so the range
is bounded by real blocks and every receipt chain can finish inside it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from indexer.simulate.ids import FastIds, Ids
from indexer.simulate.options import SimConfig

EPOCH_LENGTH = 43_200  # mainnet blocks per epoch
CHUNK_GAS_LIMIT = 1_000_000_000_000_000
EMPTY_ROOT = "11111111111111111111111111111111"
_VALIDATORS = (
    "figment.poolv1.near", "astro-stakers.poolv1.near", "bitcoinsuisse.poolv1.near", "staked.poolv1.near",
    "binancenode1.poolv1.near", "zavodil.poolv1.near", "chorusone.poolv1.near", "sweat_validator.poolv1.near",
    "legends.poolv1.near", "stakely_v2.poolv1.near", "everstake.poolv1.near", "blockdaemon.poolv1.near",
    "p2p-org.poolv1.near", "rekt.poolv1.near", "ledgerbyfigment.poolv1.near", "epic.poolv1.near",
    "nearone.poolv1.near", "aurora.pool.near", "meta-pool.poolv1.near", "linear-protocol.poolv1.near",
)


@dataclass(slots=True)
class BlockPlan:
    offset: int  # height - start_height
    height: int
    exists: bool
    timestamp_ns: int = 0
    hash: str = ""
    prev_hash: str = ""
    prev_height: int = 0
    ordinal: int = 0
    missing_shards: frozenset[int] = frozenset()


def plan_chain(cfg: SimConfig, ids: Ids) -> list[BlockPlan]:
    """One plan per height of the range, skipped heights included (``exists=False``)."""
    rng = random.Random(f"{cfg.seed}:chain")
    block_ns = int(cfg.block_time * 1e9)
    clean_tail = cfg.drain_blocks
    plans: list[BlockPlan] = []
    ts = cfg.start_ns
    prev_hash = ids.hash("block", cfg.start_height - 1)
    prev_height = cfg.start_height - 1
    ordinal = 150_000_000 + cfg.start_height // 2  # block_ordinal counts existing blocks since genesis
    for offset in range(cfg.blocks):
        height = cfg.start_height + offset
        if offset:
            # block production jitters by tens of milliseconds around the target block time
            ts += block_ns + int(rng.uniform(-0.06, 0.12) * block_ns)
        edge = offset == 0 or offset >= cfg.blocks - clean_tail
        exists = edge or rng.random() >= cfg.skip_rate
        plan = BlockPlan(offset, height, exists)
        if exists:
            missing: set[int] = set()
            if not edge and cfg.missing_chunk_rate:
                for sid in cfg.shard_ids:
                    if rng.random() < cfg.missing_chunk_rate:
                        missing.add(sid)
                if len(missing) == len(cfg.shard_ids):
                    missing.discard(cfg.shard_ids[0])
            ordinal += 1
            plan.timestamp_ns = ts
            plan.hash = ids.hash("block", height)
            plan.prev_hash, plan.prev_height = prev_hash, prev_height
            plan.ordinal = ordinal
            plan.missing_shards = frozenset(missing)
            prev_hash, prev_height = plan.hash, height
        plans.append(plan)
    return plans


class HeaderFactory:
    """Builds ``block.json`` headers and chunk headers; keeps the last real chunk of each shard
    because a block that misses a chunk repeats the shard's previous chunk header."""

    def __init__(self, cfg: SimConfig, ids: Ids):
        self.cfg = cfg
        self.ids = ids
        self.rng = random.Random(f"{cfg.seed}:headers")
        # Header roots and signatures carry no meaning for an indexer; they come from a per-block
        # FastIds (a slice per hash) because real base58 encoding of ~100 hashes per block would
        # dominate generation time.
        self._sigs = [ids.signature("approval", i) for i in range(256)]
        self._fast: FastIds | None = None
        self._fast_height = -1
        self._epoch: tuple[int, tuple[str, str, str]] | None = None
        self._last_chunk: dict[int, dict[str, Any]] = {}
        self._finality: list[str] = []

    def chunk_header(self, plan: BlockPlan, shard_id: int, gas_used: int, tokens_burnt: int,
                     encoded_length: int, has_txs: bool) -> dict[str, Any]:
        if shard_id in plan.missing_shards:
            old = self._last_chunk.get(shard_id)
            if old is not None:
                return old
            # the previous chunk of this shard predates the range: synthesise it
            return self._new_chunk(plan, shard_id, plan.height - 1, 0, 0, 0, False)
        header = self._new_chunk(plan, shard_id, plan.height, gas_used, tokens_burnt, encoded_length, has_txs)
        self._last_chunk[shard_id] = header
        return header

    def _hashes(self, plan: BlockPlan) -> FastIds:
        if self._fast_height != plan.height:
            self._fast = FastIds(self.ids.wide_hash("headers", plan.height))
            self._fast_height = plan.height
        assert self._fast is not None
        return self._fast

    def _signature(self) -> str:
        return self._sigs[self.rng.randrange(256)][:-3] + self._hashes_tail()

    def _hashes_tail(self) -> str:
        assert self._fast is not None
        return self._fast.next()[-3:]

    def _new_chunk(self, plan: BlockPlan, shard_id: int, height: int, gas_used: int, tokens_burnt: int,
                   encoded_length: int, has_txs: bool) -> dict[str, Any]:
        h = self._hashes(plan).next
        return {
            "balance_burnt": str(tokens_burnt),
            "bandwidth_requests": {"V1": {"requests": []}},
            "chunk_hash": h(),
            "congestion_info": {"allowed_shard": shard_id, "buffered_receipts_gas": "0",
                                "delayed_receipts_gas": "0", "receipt_bytes": 0},
            "encoded_length": encoded_length,
            "encoded_merkle_root": h(),
            "gas_limit": CHUNK_GAS_LIMIT,
            "gas_used": gas_used,
            "height_created": height,
            "height_included": height,
            "outcome_root": h(),
            "outgoing_receipts_root": h(),
            "prev_block_hash": plan.prev_hash if height == plan.height else self.ids.hash("block", height - 1),
            "prev_state_root": h(),
            "rent_paid": "0",
            "shard_id": shard_id,
            "signature": self._signature(),
            "tx_root": h() if has_txs else EMPTY_ROOT,
            "validator_proposals": [],
            "validator_reward": "0",
        }

    def block(self, plan: BlockPlan, chunks: list[dict[str, Any]]) -> dict[str, Any]:
        cfg, rng = self.cfg, self.rng
        fast = self._hashes(plan).next
        epoch = plan.height // EPOCH_LENGTH
        epoch_hash = self._epoch_hashes(epoch)
        mask = [c["height_included"] == plan.height for c in chunks]
        approvals = [self._sigs[rng.randrange(256)] if rng.random() < 0.93 else None for _ in range(48)]
        self._finality.append(plan.prev_hash)
        last_final = self._finality[-2] if len(self._finality) > 1 else plan.prev_hash
        header = {
            "approvals": approvals,
            "block_body_hash": fast(),
            "block_merkle_root": fast(),
            "block_ordinal": plan.ordinal,
            "challenges_result": [],
            "challenges_root": EMPTY_ROOT,
            "chunk_endorsements": [[255] * 9 + [rng.randrange(1, 256)] for _ in chunks],
            "chunk_headers_root": fast(),
            "chunk_mask": mask,
            "chunk_receipts_root": fast(),
            "chunk_tx_root": fast(),
            "chunks_included": sum(mask),
            "epoch_id": epoch_hash[0],
            "epoch_sync_data_hash": None,
            "gas_price": "100000000",
            "hash": plan.hash,
            "height": plan.height,
            "last_ds_final_block": plan.prev_hash,
            "last_final_block": last_final,
            "latest_protocol_version": cfg.protocol_version,
            "next_bp_hash": epoch_hash[2],
            "next_epoch_id": epoch_hash[1],
            "outcome_root": fast(),
            "prev_hash": plan.prev_hash,
            "prev_height": plan.prev_height,
            "prev_state_root": fast(),
            "random_value": fast(),
            "rent_paid": "0",
            "signature": self._signature(),
            "timestamp": plan.timestamp_ns,
            "timestamp_nanosec": str(plan.timestamp_ns),
            "total_supply": str(1_277_588_493_092_208_736_683_680_159_652_463 + plan.height * 10**21),
            "validator_proposals": [],
            "validator_reward": "0",
        }
        return {"author": _VALIDATORS[plan.height % len(_VALIDATORS)], "chunks": chunks, "header": header}

    def _epoch_hashes(self, epoch: int) -> tuple[str, str, str]:
        if self._epoch is None or self._epoch[0] != epoch:
            self._epoch = (epoch, (self.ids.hash("epoch", epoch), self.ids.hash("epoch", epoch + 1),
                                   self.ids.hash("bp", epoch + 1)))
        return self._epoch[1]

    def chunk_author(self, plan: BlockPlan, shard_id: int) -> str:
        return _VALIDATORS[(plan.height * 7 + shard_id) % len(_VALIDATORS)]
