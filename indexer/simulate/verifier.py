"""intents.near (NEAR Intents, dip4) traffic: settlements, withdrawals and intents run on deposit.

Flows, each started by a transaction in block h (receipt chains follow the mainnet fixture
``execute_intents_tx_HoWy...``):

* settlement: relayer tx ``execute_intents({"signed": [...]})`` -> h+1 receipt on intents.near
  (dip4 ``token_diff`` per payload, withdraw events, ``intents_executed``, its own ``nep245``
  ``mt_transfer``/``mt_burn``) -> withdrawals: h+2 ``ft_transfer``/``mt_batch_transfer`` on the token
  contract -> h+3 ``ft_resolve_withdraw``/``mt_resolve_withdraw`` on intents.near -> h+4 gas refund
  to the relayer (without a withdrawal the refund comes at h+2). One settlement = a user payload
  whose token_diff usually has a ``referral`` + the solver's opposite token_diff; ~8% of batches
  carry two settlements.
* withdrawal alone: one user payload with only ``ft_withdraw``/``mt_withdraw`` (no solver).
* intents on deposit: user tx ``ft_transfer_call``/``mt_transfer_call`` on a token -> h+1 the
  token logs the transfer -> h+2 ``ft_on_transfer``/``mt_on_transfer`` on intents.near whose ``msg``
  is ``{"receiver_id": .., "execute_intents": [...]}`` -> h+3 ``*_resolve_transfer`` on the token.

A failed batch panics as a whole: status ``Failure`` with the ExecutionError text, the logs
written before the panic kept (token_diff events of the payloads before the failing one, or of
all payloads for "unmatched deltas"), no ``intents_executed``. Gas that runs into the attached gas
fails the receipt with "Exceeded the prepaid gas." and ``gas_burnt`` = attached gas.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field, replace
from typing import Any

import orjson

from indexer.simulate import shapes, wallets
from indexer.simulate.actors import (
    DIP4_FAILURES, EXCEEDED_GAS, FEE_COLLECTOR, REFERRALS, TOKENS, People, SolverProfile, Token, pick_index,
    pick_weighted, poisson,
)
from indexer.simulate.engine import BlockCtx, Engine, Pending, Result, refund
from indexer.simulate.ids import Ids
from indexer.simulate.options import PGAS, TGAS, SimConfig, iso_ms

DIP4_VERSION = "0.3.0"
EXECUTED_VERSION = "0.3.1"  # the fixture's intents_executed carries a newer version than its token_diff
MALFORMED_LOG = 'EVENT_JSON:{"standard":"dip4","version":"0.3.0","event":"token_diff","data":[{"intent_hash":"'
MALFORMED_ARGS = b'{"signed":[{"standard":"nep413","payload":{"message":"{\\"signer_id\\":'
DESERIALIZE_PANIC = "Smart contract panicked: Failed to deserialize input from JSON."
NONCE_USED = DIP4_FAILURES[2][0]
RESOLVE_LOCKED = "Smart contract panicked: account '{}' is locked"  # a resolve callback refunding a locked owner
# failures a second send of the same payloads cannot cure
_FINAL_FAILURES = frozenset({DIP4_FAILURES[0][0], DIP4_FAILURES[1][0], NONCE_USED, DIP4_FAILURES[3][0]})
_RELAYER_GAS = {"solver-relay-v2.near": PGAS}  # others attach the classic 300 Tgas


def event_log(standard: str, version: str, event: str, data: list[dict[str, Any]]) -> str:
    return "EVENT_JSON:" + orjson.dumps({"standard": standard, "version": version, "event": event,
                                         "data": data}).decode()


def token_transfer_log(tok: Token, old: str, new: str, amount: int, memo: str = "") -> tuple[str, tuple[str, str]]:
    """The token contract's own transfer event: nep141 ``ft_transfer`` or nep245 ``mt_transfer``."""
    item: dict[str, Any] = {"old_owner_id": old, "new_owner_id": new}
    if tok.standard == "nep245":
        std, name = "nep245", "mt_transfer"
        item.update(token_ids=[tok.inner_id], amounts=[str(amount)])
    else:
        std, name = "nep141", "ft_transfer"
        item["amount"] = str(amount)
    if memo:
        item["memo"] = memo
    return event_log(std, "1.0.0", name, [item]), (std, name)


@dataclass(slots=True)
class Withdraw:
    token: Token
    owner: str
    receiver: str
    amount: int
    intent_hash: str = ""
    refused: bool = False  # the token contract refused the transfer: the resolve refunds it

    def intent(self) -> dict[str, Any]:
        if self.token.standard == "nep245":
            return {"intent": "mt_withdraw", "receiver_id": self.receiver, "amounts": [str(self.amount)],
                    "token_ids": [self.token.inner_id], "token": self.token.contract}
        return {"intent": "ft_withdraw", "token": self.token.contract, "receiver_id": self.receiver,
                "amount": str(self.amount)}

    def event(self) -> tuple[str, dict[str, Any]]:
        base = {"intent_hash": self.intent_hash, "account_id": self.owner, "token": self.token.contract,
                "receiver_id": self.receiver}
        if self.token.standard == "nep245":
            return "mt_withdraw", {**base, "token_ids": [self.token.inner_id], "amounts": [str(self.amount)]}
        return "ft_withdraw", {**base, "amount": str(self.amount)}


@dataclass(slots=True)
class Signed:
    """One signed payload (MultiPayload) and what it logs when executed."""

    signer: str
    intents: list[dict[str, Any]]
    deadline_ns: int
    diff: dict[str, str] | None = None
    fees: dict[str, str] | None = None
    referral: str = ""
    withdraw: Withdraw | None = None
    solver: bool = False  # solvers sign with a NEAR key (nep413)
    multi: dict[str, Any] = field(default_factory=dict)
    nonce: str = ""
    intent_hash: str = ""

    @property
    def has_token_diff(self) -> bool:
        return self.diff is not None

    def events(self) -> list[tuple[str, dict[str, Any]]]:
        out = []
        if self.diff is not None:
            item: dict[str, Any] = {"intent_hash": self.intent_hash, "account_id": self.signer, "diff": self.diff}
            if self.referral:
                item["referral"] = self.referral
            item["fees_collected"] = self.fees or {}
            out.append(("token_diff", item))
        if self.withdraw is not None:
            out.append(self.withdraw.event())
        return out


@dataclass(slots=True)
class Batch:
    kind: str  # execute | withdraw | ft | mt
    payloads: list[Signed]
    solvers: list[SolverProfile]
    signer: str  # transaction signer: relayer, or the depositing user
    attached_gas: int
    transfers: list[dict[str, Any]] = field(default_factory=list)
    fail_text: str = ""
    fail_at: int = 0  # logs of payloads[:fail_at] are written before the panic
    malformed_args: bool = False
    undeployed: dict[str, Any] | None = None  # a bip322 payload riding along: the whole batch cannot deserialize
    deposit: tuple[Token, int] | None = None
    succeeded: bool = False
    tx_hash: str = ""
    again: bool = False  # a replay or retry of an earlier batch's payloads


def attribute_solvers(payloads: list[Signed], listed: frozenset[str]) -> list[str]:
    """The decoder's rule: configured solvers that signed; else token_diff signers without a referral
    when another token_diff has one; else nobody.

    Written again here on purpose (not imported from indexer.decode.dip4): truth.json must not be
    computed by the code it is meant to check."""
    configured = [p.signer for p in payloads if p.signer in listed]
    if configured:
        return list(dict.fromkeys(configured))
    with_referral = [p for p in payloads if p.has_token_diff and p.referral]
    without = [p.signer for p in payloads if p.has_token_diff and not p.referral]
    if with_referral and without:
        return list(dict.fromkeys(without))
    return []


def solver_of(signer: str, solvers: list[str]) -> str:
    if signer in solvers:
        return signer
    return solvers[0] if len(solvers) == 1 else ""


class VerifierTraffic:
    def __init__(self, cfg: SimConfig, ids: Ids, engine: Engine, people: People, solvers: list[SolverProfile]):
        self.cfg = cfg
        self.ids = ids
        self.engine = engine
        self.truth = engine.truth
        self.people = people
        self.account = cfg.verifier_account
        self.solvers = solvers
        self.listed_profiles = [s for s in solvers if s.listed]
        self.listed = frozenset(s.account for s in self.listed_profiles)
        self.rng = random.Random(f"{cfg.seed}:verifier")
        self._nonces: dict[str, int] = {}
        # replays and retries draw from their own stream: other options' output stays byte-identical
        self.again_rng = random.Random(f"{cfg.seed}:again")
        self._again: list[tuple[int, Batch]] = []  # (block offset, batch to send then)

    # --- starting flows ---

    def start(self, ctx: BlockCtx) -> None:
        if self._again:
            self._send_again(ctx)
        rng = self.rng
        for _ in range(poisson(rng, self.cfg.intents_per_block)):
            r = rng.random()
            if r < 0.86:
                self._settlement_tx(ctx)
            elif r < 0.91:
                self._withdraw_tx(ctx)
            else:
                self._deposit_tx(ctx, "ft" if r < 0.955 else "mt")

    def _settlement_tx(self, ctx: BlockCtx) -> None:
        rng = self.rng
        relayer = self.people.relayer(rng)
        if rng.random() < 0.08 and len(self.listed_profiles) >= 2:
            # two settlements in one batch: both solvers known, so attribution is unambiguous
            first = pick_weighted(rng, self.listed_profiles)
            second = pick_weighted(rng, [s for s in self.listed_profiles if s is not first])
            solvers = [first, second]
        else:
            solvers = [pick_weighted(rng, self.solvers)]
        payloads: list[Signed] = []
        transfers: list[dict[str, Any]] = []
        for solver in solvers:
            user_p, solver_p, moves = self._settlement(ctx, self.people.user(rng), solver, None)
            pair = [solver_p, user_p] if rng.random() < 0.6 else [user_p, solver_p]
            payloads.extend(pair)
            transfers.extend(moves)
        batch = Batch("execute", payloads, solvers, relayer, _RELAYER_GAS.get(relayer, 300 * TGAS), transfers)
        self._decide(ctx, batch)
        batch.malformed_args = rng.random() < self.cfg.malformed_rate / 2
        self._sign_all(ctx, batch)
        if batch.malformed_args and self.ids.digest("bip322", batch.payloads[0].nonce)[0] < 128:
            # half of the unreadable batches are well-formed JSON whose extra payload is of a standard
            # intents.near never deployed
            batch.malformed_args = False
            batch.undeployed = wallets.bip322(self.ids, batch.payloads[0].signer, self.account,
                                              iso_ms(batch.payloads[0].deadline_ns), ctx.new_id("bip322"))
        self._send_execute(ctx, batch)

    def _withdraw_tx(self, ctx: BlockCtx) -> None:
        rng = self.rng
        user = self.people.user(rng)
        token = rng.choice(TOKENS)
        w = Withdraw(token, user, user, token.amount(rng.lognormvariate(math.log(80), 1.2)))
        p = Signed(user, [w.intent()], ctx.ts_ns + rng.randint(60, 600) * 10**9, withdraw=w)
        relayer = self.people.relayer(rng)
        batch = Batch("withdraw", [p], [], relayer, _RELAYER_GAS.get(relayer, 300 * TGAS))
        if rng.random() < self.cfg.failure_rate / 3:
            batch.fail_text, batch.fail_at = DIP4_FAILURES[4][0], 0  # insufficient balance
        self._sign_all(ctx, batch)
        self._send_execute(ctx, batch)

    def _deposit_tx(self, ctx: BlockCtx, kind: str) -> None:
        rng = self.rng
        user = self.people.user(rng)
        solver = pick_weighted(rng, self.solvers)
        token = rng.choice([t for t in TOKENS if t.standard == ("nep141" if kind == "ft" else "nep245")])
        user_p, solver_p, moves = self._settlement(ctx, user, solver, token)
        amount = -int(user_p.diff[token.id]) if user_p.diff else 0
        batch = Batch(kind, [user_p, solver_p], [solver], user, 300 * TGAS, moves, deposit=(token, amount))
        self._decide(ctx, batch)
        self._sign_all(ctx, batch)
        msg = orjson.dumps({"receiver_id": user, "execute_intents": [p.multi for p in batch.payloads]}).decode()
        if kind == "ft":
            method, args = "ft_transfer_call", {"receiver_id": self.account, "amount": str(amount), "msg": msg}
        else:
            method = "mt_transfer_call"
            args = {"receiver_id": self.account, "token_ids": [token.inner_id], "amounts": [str(amount)],
                    "approvals": None, "msg": msg}
        actions = [shapes.function_call(method, orjson.dumps(args), 300 * TGAS, "1")]
        first = Pending(self._receipt(ctx, user, token.contract, user, actions), self._on_deposit_transfer,
                        state=(batch, msg))
        tx = self._tx(ctx, user, token.contract, actions)
        batch.tx_hash = tx["hash"]
        ctx.add_tx(tx, first)

    def _maybe_again(self, ctx: BlockCtx, batch: Batch, fail_text: str) -> None:
        """After a batch ran: maybe schedule a replay (it executed) or a retry (it failed curably)."""
        if batch.again or batch.kind != "execute" or batch.malformed_args or batch.undeployed is not None:
            return
        cfg, rng = self.cfg, self.again_rng
        if not fail_text and cfg.replay_rate and rng.random() < cfg.replay_rate:
            self._again.append((ctx.offset + rng.randint(3, 30), replace(
                batch, signer=self.people.relayer(rng), fail_text=NONCE_USED, fail_at=0, succeeded=False,
                again=True)))
        elif fail_text and fail_text not in _FINAL_FAILURES and cfg.retry_rate and rng.random() < cfg.retry_rate:
            self._again.append((ctx.offset + rng.randint(2, 20), replace(
                batch, attached_gas=max(batch.attached_gas, PGAS), fail_text="", fail_at=0, succeeded=False,
                again=True)))

    def _send_again(self, ctx: BlockCtx) -> None:
        due = [b for at, b in self._again if at <= ctx.offset]
        self._again = [(at, b) for at, b in self._again if at > ctx.offset]
        for batch in due:
            self._send_execute(ctx, batch)

    # --- building payloads ---

    def _settlement(self, ctx: BlockCtx, user: str, solver: SolverProfile,
                    give: Token | None) -> tuple[Signed, Signed, list[dict[str, Any]]]:
        rng = self.rng
        a_tok = give or rng.choice(TOKENS)
        b_tok = rng.choice([t for t in TOKENS if t is not a_tok])
        usd = rng.lognormvariate(math.log(150), 1.3)
        a, b = a_tok.amount(usd), b_tok.amount(usd * 0.997)
        fee_a, fee_b = -(-a // 1_000_000), -(-b // 1_000_000)  # 1 pip, rounded up, as on mainnet
        user_diff = dict(sorted({a_tok.id: f"-{a}", b_tok.id: str(b - fee_b)}.items()))
        solver_diff = dict(sorted({a_tok.id: str(a - fee_a), b_tok.id: f"-{b}"}.items()))
        referral = rng.choice(REFERRALS) if rng.random() < 0.9 else ""
        user_td: dict[str, Any] = {"intent": "token_diff", "diff": user_diff}
        if referral:
            user_td["referral"] = referral
        user_p = Signed(user, [user_td], ctx.ts_ns + rng.randint(60, 600) * 10**9, diff=user_diff,
                        fees={a_tok.id: str(fee_a)}, referral=referral)
        if give is None and rng.random() < 0.3:
            w = Withdraw(b_tok, user, user, b - fee_b)
            user_p.withdraw = w
            user_p.intents.append(w.intent())
        solver_p = Signed(solver.account, [{"intent": "token_diff", "diff": solver_diff}],
                          ctx.ts_ns + rng.randint(20, 120) * 10**9, diff=solver_diff, fees={b_tok.id: str(fee_b)},
                          solver=True)
        # intents.near's own nep245 ledger moves, as its mt_transfer event lists them
        moves = [{"old_owner_id": old, "new_owner_id": new, "token_ids": [tok.id], "amounts": [str(amt)]}
                 for old, new, tok, amt in ((solver.account, user, b_tok, b - fee_b),
                                            (solver.account, FEE_COLLECTOR, b_tok, fee_b),
                                            (user, solver.account, a_tok, a - fee_a),
                                            (user, FEE_COLLECTOR, a_tok, fee_a))]
        return user_p, solver_p, moves

    def _decide(self, ctx: BlockCtx, batch: Batch) -> None:
        """Whether the batch will panic, why, and where; decided before signing because a
        'deadline has expired' payload carries a deadline in the past."""
        rng = self.rng
        at = ctx.offset + 1  # the receipt executes in the next block
        for solver in batch.solvers:
            if rng.random() >= solver.fail_prob_at(at):
                continue
            text, _, where = DIP4_FAILURES[pick_index(rng, solver.reasons)]
            idx = next(i for i, p in enumerate(batch.payloads) if p.signer == solver.account)
            if where == "payload" and "deadline" not in text and "insufficient" not in text and rng.random() < 0.3:
                idx = next(i for i, p in enumerate(batch.payloads) if p.signer != solver.account)
            batch.fail_text = text
            batch.fail_at = len(batch.payloads) if where == "end" else idx
            p = batch.payloads[idx]
            if "deadline" in text:
                p.deadline_ns = ctx.ts_ns - rng.randint(1, 30) * 10**9
            elif "unmatched" in text and p.diff:
                # the solver gives a little less than the user receives
                for tok, amt in p.diff.items():
                    if amt.startswith("-"):
                        p.diff[tok] = str(int(amt) + rng.randint(1, 1000))
            return

    def _sign_all(self, ctx: BlockCtx, batch: Batch) -> None:
        for p in batch.payloads:
            for intent in p.intents:
                if intent["intent"] == "token_diff":
                    intent["diff"] = p.diff
            p.nonce = self.ids.nonce_b64("intent-nonce", ctx.new_id("n"))
            standard = wallets.wallet_of(self.ids, p.signer, p.solver)
            signed_at_s = min(ctx.ts_ns, p.deadline_ns) // 10**9  # ton_connect: a deadline before it is refused
            p.multi, p.intent_hash = wallets.sign(self.ids, standard, p.signer, self.account, iso_ms(p.deadline_ns),
                                                  p.nonce, p.intents, signed_at_s)
            if p.withdraw is not None:
                p.withdraw.intent_hash = p.intent_hash

    # --- transactions and receipts ---

    def _tx(self, ctx: BlockCtx, signer: str, receiver: str, actions: list[Any]) -> dict[str, Any]:
        nonce = self._nonces.get(signer, ctx.height * 1_000_000) + 1
        self._nonces[signer] = nonce
        tx_hash = ctx.new_id("tx")
        return shapes.transaction(tx_hash, signer, self.ids.public_key(signer), nonce, receiver, actions,
                                  self.ids.signature("tx", tx_hash))

    def _receipt(self, ctx: BlockCtx, predecessor: str, receiver: str, signer: str, actions: list[Any],
                 **kw: Any) -> dict[str, Any]:
        return shapes.action_receipt(ctx.new_id("r"), predecessor, receiver, signer, self.ids.public_key(signer),
                                     actions, **kw)

    def _send_execute(self, ctx: BlockCtx, batch: Batch) -> None:
        signed = [p.multi for p in batch.payloads] + ([batch.undeployed] if batch.undeployed else [])
        args = MALFORMED_ARGS if batch.malformed_args else orjson.dumps({"signed": signed})
        actions = [shapes.function_call("execute_intents", args, batch.attached_gas)]
        receipt = self._receipt(ctx, batch.signer, self.account, batch.signer, actions)
        tx = self._tx(ctx, batch.signer, self.account, actions)
        batch.tx_hash = tx["hash"]
        ctx.add_tx(tx, Pending(receipt, self._on_execute, batch))

    # --- handlers ---

    def _on_execute(self, ctx: BlockCtx, p: Pending) -> Result:
        return self._run_batch(ctx, p, p.state, [], [])

    def _run_batch(self, ctx: BlockCtx, p: Pending, batch: Batch, logs: list[str],
                   events: list[tuple[str, str]]) -> Result:
        rng = self.rng
        rid = p.receipt_id
        n = len(batch.payloads)
        factor = self.engine.gas_factor(ctx.offset)
        if batch.malformed_args:
            self.truth.dead_letter("args")
            gas = int((1.4 + rng.random()) * TGAS * factor)
            return Result(shapes.panic(DESERIALIZE_PANIC), min(gas, batch.attached_gas),
                          receipt_ids=self._refund_later(ctx, batch, 1))
        if batch.undeployed is not None:
            # the arguments do not deserialize, so no payload runs; the decoder fails the payloads it
            # can name and dead-letters the one it cannot
            self.truth.dead_letter("args")
            fail_text, fail_at = DESERIALIZE_PANIC, 0
            gas = min(int((1.4 + rng.random()) * TGAS * factor), batch.attached_gas)
        else:
            lead = batch.solvers[0] if batch.solvers else None
            gas = int((1.5 + 1.2 * n) * TGAS * factor)
            gas += lead.sample_gas(rng, factor) if lead else int(rng.lognormvariate(math.log(3 * TGAS), 0.3) * factor)
            fail_text, fail_at = batch.fail_text, batch.fail_at
            if gas >= batch.attached_gas:
                fail_text, fail_at, gas = EXCEEDED_GAS, rng.randrange(n + 1), batch.attached_gas
            elif fail_text:
                gas = gas * (fail_at + 1) // (n + 1)
        # events of the payloads that ran (all of them on success)
        upto = n if not fail_text else fail_at
        for signed in batch.payloads[:upto]:
            for name, item in signed.events():
                logs.append(event_log("dip4", DIP4_VERSION, name, [item]))
                events.append(("dip4", name))
        solvers = attribute_solvers(batch.payloads, self.listed)
        if fail_text:
            for signed in batch.payloads:
                self.truth.intent(self.account, signed.intent_hash, "failed", ctx.ts_ns, failure=fail_text,
                                  signer_id=signed.signer, solver_id=solver_of(signed.signer, solvers))
            for s in solvers:
                self.truth.solver_execution(self.account, s, rid, False, fail_text, gas, ctx.height,
                                            tx_hash=batch.tx_hash)
            self._maybe_again(ctx, batch, fail_text)
            return Result(shapes.panic(fail_text), gas, logs, events, self._refund_later(ctx, batch, 1))
        logs.append(event_log("dip4", EXECUTED_VERSION, "intents_executed", [
            {"intent_hash": s.intent_hash, "account_id": s.signer, "nonce": s.nonce}
            for s in batch.payloads]))
        events.append(("dip4", "intents_executed"))
        if batch.transfers:
            logs.append(event_log("nep245", "1.0.0", "mt_transfer", batch.transfers))
            events.append(("nep245", "mt_transfer"))
        withdraws = [s.withdraw for s in batch.payloads if s.withdraw is not None]
        if withdraws:
            logs.append(event_log("nep245", "1.0.0", "mt_burn", [
                {"owner_id": w.owner, "token_ids": [w.token.id], "amounts": [str(w.amount)], "memo": "withdraw"}
                for w in withdraws]))
            events.append(("nep245", "mt_burn"))
        if rng.random() < self.cfg.malformed_rate:
            logs.append(MALFORMED_LOG)  # an undecodable event: one dead letter, nothing else changes
            self.truth.dead_letter("log")
        batch.succeeded = True
        for signed in batch.payloads:
            self.truth.intent(self.account, signed.intent_hash, "executed", ctx.ts_ns, signer_id=signed.signer,
                              solver_id=solver_of(signed.signer, solvers))
        for s in solvers:
            self.truth.solver_execution(self.account, s, rid, True, "", gas, ctx.height, tx_hash=batch.tx_hash)
        self._maybe_again(ctx, batch, "")
        receipt_ids: list[str] = []
        for w in withdraws:
            self.truth.withdrawal(self.account, w.token.id, "started")
            receipt_ids.extend(self._withdraw_receipts(ctx, batch, w))
        if not withdraws:
            receipt_ids.extend(self._refund_later(ctx, batch, 1))
        if batch.kind == "ft":
            value = b'"0"'
        elif batch.kind == "mt":
            value = b'["0"]'
        else:
            value = b""
        return Result(shapes.success_value(value), gas, logs, events, receipt_ids)

    def _refund_later(self, ctx: BlockCtx, batch: Batch, delay: int) -> list[str]:
        r = refund(ctx, batch.signer, batch.signer, self.rng.randint(10**20, 2 * 10**22))
        ctx.schedule(r, delay)
        return [r.receipt_id]

    def _withdraw_receipts(self, ctx: BlockCtx, batch: Batch, w: Withdraw) -> list[str]:
        """The token transfer out of intents.near and the resolve callback waiting for its result."""
        data_id = ctx.new_id("data")
        tok = w.token
        if tok.standard == "nep245":
            method = "mt_batch_transfer"
            args = {"receiver_id": w.receiver, "token_ids": [tok.inner_id], "amounts": [str(w.amount)],
                    "approvals": None, "memo": None}
            resolve_method = "mt_resolve_withdraw"
            resolve_args = {"token": tok.contract, "sender_id": w.owner, "token_ids": [tok.inner_id],
                            "amounts": [str(w.amount)], "is_call": False}
        else:
            method = "ft_transfer"
            args = {"receiver_id": w.receiver, "amount": str(w.amount), "memo": "withdraw"}
            resolve_method = "ft_resolve_withdraw"
            resolve_args = {"token": tok.contract, "sender_id": w.owner, "amount": str(w.amount), "is_call": False}
        transfer = self._receipt(ctx, self.account, tok.contract, batch.signer,
                                 [shapes.function_call(method, orjson.dumps(args), 30 * TGAS, "1")],
                                 output_data_receivers=[{"data_id": data_id, "receiver_id": self.account}])
        resolve = self._receipt(ctx, self.account, self.account, batch.signer,
                                [shapes.function_call(resolve_method, orjson.dumps(resolve_args), 10 * TGAS)],
                                input_data_ids=[data_id])
        resolve_p = Pending(resolve, self._on_resolve_withdraw, (batch, w))
        ctx.schedule(Pending(transfer, self._on_token_withdraw, (w, resolve_p, data_id)), 1)
        return [transfer["receipt_id"], resolve["receipt_id"]]

    def _on_token_withdraw(self, ctx: BlockCtx, p: Pending) -> Result:
        w, resolve_p, data_id = p.state
        tok = w.token
        # the rng is drawn only when refusals are asked for, so other lakes stay as they were
        w.refused = bool(self.cfg.withdraw_refund_rate) and self.rng.random() < self.cfg.withdraw_refund_rate
        data = None if w.refused else shapes.b64json(b"")  # a failed promise delivers no data
        resolve_p.extra_receipts.append(shapes.data_receipt(ctx.new_id("r"), tok.contract, self.account, data_id, data))
        ctx.schedule(resolve_p, 1)
        gas = int(self.rng.uniform(3.5, 5.5) * TGAS)
        if w.refused:
            return Result(shapes.panic(f"Smart contract panicked: The account {w.receiver} is not registered"), gas)
        memo = "" if tok.standard == "nep245" else "withdraw"
        log, event = token_transfer_log(tok, self.account, w.receiver, w.amount, memo)
        return Result(shapes.success_value(), gas, [log], [event])

    def _on_resolve_withdraw(self, ctx: BlockCtx, p: Pending) -> Result:
        batch, w = p.state
        used = 0 if w.refused else w.amount
        value = f'["{used}"]' if w.token.standard == "nep245" else f'"{used}"'
        gas = min(int(self.rng.uniform(2.6, 3.4) * TGAS * self.engine.gas_factor(ctx.offset)), 10 * TGAS)
        logs: list[str] = []
        events: list[tuple[str, str]] = []
        if w.refused:  # intents.near deposits the unused amount back to the owner
            logs.append(event_log("nep245", "1.0.0", "mt_mint", [{"owner_id": w.owner, "token_ids": [w.token.id],
                                                                  "amounts": [str(w.amount)], "memo": "refund"}]))
            events.append(("nep245", "mt_mint"))
        failure = self._resolve_failure(w)
        if failure == EXCEEDED_GAS:
            gas = 10 * TGAS  # all its attached gas; a refund mint logged before that stays in the failed receipt
        elif failure:
            logs, events = [], []  # the lock check panics before the refund is minted
        self.truth.withdrawal(self.account, w.token.id, "failed" if failure else "refunded" if w.refused else "ok",
                              failure, w.amount if w.refused and not failure else 0)
        status = shapes.panic(failure) if failure else shapes.success_value(value.encode())
        return Result(status, gas, logs, events, receipt_ids=self._refund_later(ctx, batch, 1))

    def _resolve_failure(self, w: Withdraw) -> str:
        """Why the resolve callback fails itself ('' when it does not): gas, or a locked owner."""
        rate = self.cfg.withdraw_fail_rate
        if not rate or self.rng.random() >= rate:  # the rng is drawn only when failures are asked for
            return ""
        return EXCEEDED_GAS if self.rng.random() < 0.6 else RESOLVE_LOCKED.format(w.owner)

    def _on_deposit_transfer(self, ctx: BlockCtx, p: Pending) -> Result:
        """The token contract moves the deposit to intents.near and calls its ``*_on_transfer``."""
        batch, msg = p.state
        token, amount = batch.deposit
        data_id = ctx.new_id("data")
        log, event = token_transfer_log(token, batch.signer, self.account, amount)
        if batch.kind == "ft":
            method, args = "ft_on_transfer", {"sender_id": batch.signer, "amount": str(amount), "msg": msg}
            resolve_method = "ft_resolve_transfer"
            resolve_args = {"sender_id": batch.signer, "receiver_id": self.account, "amount": str(amount)}
        else:
            method = "mt_on_transfer"
            args = {"sender_id": batch.signer, "previous_owner_ids": [batch.signer], "token_ids": [token.inner_id],
                    "amounts": [str(amount)], "msg": msg}
            resolve_method = "mt_resolve_transfer"
            resolve_args = {"previous_owner_ids": [batch.signer], "receiver_id": self.account,
                            "token_ids": [token.inner_id], "amounts": [str(amount)], "approvals": None}
        on_transfer = self._receipt(ctx, token.contract, self.account, batch.signer,
                                    [shapes.function_call(method, orjson.dumps(args), 250 * TGAS)],
                                    output_data_receivers=[{"data_id": data_id, "receiver_id": token.contract}])
        resolve = self._receipt(ctx, token.contract, token.contract, batch.signer,
                                [shapes.function_call(resolve_method, orjson.dumps(resolve_args), 15 * TGAS)],
                                input_data_ids=[data_id])
        batch.attached_gas = 250 * TGAS
        resolve_p = Pending(resolve, self._on_resolve_transfer, (batch, data_id))
        ctx.schedule(Pending(on_transfer, self._on_deposit_execute, (batch, resolve_p)), 1)
        gas = int(self.rng.uniform(3.8, 5.2) * TGAS)
        return Result(shapes.success_receipt(resolve["receipt_id"]), gas, [log], [event],
                      [on_transfer["receipt_id"], resolve["receipt_id"]])

    def _on_deposit_execute(self, ctx: BlockCtx, p: Pending) -> Result:
        batch, resolve_p = p.state
        token, amount = batch.deposit
        mint = event_log("nep245", "1.0.0", "mt_mint", [{"owner_id": batch.signer, "token_ids": [token.id],
                                                         "amounts": [str(amount)], "memo": "deposit"}])
        res = self._run_batch(ctx, p, batch, [mint], [("nep245", "mt_mint")])
        if batch.succeeded:  # a failed batch's mint stays in its failed receipt: no deposit
            self.truth.deposit(self.account, token.id, p.method_name, amount)
        ctx.schedule(resolve_p, 1)
        return res

    def _on_resolve_transfer(self, ctx: BlockCtx, p: Pending) -> Result:
        batch, data_id = p.state
        token, amount = batch.deposit
        logs: list[str] = []
        events: list[tuple[str, str]] = []
        if batch.succeeded:
            used = str(amount)
        else:  # the deposit goes back to the user
            used = "0"
            log, event = token_transfer_log(token, self.account, batch.signer, amount, "refund")
            logs.append(log)
            events.append(event)
        value = f'"{used}"' if batch.kind == "ft" else f'["{used}"]'
        # what *_on_transfer returned (the unused amount), or nothing when it panicked
        returned = (b'"0"' if batch.kind == "ft" else b'["0"]') if batch.succeeded else None
        p.extra_receipts.append(shapes.data_receipt(ctx.new_id("r"), self.account, token.contract, data_id,
                                                    None if returned is None else shapes.b64json(returned)))
        gas = int(self.rng.uniform(2.5, 4.0) * TGAS)
        return Result(shapes.success_value(value.encode()), gas, logs, events)
