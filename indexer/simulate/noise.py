"""Unrelated mainnet-like traffic that gives blocks their real size (0.1-3 MB across shards).

Templates are built once from the same shapes as tracked traffic (FT/NFT/MT events of other
contracts, game claims, oracle reports, account creation, Aurora calls, failures, gas refunds,
transactions, state changes), serialised once, and split at ``@@KEY@@`` placeholders. Producing
an instance is a ``bytes.join`` of the literal parts with fresh ids (``FastIds``) and accounts.
No template ever contains a tracked account except the *mention* template, which the engine puts
only into visible shards that have no tracked receipt (a plain ``ft_transfer`` to a tracked account).
"""

from __future__ import annotations

import base64
import math
import random
import re
from dataclasses import dataclass
from typing import Any

import orjson

from indexer.simulate import shapes
from indexer.simulate.engine import BlockCtx, ShardBuf
from indexer.simulate.ids import Ids
from indexer.simulate.options import TGAS, SimConfig

_PH = re.compile(rb"@@([A-Z0-9]+)@@")
_TOKENS = ("token.sweat", "usdt.tether-token.near", "wrap.near", "game.hot.tg", "meta-pool.near",
           "a0b86991c6218b36c1d19d4a2e9eb0ce3606eb48.factory.bridge.near", "ftv2.nekotoken.near")
_NFTS = ("x.paras.near", "nft.hot.tg", "tinkerunion_nft.enleap.near", "mintbase1.near")


class _Template:
    """Serialised JSON with placeholder slots; ``parts`` alternates literals and slot indexes."""

    __slots__ = ("parts",)

    def __init__(self, obj: Any, slots: dict[str, int]):
        raw = orjson.dumps(obj)
        pieces = _PH.split(raw)
        parts: list[bytes | int] = []
        for i, piece in enumerate(pieces):
            if i % 2:
                parts.append(slots.setdefault(piece.decode(), len(slots)))
            elif piece:
                parts.append(piece)
        self.parts = parts

    def render(self, values: list[bytes]) -> bytes:
        return b"".join([p if p.__class__ is bytes else values[p] for p in self.parts])  # type: ignore[index]


@dataclass(slots=True)
class _Kind:
    name: str
    slots: list[str]  # placeholder keys, in slot-index order
    outcome: _Template | None
    receipt: _Template | None
    tx: _Template | None
    state_changes: list[_Template]
    gas: int
    size: int = 0


class NoiseFactory:
    def __init__(self, cfg: SimConfig, ids: Ids, tracked: list[str]):
        self.cfg = cfg
        self.ids = ids
        self.rng = random.Random(f"{cfg.seed}:noise")
        rng = self.rng
        self.accounts = self._accounts(ids, rng, tracked)
        self._acct_b = [a.encode() for a in self.accounts]
        self.kinds: list[_Kind] = []
        self.weights: list[float] = []
        for variant in range(4):
            for builder, weight in ((self._ft_transfer, 26), (self._mt_transfer, 6), (self._nft_mint, 6),
                                    (self._game_claim, 14),
                                    (self._lockup_claim, 8), (self._refund, 16), (self._create_account, 5),
                                    (self._oracle, 3), (self._aurora, 4), (self._failure, 2), (self._tx, 12)):
                kind = builder(rng, variant)
                self.kinds.append(kind)
                self.weights.append(weight)
        self.mention = self._ft_transfer(rng, 0, mention=True)
        self._cum = []
        total = 0.0
        for w in self.weights:
            total += w
            self._cum.append(total)
        for kind in self.kinds + [self.mention]:
            kind.size = sum(len(t) for t in self._render(kind, self._sample_values(kind, "x" * 44, None)))
        self.mean_size = sum(k.size * w for k, w in zip(self.kinds, self.weights)) / total

    # --- accounts ---

    @staticmethod
    def _accounts(ids: Ids, rng: random.Random, tracked: list[str]) -> list[str]:
        out = []
        for i in range(5000):
            r = rng.random()
            if r < 0.4:
                out.append(ids.implicit_account("noise", i))
            elif r < 0.65:
                out.append(f"{ids.hash('tg', i)[:10].lower()}.tg")
            elif r < 0.85:
                out.append(f"{ids.hash('kc', i)[:12].lower()}.users.kaiching")
            else:
                out.append(f"user{i}-{ids.hash('n', i)[:5].lower()}.near")
        # an unrelated account must never contain a tracked name: shard skipping relies on it
        return [a for a in out if not any(t in a for t in tracked)]

    # --- template builders (placeholders: R0 R1 T0 = fresh ids, BH = block hash, U0 U1 = accounts,
    #     AMT = amount digits, TRK = the tracked account a mention names) ---

    def _wrap(self, name: str, receiver: str, predecessor: str, actions: list[Any], logs: list[str], status: Any,
              gas: int, rng: random.Random, *, profile_entries: int = 24, receipt_ids: int = 1,
              state_changes: int = 2, gas_price: str = shapes.GAS_PRICE_S, signer: str | None = None) -> _Kind:
        slots: dict[str, int] = {}
        key = self.ids.public_key(f"noise-{name}-{rng.random()}")
        receipt = shapes.action_receipt("@@R0@@", predecessor, receiver, signer or predecessor, key, actions,
                                        gas_price=gas_price)
        eo = shapes.execution_outcome("@@BH@@", "@@R0@@", receiver, gas, logs,
                                      ["@@R1@@"] * receipt_ids, status, ["@@R1@@", "@@T0@@"][: 1 + rng.randrange(2)],
                                      profile=profile_entries > 0)
        if profile_entries:
            eo["outcome"]["metadata"]["gas_profile"] = shapes.gas_profile(gas, profile_entries)
        outcome = _Template(shapes.outcome_with_receipt(eo, receipt), slots)
        receipt_t = _Template(receipt, slots)
        changes = []
        cause = {"receipt_hash": "@@R0@@", "type": "receipt_processing"}
        for i in range(state_changes):
            if i % 2 == 0:
                changes.append(_Template(shapes.account_update(receiver if i == 0 else "@@U0@@",
                                                               str(rng.getrandbits(90)), rng.randrange(182, 900000),
                                                               cause), slots))
            else:
                value = base64.b64encode(rng.randbytes(rng.randrange(40, 420))).decode()
                key = base64.b64encode(rng.randbytes(rng.randrange(8, 40))).decode()
                changes.append(_Template(shapes.data_update(receiver, key, value, cause), slots))
        return _Kind(name, sorted(slots, key=slots.__getitem__), outcome, receipt_t, None, changes, gas)

    def _ft_transfer(self, rng: random.Random, variant: int, mention: bool = False) -> _Kind:
        token = "usdt.tether-token.near" if mention else _TOKENS[(variant * 3 + rng.randrange(7)) % len(_TOKENS)]
        receiver = "@@TRK@@" if mention else "@@U1@@"
        args = orjson.dumps({"receiver_id": f"{rng.randrange(10**12):x}.tg", "amount": str(rng.getrandbits(64))})
        log = 'EVENT_JSON:' + orjson.dumps({"standard": "nep141", "version": "1.0.0", "event": "ft_transfer", "data": [
            {"old_owner_id": "@@U0@@", "new_owner_id": receiver, "amount": "@@AMT@@"}]}).decode()
        gas = int(rng.uniform(2.4, 4.2) * TGAS)
        return self._wrap("mention" if mention else "ft", token, "@@U0@@",
                          [shapes.function_call("ft_transfer", args, 30 * TGAS, "1")], [log], shapes.success_value(),
                          gas, rng)

    def _mt_transfer(self, rng: random.Random, variant: int) -> _Kind:
        contract, token_id = (("v2_1.omni.hot.tg", "56_11111111111111111111"), ("mt.hot.tg", "1"),
                              ("v2_1.omni.hot.tg", "137_qiStmoQJDQPTebaPjgx5VBxZv6L"), ("mt.hot.tg", "3"))[variant]
        args = orjson.dumps({"receiver_id": f"{rng.randrange(10**12):x}.tg", "token_id": token_id,
                             "amount": str(rng.getrandbits(60)), "approval": None, "memo": None})
        log = 'EVENT_JSON:' + orjson.dumps({"standard": "nep245", "version": "1.0.0", "event": "mt_transfer", "data": [
            {"old_owner_id": "@@U0@@", "new_owner_id": "@@U1@@", "token_ids": [token_id],
             "amounts": ["@@AMT@@"]}]}).decode()
        return self._wrap("mt", contract, "@@U0@@", [shapes.function_call("mt_transfer", args, 30 * TGAS, "1")], [log],
                          shapes.success_value(), int(rng.uniform(3.0, 4.6) * TGAS), rng)

    def _nft_mint(self, rng: random.Random, variant: int) -> _Kind:
        contract = _NFTS[variant % len(_NFTS)]
        metadata = {"title": f"Item #{rng.randrange(10**4)}", "media": "bafy" + rng.randbytes(20).hex()}
        args = orjson.dumps({"token_id": str(rng.randrange(10**6)), "receiver_id": "someone.near",
                             "token_metadata": metadata})
        log = 'EVENT_JSON:' + orjson.dumps({"standard": "nep171", "version": "1.2.0", "event": "nft_mint", "data": [
            {"owner_id": "@@U0@@", "token_ids": ["@@AMT@@"]}]}).decode()
        mint = shapes.function_call("nft_mint", args, 100 * TGAS, "10000000000000000000000")
        return self._wrap("nft", contract, "@@U0@@", [mint], [log], shapes.success_value(b'{"token_id":"1"}'),
                          int(rng.uniform(8, 14) * TGAS), rng, state_changes=3)

    def _game_claim(self, rng: random.Random, variant: int) -> _Kind:
        args = orjson.dumps({"charge_gas_fee": False, "signature": rng.randbytes(32).hex(),
                             "mining_time": str(rng.getrandbits(48)), "max_ts": str(rng.getrandbits(60))})
        return self._wrap("game", "game.hot.tg", "@@U0@@", [shapes.function_call("l2_claim", args, 30 * TGAS)], [],
                          shapes.success_value(), int(rng.uniform(2.0, 3.5) * TGAS), rng, state_changes=2)

    def _lockup_claim(self, rng: random.Random, variant: int) -> _Kind:
        logs = []
        for _ in range(2 + variant):
            lock = f"T-{rng.randbytes(3).hex()[:5]}-{rng.randbytes(3).hex()[:5]}-2025-11-16"
            logs.append(f"Claiming @@AMT@@ from lockup #{lock}")
            logs.append(f"Total claim @@AMT@@: sws:{rng.randbytes(32).hex()},{lock}")
        args = orjson.dumps({"account_ids": [f"{rng.randbytes(6).hex()}.users.kaiching" for _ in range(3)]})
        return self._wrap("lockup", "earn.kaiching", "@@U0@@", [shapes.function_call("claim", args, 100 * TGAS)], logs,
                          shapes.success_value(b'"35815"'), int(rng.uniform(5, 12) * TGAS), rng, state_changes=3)

    def _refund(self, rng: random.Random, variant: int) -> _Kind:
        return self._wrap("refund", "@@U0@@", "system", [shapes.transfer(str(rng.getrandbits(70)))], [],
                          shapes.success_value(), shapes.REFUND_GAS, rng, profile_entries=0, receipt_ids=0,
                          state_changes=1, gas_price="0", signer="@@U1@@")

    def _create_account(self, rng: random.Random, variant: int) -> _Kind:
        actions = ["CreateAccount",
                   {"AddKey": {"access_key": {"nonce": 0, "permission": "FullAccess"},
                               "public_key": self.ids.public_key(f"new-{variant}")}},
                   shapes.transfer("10000000000000000000000")]
        return self._wrap("create", "@@U0@@", "@@U1@@", actions, [], shapes.success_value(), 4_174_947_687_500, rng,
                          profile_entries=0, state_changes=2)

    def _oracle(self, rng: random.Random, variant: int) -> _Kind:
        prices = [{"asset_id": f"{rng.randbytes(20).hex()}.factory.bridge.near",
                   "price": {"multiplier": str(rng.randrange(10**7)), "decimals": rng.randrange(8, 28)}}
                  for _ in range(14)]
        return self._wrap("oracle", "priceoracle.near", "@@U0@@",
                          [shapes.function_call("report_prices", orjson.dumps({"prices": prices}), 50 * TGAS)], [],
                          shapes.success_value(), int(rng.uniform(4, 6) * TGAS), rng, state_changes=3)

    def _aurora(self, rng: random.Random, variant: int) -> _Kind:
        return self._wrap("aurora", "aurora", "@@U0@@",
                          [shapes.function_call("submit", rng.randbytes(rng.randrange(300, 1500)), 300 * TGAS)],
                          [f"signer_address Address(0x{rng.randbytes(20).hex()})"],
                          shapes.success_value(rng.randbytes(60)), int(rng.uniform(3, 40) * TGAS), rng,
                          profile_entries=30, state_changes=4)

    def _failure(self, rng: random.Random, variant: int) -> _Kind:
        reason = ("Distribution amount exceeds total mintable", "Not enough balance", "Unauthorized",
                  "Token already claimed")[variant]
        return self._wrap("failure", "corn.v1.corn-staging.near", "@@U0@@",
                          [shapes.function_call("distribute", b"{}", 50 * TGAS)],
                          [f"Epoch@{rng.randrange(2000)} bonder supply growth is 0"],
                          shapes.panic(f"Smart contract panicked: {reason}"), int(rng.uniform(2.5, 3.5) * TGAS), rng)

    def _tx(self, rng: random.Random, variant: int) -> _Kind:
        slots: dict[str, int] = {}
        receiver = ("game.hot.tg", "astro-stakers.poolv1.near", "token.sweat", "v2.ref-finance.near")[variant]
        args = orjson.dumps({"amount": str(rng.getrandbits(50)), "account_id": f"{rng.randbytes(5).hex()}.tg"})
        actions = [shapes.function_call(("l2_claim", "deposit_and_stake", "ft_transfer", "swap")[variant], args,
                                        30 * TGAS, "0")]
        tx = shapes.transaction("@@T0@@", "@@U0@@", self.ids.public_key(f"tx-{variant}"), rng.getrandbits(47),
                                receiver, actions, self.ids.signature("noise-tx", variant))
        gas = shapes.tx_gas(len(args))
        out = shapes.tx_outcome("@@BH@@", "@@T0@@", "@@U0@@", gas, "@@R0@@", ["@@R1@@"])
        tx_t = _Template(shapes.tx_with_outcome(tx, out), slots)
        change = _Template(shapes.account_update("@@U0@@", str(rng.getrandbits(80)), 182,
                                                 {"tx_hash": "@@T0@@", "type": "transaction_processing"}), slots)
        return _Kind("tx", sorted(slots, key=slots.__getitem__), None, None, tx_t, [change], gas)

    # --- producing ---

    def _sample_values(self, kind: _Kind, block_hash: str, ctx: BlockCtx | None, tracked: str = "") -> list[bytes]:
        rng = self.rng
        fast = ctx.fast if ctx is not None else None
        out = []
        for key in kind.slots:
            if key == "BH":
                out.append(block_hash.encode())
            elif key in ("R0", "R1", "T0"):
                out.append(fast.next().encode() if fast is not None else b"x" * 44)
            elif key in ("U0", "U1"):
                out.append(self._acct_b[int(rng.random() * len(self._acct_b))])
            elif key == "AMT":
                out.append(str(rng.getrandbits(40)).encode())
            elif key == "TRK":
                out.append(tracked.encode() or b"x")
            else:
                raise KeyError(key)
        return out

    @staticmethod
    def _render(kind: _Kind, values: list[bytes]) -> list[bytes]:
        parts = []
        for t in (kind.outcome, kind.receipt, kind.tx):
            if t is not None:
                parts.append(t.render(values))
        parts.extend(t.render(values) for t in kind.state_changes)
        return parts

    def _emit(self, buf: ShardBuf, kind: _Kind, values: list[bytes], with_receipt: bool) -> int:
        size = 0
        if kind.outcome is not None:
            b = kind.outcome.render(values)
            buf.outcomes.append(b)
            size += len(b)
            if with_receipt and kind.receipt is not None:
                b = kind.receipt.render(values)
                buf.receipts.append(b)
                size += len(b)
        if kind.tx is not None:
            b = kind.tx.render(values)
            buf.txs.append(b)
            size += len(b)
        for t in kind.state_changes:
            b = t.render(values)
            buf.state_changes.append(b)
            size += len(b)
        buf.gas_used += kind.gas
        buf.tokens_burnt += kind.gas * shapes.GAS_PRICE
        return size

    def add_mention(self, ctx: BlockCtx, buf: ShardBuf, tracked: str) -> None:
        self._emit(buf, self.mention, self._sample_values(self.mention, ctx.hash, ctx, tracked), True)
        buf.mentions = True

    def fill(self, ctx: BlockCtx, shard_ids: list[int]) -> None:
        """Noise for every available shard of the block: about ``--noise-bytes-per-block`` on average,
        log-normal from block to block and uneven across shards, as on mainnet."""
        budget = self.cfg.noise_bytes_per_block
        if budget <= 0 or not shard_ids:
            return
        rng = self.rng
        sigma = 0.75  # a long right tail: most blocks are small, a few are ten times the mean
        total = budget * min(12.0, max(0.2, math.exp(sigma * rng.gauss(0, 1) - sigma * sigma / 2)))
        shares = [0.05 + rng.random() ** 2 for _ in shard_ids]
        norm = sum(shares)
        kinds, cum = self.kinds, self._cum
        for sid, share in zip(shard_ids, shares):
            target = total * share / norm
            buf = ctx.shards[sid]
            made = 0
            while made < target:
                n = max(1, int((target - made) / self.mean_size))
                for kind in rng.choices(kinds, cum_weights=cum, k=n):
                    made += self._emit(buf, kind, self._sample_values(kind, ctx.hash, ctx), rng.random() < 0.6)
