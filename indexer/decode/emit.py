"""The output of decoding one block: every role decoder writes its rows through one Emitter."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import structlog

from indexer import metrics
from indexer.decode import DECODER_VERSION
from indexer.decode.receipt import TrackedReceipt
from indexer.decode.rows import Rows

log = structlog.get_logger(__name__)


@dataclass(slots=True)
class Emitter:
    """Where role decoders put rows; numbers updates and dead letters in a stable order.

    Numbers depend only on the receipt or the owner they belong to, never on which other
    contracts the stream tracks, so streams with different contract sets write identical rows.
    """

    rows: Rows
    height: int
    _dead_seq: dict[str, int] = field(default_factory=dict)  # owner (contract_id) -> next seq
    _receipt: str = ""
    _update_index: int = 0
    # The receipt being decoded and how to describe it (built only when it has a dead letter), so
    # that ``dead-letters retry`` can decode it again without its source.
    _context_receipt: str = ""
    _context: Callable[[], str] | None = None
    _context_text: str | None = None
    # (contract_id, receiver_id, status) -> [block_timestamp, updates] of this block
    _status_counts: dict[tuple[str, str, str], list] = field(default_factory=dict)

    @classmethod
    def after(cls, rows: Rows, height: int) -> "Emitter":
        """An emitter that numbers its dead letters after those already in ``rows``."""
        out = cls(rows, height)
        for row in rows.tables["dead_letters"]:
            out._dead_seq[row[3]] = max(out._dead_seq.get(row[3], 0), row[7] + 1)
        return out

    def begin_receipt(self, receipt_id: str, context: Callable[[], str]) -> None:
        """Dead letters of ``receipt_id`` from now on carry ``context()`` (computed once, on the first)."""
        self._context_receipt, self._context, self._context_text = receipt_id, context, None

    def _context_of(self, receipt_id: str) -> str:
        if not receipt_id or receipt_id != self._context_receipt or self._context is None:
            return ""
        if self._context_text is None:
            self._context_text = self._context()
        return self._context_text

    def dead_letter(self, kind: str, reason: str, payload: bytes | str, *, shard_id: int = -1,
                    receipt_id: str = "", contract_id: str = "", log_index: int = -1) -> None:
        if isinstance(payload, bytes):
            payload = payload.decode("utf-8", errors="replace")
        seq = self._dead_seq.get(contract_id, 0)
        self.rows.add("dead_letters", [self.height, shard_id, receipt_id, contract_id, kind, reason, payload, seq,
                                       log_index, self._context_of(receipt_id), DECODER_VERSION, ""])
        self._dead_seq[contract_id] = seq + 1
        metrics.DEAD_LETTERS.labels(kind=kind).inc()
        log.warning("dead letter", kind=kind, reason=reason, block_height=self.height, shard_id=shard_id,
                    receipt_id=receipt_id)

    def intent_update(self, r: TrackedReceipt, contract_id: str, intent_id: str, status: str, *, failure: str = "",
                      signer_id: str = "", solver_id: str = "", kinds: list[str] | None = None,
                      tokens: list[str] | None = None, amounts: list[str] | None = None, referral: str = "",
                      action: str = "", deadline: str = "", accounts: list[str] | None = None) -> None:
        """One update of an intent, and its lookup rows (``accounts``: whom it moves tokens for, besides the signer)."""
        if r.receipt_id != self._receipt:
            self._receipt, self._update_index = r.receipt_id, 0
        # (receipt position in the block, update within the receipt): ordered like the chain
        index = (r.index_in_block << 16) + self._update_index
        moved = list(dict.fromkeys(a for a in ([signer_id] if signer_id else []) + (accounts or []) if a))
        self.rows.add("intent_updates", [
            r.block_height, r.block_timestamp, index, contract_id, r.receiver_id, intent_id, status, failure,
            signer_id, solver_id, kinds or [], tokens or [], amounts or [], referral, action, deadline,
            r.receipt_id, r.tx_hash, r.method_name, r.gas_burnt, r.tx_height, r.tx_timestamp, moved,
        ])
        self._update_index += 1
        counted = self._status_counts.setdefault((contract_id, r.receiver_id, status), [r.block_timestamp, 0])
        counted[1] += 1
        keys = [("account", a) for a in moved]
        if solver_id:
            keys.append(("solver", solver_id))
        if r.tx_hash:
            keys.append(("tx", r.tx_hash))
        for kind, key in keys:
            self.rows.add("intent_lookups", [r.block_height, r.block_timestamp, index, kind, key, contract_id,
                                             r.receiver_id, intent_id, status])

    def finish_block(self) -> None:
        """Write the block's updates per (contract, status); call once, after its last receipt."""
        for (contract_id, receiver_id, status), (ts, n) in sorted(self._status_counts.items()):
            self.rows.add("intent_status_counts", [self.height, ts, contract_id, receiver_id, status, n])
        self._status_counts.clear()

    def solver_execution(self, r: TrackedReceipt, contract_id: str, solver_id: str, intent_ids: list[str],
                         success: bool, failure: str, latency_s: float | None = None) -> None:
        self.rows.add("solver_executions", [
            r.block_height, r.block_timestamp, contract_id, r.receiver_id, solver_id, r.receipt_id, r.tx_hash, r.method_name,
            intent_ids, int(success), failure, r.gas_burnt, latency_s,
        ])
