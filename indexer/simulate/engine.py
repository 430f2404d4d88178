"""The block loop: receipts scheduled across blocks, executed in their shard, recorded in the truth.

A flow (a settlement, a workshop intent) starts with a transaction in block h; every receipt it
creates is *scheduled* for a later block and executed there by a handler that returns the
outcome and schedules the next receipts. A receipt waits (is carried to the next block) when its
height is skipped, when its receiver's shard misses the chunk, or when a verifier pause holds
verifier receipts. Truth is recorded at the moment a tracked receipt executes.

Shards: tracked contracts live in fixed home shards. Every other account touched by tracked
flows (relayers, users, token contracts) is placed, per block, in one of the block's *visible*
shards; visible shards whose fragments name no tracked account get one unrelated receipt that
does (a plain token transfer to it). So exactly ``round(--tracked-shard-fraction * shards)`` shard files per block (at least
the home shards) mention a tracked account, and the noise in the other files never does.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from indexer.simulate import shapes
from indexer.simulate.chain import BlockPlan
from indexer.simulate.ids import FastIds, Ids
from indexer.simulate.options import SimConfig
from indexer.simulate.truth import Truth

if TYPE_CHECKING:
    from collections.abc import Iterable


@dataclass(slots=True)
class Result:
    """What a handler decides a receipt's execution outcome is."""

    status: dict[str, Any]
    gas_burnt: int
    logs: list[str] = field(default_factory=list)
    events: list[tuple[str, str]] = field(default_factory=list)  # (standard, event) per valid EVENT_JSON log
    receipt_ids: list[str] = field(default_factory=list)
    profile: bool = True
    tokens_burnt: int | None = None


Handler = Callable[["BlockCtx", "Pending"], Result]


@dataclass(slots=True)
class Pending:
    receipt: dict[str, Any]  # the Lake receipt object, as it will be written
    handler: Handler
    state: Any = None
    extra_receipts: list[dict[str, Any]] = field(default_factory=list)  # e.g. the data receipt feeding a callback

    @property
    def receipt_id(self) -> str:
        return self.receipt["receipt_id"]

    @property
    def receiver_id(self) -> str:
        return self.receipt["receiver_id"]

    @property
    def method_name(self) -> str:
        for action in self.receipt["receipt"]["Action"]["actions"]:
            if isinstance(action, dict) and "FunctionCall" in action:
                return action["FunctionCall"]["method_name"]
        return ""


class ShardBuf:
    """One shard file of the current block, as lists of already-serialised JSON fragments."""

    __slots__ = ("shard_id", "txs", "receipts", "outcomes", "state_changes", "gas_used", "tokens_burnt",
                 "mentions", "flow_txs", "flow_receipts", "flow_outcomes", "flow_state_changes")

    def __init__(self, shard_id: int):
        self.shard_id = shard_id
        self.txs: list[bytes] = []
        self.receipts: list[bytes] = []
        self.outcomes: list[bytes] = []
        self.state_changes: list[bytes] = []
        self.flow_txs: list[bytes] = []
        self.flow_receipts: list[bytes] = []
        self.flow_outcomes: list[bytes] = []
        self.flow_state_changes: list[bytes] = []
        self.gas_used = 0
        self.tokens_burnt = 0
        self.mentions = False  # whether any fragment names a tracked account


class BlockCtx:
    """The block being generated; handlers and flow starters work through it."""

    def __init__(self, engine: "Engine", plan: BlockPlan, visible: list[int], shards: dict[int, ShardBuf]):
        self.engine = engine
        self.plan = plan
        self.offset = plan.offset
        self.height = plan.height
        self.ts_ns = plan.timestamp_ns
        self.hash = plan.hash
        self.visible = visible
        self.shards = shards
        self.truth = engine.truth
        self.fast = FastIds(engine.ids.wide_hash("fast", plan.height))

    # --- ids ---
    def new_id(self, kind: str = "r") -> str:
        return self.engine.new_id(kind)

    def proof(self) -> list[str]:
        return [self.fast.next() for _ in range(1 + self.engine.layout.randrange(4))]

    # --- placement ---
    def shard_of(self, account: str) -> int:
        home = self.engine.homes.get(account)
        if home is not None:
            return home
        return self.visible[self.engine.layout.randrange(len(self.visible))]

    # --- scheduling ---
    def schedule(self, pending: Pending, delay: int = 1) -> None:
        self.engine.schedule(pending, self.offset + max(1, delay))

    # --- emitting ---
    def add_tx(self, tx: dict[str, Any], first: Pending, delay: int = 1) -> None:
        """A signed transaction included in this block, converted into ``first`` (scheduled)."""
        sid = self.shard_of(tx["signer_id"])
        if sid in self.plan.missing_shards:  # a tracked signer whose shard misses this chunk
            sid = self.visible[self.engine.layout.randrange(len(self.visible))]
        buf = self.shards[sid]
        gas = shapes.tx_gas(len(orjson.dumps(tx["actions"])))
        outcome = shapes.tx_outcome(self.hash, tx["hash"], tx["signer_id"], gas, first.receipt_id, self.proof())
        data = orjson.dumps(shapes.tx_with_outcome(tx, outcome))
        buf.flow_txs.append(data)
        self.engine.mark_mentions(buf, data)
        buf.gas_used += gas
        buf.tokens_burnt += gas * shapes.GAS_PRICE
        self.schedule(first, delay)


class Engine:
    def __init__(self, cfg: SimConfig, ids: Ids, truth: Truth, homes: dict[str, int],
                 verifier_accounts: frozenset[str]):
        self.cfg = cfg
        self.ids = ids
        self.truth = truth
        self.homes = homes
        self.tracked = frozenset(homes)
        self.verifier_accounts = verifier_accounts
        self.layout = random.Random(f"{cfg.seed}:layout")
        self.pending: dict[int, list[Pending]] = {}
        self._counter = 0
        self._needles = [a.encode() for a in homes]
        self._pause_offsets = frozenset(o for w in cfg.verifier_pauses for o in range(w.start, w.end + 1))

    def mark_mentions(self, buf: ShardBuf, data: bytes) -> None:
        """Whether the shard file will name a tracked account (a decoder may skip files that do not)."""
        if not buf.mentions and any(n in data for n in self._needles):
            buf.mentions = True

    def new_id(self, kind: str) -> str:
        self._counter += 1
        return self.ids.hash(kind, self._counter)

    def schedule(self, pending: Pending, offset: int) -> None:
        self.pending.setdefault(offset, []).append(pending)

    def paused(self, offset: int) -> bool:
        return offset in self._pause_offsets

    def gas_factor(self, offset: int) -> float:
        factor = 1.0
        for w in self.cfg.gas_spikes:
            if offset in w:
                factor *= w.factor
        return factor

    def visible_shards(self, plan: BlockPlan) -> list[int]:
        cfg = self.cfg
        available = [s for s in cfg.shard_ids if s not in plan.missing_shards]
        homes = {s for s in self.homes.values() if s not in plan.missing_shards}
        target = max(len(homes), 1, round(cfg.tracked_shard_fraction * len(cfg.shard_ids)))
        target = min(target, len(available))
        extras = [s for s in available if s not in homes]
        chosen = homes | set(self.layout.sample(extras, max(0, target - len(homes))))
        return [s for s in cfg.shard_ids if s in chosen]

    def carry(self, offset: int, items: "Iterable[Pending]") -> None:
        """Move receipts that cannot run in block ``offset`` to the next height, ahead of newer ones."""
        items = list(items)
        if items:
            self.pending[offset + 1] = items + self.pending.get(offset + 1, [])

    def blocked(self, ctx: BlockCtx, p: Pending) -> bool:
        receiver = p.receiver_id
        home = self.homes.get(receiver)
        if home is not None and home in ctx.plan.missing_shards:
            return True
        return receiver in self.verifier_accounts and self.paused(ctx.offset)

    def run_pending(self, ctx: BlockCtx) -> None:
        queue = self.pending.pop(ctx.offset, [])
        deferred = []
        for p in queue:
            if self.blocked(ctx, p):
                deferred.append(p)
            else:
                self.execute(ctx, p)
        self.carry(ctx.offset, deferred)

    def execute(self, ctx: BlockCtx, p: Pending) -> None:
        res = p.handler(ctx, p)
        r = p.receipt
        receiver = r["receiver_id"]
        buf = ctx.shards[ctx.shard_of(receiver)]
        eo = shapes.execution_outcome(ctx.hash, r["receipt_id"], receiver, res.gas_burnt, res.logs,
                                      res.receipt_ids, res.status, ctx.proof(), profile=res.profile,
                                      tokens_burnt=res.tokens_burnt)
        data = orjson.dumps(shapes.outcome_with_receipt(eo, r))  # holds the receipt and the logs
        buf.flow_outcomes.append(data)
        self.mark_mentions(buf, data)
        buf.flow_receipts.append(orjson.dumps(r))
        for extra in p.extra_receipts:
            data = orjson.dumps(extra)
            buf.flow_receipts.append(data)
            self.mark_mentions(buf, data)
        cause = {"receipt_hash": r["receipt_id"], "type": "receipt_processing"}
        buf.flow_state_changes.append(orjson.dumps(shapes.account_update(
            receiver, str(10**24 + res.gas_burnt), 4096, cause)))
        buf.gas_used += res.gas_burnt
        buf.tokens_burnt += res.gas_burnt * shapes.GAS_PRICE if res.tokens_burnt is None else res.tokens_burnt
        if receiver in self.tracked:
            status = res.status
            success = "Failure" not in status
            failure = "" if success else _failure_text(status)
            self.truth.receipt(receiver, ctx.height, p.method_name, success, failure, res.gas_burnt, res.events)


def _failure_text(status: dict[str, Any]) -> str:
    try:
        return status["Failure"]["ActionError"]["kind"]["FunctionCallError"]["ExecutionError"]
    except (KeyError, TypeError):
        return orjson.dumps(status["Failure"], option=orjson.OPT_SORT_KEYS).decode()


def refund(ctx: BlockCtx, to: str, signer: str, amount: int) -> Pending:
    """A system gas refund to ``to`` (the signer of the original transaction)."""
    receipt = shapes.action_receipt(ctx.new_id("refund"), "system", to, signer, ctx.engine.ids.public_key(signer),
                                    [shapes.transfer(str(amount))], gas_price="0")
    return Pending(receipt, _refund_handler)


def _refund_handler(ctx: BlockCtx, p: Pending) -> Result:
    return Result(shapes.success_value(), shapes.REFUND_GAS, profile=False, tokens_burnt=0)
