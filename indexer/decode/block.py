"""Raw block -> rows: the fast path every block goes through.

Per block: decode ``block.json``; file every shard that is not a complete shard of this block
as a dead letter; skip every shard whose bytes never mention a tracked account (unless every
transaction hash must be resolved); decode the rest with msgspec views; link
receipts to transactions; hand each receipt of a tracked contract to its role's decoder.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import msgspec
import orjson
import structlog

from indexer import metrics
from indexer.config import ContractSpec
from indexer.decode import dip4, lake, workshop
from indexer.decode.emit import Emitter
from indexer.decode.nep297 import EventError, is_event, parse_event
from indexer.decode.receipt import TrackedReceipt, args_text, parse_actions
from indexer.decode.roles import Role
from indexer.decode.rows import Rows, ts_string
from indexer.decode.state import ExpiringMap
from indexer.decode.status import parse_status
from indexer.sources.base import RawBlock

log = structlog.get_logger(__name__)


@dataclass(slots=True)
class DecodedBlock:
    height: int
    hash: str
    prev_hash: str
    timestamp_ns: int
    rows: Rows
    bytes: int
    shards_skipped: int = 0


@dataclass
class DecoderConfig:
    contracts: list[ContractSpec]
    solver_accounts: frozenset[str] = frozenset()
    resolve_all_tx: bool = False
    lookback: int = 250

    @classmethod
    def from_settings(cls, settings: Any) -> "DecoderConfig":
        return cls(
            contracts=settings.contract_specs,
            solver_accounts=frozenset(a.lower() for a in settings.solver_accounts),
            resolve_all_tx=settings.resolve_all_tx,
            lookback=settings.tx_lookback_blocks,
        )


def anchors(accounts: list[str]) -> list[bytes]:
    """Few substrings such that every account contains one: the shard pre-filter scans for these.

    Accounts under one parent (``solver-1.workshop.near``, ``verifier.workshop.near``) share
    the anchor ``.workshop.near``, so a shard is scanned once per parent, not once per account.
    A false positive only costs the decoding of one shard; a false negative is impossible.
    """
    out: set[str] = set()
    for account in accounts:
        labels = account.split(".")
        parent = "." + ".".join(labels[-2:]) if len(labels) > 2 else account
        # A short parent ('.tg', '.near') would match nearly every shard: keep the account then.
        out.add(parent if len(parent) >= 10 and sum(a.endswith(parent) for a in accounts) > 1 else account)
    # Drop anchors that contain another anchor: the shorter one already matches.
    return sorted({a.encode() for a in out if not any(b != a and b in a for b in out)})


_WHITESPACE = b" \t\r\n"


def _edges(data: bytes) -> tuple[bytes, bytes]:
    """First and last bytes that are not JSON whitespace, found without copying the shard."""
    i, j = 0, len(data)
    while i < j and data[i] in _WHITESPACE:
        i += 1
    while j > i and data[j - 1] in _WHITESPACE:
        j -= 1
    return data[i:i + 1], data[j - 1:j]


def shard_problem(shard: bytes, chunk: lake.ChunkHeader) -> str:
    """Why ``shard`` is not a complete shard file of this block ('' when it looks like one).

    Cheap enough for every shard (one scan for the chunk hash), so that a proxy's HTML error
    page or a file cut off before any tracked account's name is caught before the pre-filter
    would skip it unseen. A shard that missed its chunk holds ``"chunk": null``, so no chunk
    hash at all: it must then still have the key every shard file has.
    """
    first, last = _edges(shard)
    if not first:
        return "the file is empty"
    if first != b"{":
        return f"it does not start like a JSON object: {shard[:80]!r}"
    if last != b"}":
        return f"it does not end like a JSON object (cut off?): ...{shard[-80:]!r}"
    if not chunk.chunk_hash or b'"' + chunk.chunk_hash.encode() + b'"' in shard:
        return ""
    if b'"chunk_hash"' in shard:
        return f"it carries another chunk than {chunk.chunk_hash}, the one block.json names for shard {chunk.shard_id}"
    if b'"receipt_execution_outcomes"' not in shard:
        return f"it is a JSON object but not a shard file: {shard[:80]!r}"
    return ""


class BlockDecoder:
    def __init__(self, config: DecoderConfig):
        self.config = config
        self.roles: dict[str, Role] = {c.account: c.role for c in config.contracts}
        self._needles = anchors([c.account for c in config.contracts])
        # receipt id -> (tx hash, tx block time), born at the tx's height
        self.tx_by_receipt: ExpiringMap[tuple[str, str]] = ExpiringMap(config.lookback)
        self.workshop_state = workshop.WorkshopState(config.lookback)
        self._handlers: dict[Role, Callable[[TrackedReceipt, Emitter], None]] = {
            Role.VERIFIER: lambda r, e: dip4.decode_receipt(r, e, config.solver_accounts),
            Role.WORKSHOP_VERIFIER: lambda r, e: workshop.decode_verifier_receipt(r, e, self.workshop_state, self.roles),
            Role.WORKSHOP_SOLVER: lambda r, e: workshop.decode_solver_receipt(r, e, self.workshop_state, self.roles),
            Role.NONE: lambda r, e: None,
        }

    def _mentions_tracked(self, shard: bytes) -> bool:
        return any(n in shard for n in self._needles)

    def decode(self, raw: RawBlock) -> DecodedBlock:
        """Rows of one block. An undecodable block.json gives a block with an empty hash whose only row is its dead letter."""
        rows = Rows()
        out = Emitter(rows, raw.height)
        try:
            block = lake.decode_block(raw.block)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            out.dead_letter("block", f"block.json undecodable: {exc}", raw.block)
            return DecodedBlock(raw.height, "", "", 0, rows, raw.size)
        header = block.header
        height = header.height
        ts_ns = header.timestamp_ns
        ts = ts_string(ts_ns)
        out.height = height
        self.tx_by_receipt.begin_block(height)
        self.workshop_state.begin_block(height)
        structlog.contextvars.bind_contextvars(block_height=height)

        shard_ids = [c.shard_id for c in block.chunks]
        shards: list[lake.ShardView] = []
        links: list[lake.LinkShard] = []  # skipped shards, read only as far as their receipt chains
        skipped = 0
        for i, shard_bytes in enumerate(raw.shards):
            chunk = block.chunks[i] if i < len(block.chunks) else lake.ChunkHeader(shard_id=-1)
            problem = shard_problem(shard_bytes, chunk)
            if problem:
                out.dead_letter("shard", f"shard_{chunk.shard_id}.json of block {height} is not a complete shard "
                                f"file: {problem}", shard_bytes, shard_id=chunk.shard_id)
                continue
            if not self.config.resolve_all_tx and not self._mentions_tracked(shard_bytes):
                skipped += 1
                try:
                    links.append(lake.decode_links(shard_bytes))
                except (msgspec.DecodeError, msgspec.ValidationError):
                    pass  # it holds no tracked receipt; only a chain through it stays unresolved
                continue
            try:
                shards.append(lake.decode_shard(shard_bytes))
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                out.dead_letter("shard", f"shard_{chunk.shard_id}.json undecodable: {exc}", shard_bytes,
                                shard_id=chunk.shard_id)
        if skipped:
            metrics.SHARDS_SKIPPED.inc(skipped)

        # Transactions first: their receipts may execute in any shard of a later block. A link is
        # (tx hash, block time of the tx), born at the tx's height: an intent's submission.
        txmap = self.tx_by_receipt
        for view in (*shards, *links):
            if view.chunk is not None:
                for tx in view.chunk.transactions:
                    for rid in tx.outcome.execution_outcome.outcome.receipt_ids:
                        txmap.set(rid, (tx.transaction.hash, ts))
        for link_view in links:
            for lro in link_view.receipt_execution_outcomes:
                link = txmap.entry(lro.receipt.receipt_id)
                if link is not None:
                    for child in lro.execution_outcome.outcome.receipt_ids:
                        txmap.set(child, link[1], born=link[0])

        unresolved = 0
        for shard in shards:
            structlog.contextvars.bind_contextvars(shard_id=shard.shard_id)
            for index, reo in enumerate(shard.receipt_execution_outcomes):
                eo = reo.execution_outcome
                rid = reo.receipt.receipt_id
                link = txmap.entry(rid)
                if link is not None:
                    for child in eo.outcome.receipt_ids:  # expires with the transaction's own link
                        txmap.set(child, link[1], born=link[0])
                role = self.roles.get(reo.receipt.receiver_id)
                if role is None:
                    continue
                unresolved += link is None
                self._tracked_receipt(reo, shard.shard_id, shard.shard_id * 100_000 + index, link, height,
                                      header.hash, ts, ts_ns, role, out)
        structlog.contextvars.unbind_contextvars("shard_id")
        out.finish_block()
        if unresolved:
            metrics.TX_UNRESOLVED.inc(unresolved)

        rows.add("blocks", [height, header.hash, header.prev_hash, ts_ns, block.author,
                            header.latest_protocol_version, shard_ids])
        return DecodedBlock(height, header.hash, header.prev_hash, ts_ns, rows, raw.size, skipped)

    def redecode(self, context: str | bytes) -> Rows:
        """The rows of one receipt a dead letter kept (``ReceiptContext``), decoded again now: with
        the current decoder and the contract's role as configured (else as it was then). Memory
        across blocks (workshop verify -> solve latency) is not part of the context."""
        ctx = lake.decode_receipt_context(context)
        rows = Rows()
        out = Emitter(rows, ctx.height)
        self.workshop_state.begin_block(ctx.height)
        role = self.roles.get(ctx.outcome.receipt.receiver_id) or Role(ctx.role)
        link = (ctx.tx_height, (ctx.tx_hash, ctx.tx_timestamp or None)) if ctx.tx_hash else None
        self._tracked_receipt(ctx.outcome, ctx.shard_id, ctx.index_in_block, link, ctx.height,
                              ctx.block_hash, ts_string(ctx.timestamp_ns), ctx.timestamp_ns, role, out)
        return rows

    def _tracked_receipt(self, reo: lake.ExecutionOutcomeWithReceipt, shard_id: int, index: int,
                         link: tuple[int | None, tuple[str, str]] | None, height: int, block_hash: str, ts: str,
                         ts_ns: int, role: Role, out: Emitter) -> None:
        rv = reo.receipt
        outcome = reo.execution_outcome.outcome
        out.begin_receipt(rv.receipt_id, lambda: lake.encode(lake.ReceiptContext(
            height, block_hash, ts_ns, shard_id, index, link[1][0] if link else "", role.value, reo,
            tx_height=link[0] if link else None, tx_timestamp=link[1][1] if link else "")).decode())
        try:
            body = lake.decode_receipt_body(rv.receipt)
            status = parse_status(lake.decode_any(outcome.status))
            logs = lake.decode_logs(outcome.logs)
            action = body.Action
            kinds, calls, deposit = parse_actions(action.actions) if action is not None else ([], [], 0)
        except (ValueError, msgspec.DecodeError, msgspec.ValidationError) as exc:
            payload = orjson.dumps({"receipt": orjson.Fragment(bytes(rv.receipt)),
                                    "status": orjson.Fragment(bytes(outcome.status)),
                                    "logs": orjson.Fragment(bytes(outcome.logs))})
            out.dead_letter("receipt", f"receipt undecodable: {exc}", payload, shard_id=shard_id,
                            receipt_id=rv.receipt_id, contract_id=rv.receiver_id)
            return
        if action is None:
            return  # data receipts carry no execution of their own
        tx_hash, tx_height, tx_ts = (link[1][0], link[0], link[1][1]) if link is not None else ("", None, None)
        r = TrackedReceipt(
            block_height=height, block_timestamp=ts, block_timestamp_ns=ts_ns, block_hash=block_hash,
            shard_id=shard_id, receipt_id=rv.receipt_id, receiver_id=rv.receiver_id,
            predecessor_id=rv.predecessor_id, signer_id=action.signer_id, tx_hash=tx_hash, status=status,
            gas_burnt=outcome.gas_burnt, tokens_burnt=outcome.tokens_burnt, calls=calls, action_kinds=kinds,
            deposit=deposit, logs=logs, index_in_block=index, tx_height=tx_height, tx_timestamp=tx_ts,
        )
        for log_index, line in enumerate(logs):
            if not is_event(line):
                continue
            try:
                event = parse_event(line)
            except EventError as exc:
                out.dead_letter("log", str(exc), line, shard_id=shard_id, receipt_id=rv.receipt_id,
                                contract_id=rv.receiver_id, log_index=log_index)
                continue
            r.events.append((log_index, event))
            out.rows.add("events", [height, ts, shard_id, r.receipt_id, tx_hash, r.receiver_id, r.predecessor_id,
                                    event.standard, event.version, event.event, log_index, event.data_json(),
                                    status.label])
        first = calls[0] if calls else None
        out.rows.add("receipts", [
            height, ts, block_hash, shard_id, index, r.receipt_id, r.receiver_id, r.predecessor_id, r.signer_id,
            tx_hash, r.method_name, kinds, args_text(first), str(deposit), sum(c.gas for c in calls),
            r.gas_burnt, r.tokens_burnt, status.label, status.failure, len(logs),
        ])
        try:
            self._handlers[role](r, out)
        except Exception as exc:  # a decoder bug must not stop indexing; the receipt row is kept
            log.exception("role decoder failed", role=role.value, receipt_id=r.receipt_id)
            out.dead_letter("receipt", f"{role.value} decoder failed: {exc!r}", args_text(first) or r.method_name,
                            shard_id=shard_id, receipt_id=r.receipt_id, contract_id=r.receiver_id)
