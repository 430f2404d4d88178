"""The output of decoding one block: every role decoder writes its rows through one Emitter."""

from __future__ import annotations

from dataclasses import dataclass

import structlog

from indexer import metrics
from indexer.decode.receipt import TrackedReceipt
from indexer.decode.rows import Rows

log = structlog.get_logger(__name__)


@dataclass(slots=True)
class Emitter:
    """Where role decoders put rows; numbers updates and dead letters in a stable order."""

    rows: Rows
    height: int
    _update_index: int = 0
    _dead_seq: int = 0

    def dead_letter(self, kind: str, reason: str, payload: bytes | str, *, shard_id: int = -1,
                    receipt_id: str = "", contract_id: str = "") -> None:
        if isinstance(payload, bytes):
            payload = payload.decode("utf-8", errors="replace")
        self.rows.add("dead_letters", [self.height, shard_id, receipt_id, contract_id, kind, reason, payload, self._dead_seq])
        self._dead_seq += 1
        metrics.DEAD_LETTERS.labels(kind=kind).inc()
        log.warning("dead letter", kind=kind, reason=reason, block_height=self.height, shard_id=shard_id,
                    receipt_id=receipt_id)

    def intent_update(self, r: TrackedReceipt, contract_id: str, intent_id: str, status: str, *, failure: str = "",
                      signer_id: str = "", solver_id: str = "", kinds: list[str] | None = None,
                      tokens: list[str] | None = None, amounts: list[str] | None = None, referral: str = "",
                      action: str = "", deadline: str = "") -> None:
        self.rows.add("intent_updates", [
            r.block_height, r.block_timestamp, self._update_index, contract_id, intent_id, status, failure,
            signer_id, solver_id, kinds or [], tokens or [], amounts or [], referral, action, deadline,
            r.receipt_id, r.tx_hash, r.method_name, r.gas_burnt,
        ])
        self._update_index += 1

    def solver_execution(self, r: TrackedReceipt, contract_id: str, solver_id: str, intent_ids: list[str],
                         success: bool, failure: str, latency_s: float | None = None) -> None:
        self.rows.add("solver_executions", [
            r.block_height, r.block_timestamp, contract_id, solver_id, r.receipt_id, r.tx_hash, r.method_name,
            intent_ids, int(success), failure, r.gas_burnt, latency_s,
        ])
