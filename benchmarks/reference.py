"""A reference pipeline decoder built on near-lake-framework 0.1.3's decoding.

It decodes every block and shard with ``Block.from_json`` / ``IndexerShard.from_json`` (what a
near-lake-framework consumer does for every StreamerMessage), then produces exactly the rows
of :class:`indexer.decode.block.BlockDecoder` from those objects, so that both pipelines share
row building, store and batching and differ only in how the Lake JSON is decoded.
"""

from __future__ import annotations

import logging

import orjson

from indexer import metrics
from indexer.decode import lake
from indexer.decode.block import BlockDecoder, DecodedBlock
from indexer.decode.emit import Emitter
from indexer.decode.rows import Rows, ts_string
from indexer.sources.base import RawBlock


class ReferenceDecoder(BlockDecoder):
    def decode(self, raw: RawBlock) -> DecodedBlock:
        from near_lake_framework.near_primitives import Block, IndexerShard

        logging.disable(logging.INFO)  # near-lake-framework turns INFO logging on at import
        rows = Rows()
        out = Emitter(rows, raw.height)
        block = Block.from_json(raw.block)
        shards = [IndexerShard.from_json(s) for s in raw.shards]
        header = block.header
        height, ts_ns = header.height, header.timestamp
        ts = ts_string(ts_ns)
        out.height = height
        self.tx_by_receipt.begin_block(height)
        self.workshop_state.begin_block(height)
        for shard in shards:
            if shard.chunk is not None:
                for tx in shard.chunk.transactions:
                    for rid in tx.outcome.execution_outcome.outcome.receipt_ids:
                        self.tx_by_receipt.set(rid, tx.transaction.hash)
        tracked = unresolved = 0
        for shard in shards:
            for index, reo in enumerate(shard.receipt_execution_outcomes):
                eo = reo.execution_outcome
                rid = reo.receipt.receipt_id
                link = self.tx_by_receipt.entry(rid)
                tx_hash = link[1] if link is not None else None
                if tx_hash:
                    for child in eo.outcome.receipt_ids:
                        self.tx_by_receipt.set(child, tx_hash, born=link[0])
                role = self.roles.get(reo.receipt.receiver_id)
                if role is None:
                    continue
                tracked += 1
                unresolved += not tx_hash
                # Same row building as the project's path, from the objects near-lake-framework built.
                view = lake.ExecutionOutcomeWithReceipt(
                    execution_outcome=lake.ExecutionOutcome(
                        id=eo.id,
                        outcome=lake.Outcome(
                            executor_id=eo.outcome.executor_id, gas_burnt=eo.outcome.gas_burnt,
                            receipt_ids=eo.outcome.receipt_ids, status=lake.Raw(orjson.dumps(eo.outcome.status)),
                            logs=lake.Raw(orjson.dumps(eo.outcome.logs)), tokens_burnt=str(eo.outcome.tokens_burnt),
                        ),
                    ),
                    receipt=lake.ReceiptView(
                        receipt_id=rid, receiver_id=reo.receipt.receiver_id,
                        predecessor_id=reo.receipt.predecessor_id,
                        receipt=lake.Raw(orjson.dumps(reo.receipt.receipt)),
                    ),
                )
                self._tracked_receipt(view, shard.shard_id, shard.shard_id * 100_000 + index, tx_hash or "",
                                      height, header.hash, ts, ts_ns, role, out)
        if unresolved:
            metrics.TX_UNRESOLVED.inc(unresolved)
        rows.add("blocks", [height, header.hash, header.prev_hash, ts_ns, block.author,
                            header.latest_protocol_version, [c.shard_id for c in block.chunks], tracked])
        return DecodedBlock(height, header.hash, header.prev_hash, ts_ns, rows, raw.size)
