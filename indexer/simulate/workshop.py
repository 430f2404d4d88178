"""Workshop Verifier/Solver traffic: ``verify_and_solve`` -> ``solve_intent`` -> ``on_intent_solved``.

A user tx in block h calls ``verify_and_solve({"intent": I, "solver_account": S})`` on the verifier;
h+1 the verifier logs ``Intent verified: {id}`` and ``Verified intent {id}, calling solver at {S}``
(or panics "Intent expired" when the deadline has passed by the time it runs); L blocks later
(L >= 1, per-solver latency) ``solve_intent`` runs on S and logs ``Executing intent {id} for user
{user}``, returning ``{"intent_id", "success", "output_amount", "fee_amount"}`` or panicking; the
block after, the callback ``on_intent_solved`` on the verifier logs ``Intent {id} was successfully
solved`` or ``Intent {id} execution failed at solver``; then a gas refund goes to the user.
Solver executions belong to the verifier (the solver receipt's predecessor) with the solver as
``solver_id``; latency is the solve block's timestamp minus the verify block's.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any

import orjson

from indexer.simulate import shapes
from indexer.simulate.actors import (
    EXCEEDED_GAS, WORKSHOP_PANICS, People, SolverProfile, pick_index, pick_weighted, poisson,
)
from indexer.simulate.engine import BlockCtx, Engine, Pending, Result, refund
from indexer.simulate.ids import Ids
from indexer.simulate.options import PGAS, TGAS, SimConfig

EXPIRED = "Smart contract panicked: Intent expired"
SOLVER_FAILED = "execution failed at solver"
SOLVER_SAID_NO = "solver returned success=false"
_PAIRS = (("usdc.near", "wrap.near"), ("wrap.near", "usdc.near"), ("usdt.tether-token.near", "wrap.near"),
          ("wrap.near", "usdt.tether-token.near"), ("usdc.near", "usdt.tether-token.near"))


@dataclass(slots=True)
class _Flow:
    intent_id: str
    user: str
    solver: SolverProfile
    amount: int
    deadline_ns: int
    tx_gas: int
    verify_ts: int = 0
    solved_ok: bool = False
    tx_hash: str = ""


class WorkshopTraffic:
    def __init__(self, cfg: SimConfig, ids: Ids, engine: Engine, people: People, solvers: list[SolverProfile]):
        self.cfg = cfg
        self.ids = ids
        self.engine = engine
        self.truth = engine.truth
        self.people = people
        self.solvers = solvers
        self.verifier = cfg.workshop_verifier
        self.rng = random.Random(f"{cfg.seed}:workshop")
        self._count = 0
        self._nonces: dict[str, int] = {}

    def start(self, ctx: BlockCtx) -> None:
        if not self.solvers:
            return
        for _ in range(poisson(self.rng, self.cfg.workshop_intents_per_block)):
            self._intent_tx(ctx)

    def _receipt(self, ctx: BlockCtx, receipt_id: str, predecessor: str, receiver: str, user: str, method: str,
                 args: dict[str, Any], gas: int, **kw: Any) -> dict[str, Any]:
        return shapes.action_receipt(receipt_id, predecessor, receiver, user, self.ids.public_key(user),
                                     [shapes.function_call(method, orjson.dumps(args), gas)], **kw)

    def _intent_tx(self, ctx: BlockCtx) -> None:
        rng = self.rng
        self._count += 1
        user = self.people.user(rng)
        solver = pick_weighted(rng, self.solvers)
        expired = rng.random() < self.cfg.expiry_rate
        deadline = ctx.ts_ns + (-rng.randint(1, 120) if expired else rng.randint(120, 1800)) * 10**9
        amount = int(rng.lognormvariate(math.log(5000), 1.5)) + 1
        tin, tout = rng.choice(_PAIRS)
        tx_gas = PGAS if rng.random() < 0.25 else 300 * TGAS  # some clients attach the 1 PGas maximum
        flow = _Flow(f"intent-{self._count}", user, solver, amount, deadline, tx_gas)
        args = {"intent": {"id": flow.intent_id, "user_account": user, "action": "swap", "input_token": tin,
                           "input_amount": str(amount), "output_token": tout,
                           "min_output_amount": str(amount * 99 // 100), "max_slippage": 0.5, "deadline": deadline},
                "solver_account": solver.account}
        receipt = self._receipt(ctx, ctx.new_id("r"), user, self.verifier, user, "verify_and_solve", args, flow.tx_gas)
        nonce = self._nonces.get(user, ctx.height * 1_000_000) + 1
        self._nonces[user] = nonce
        tx_hash = flow.tx_hash = ctx.new_id("tx")
        tx = shapes.transaction(tx_hash, user, self.ids.public_key(user), nonce, self.verifier,
                                receipt["receipt"]["Action"]["actions"], self.ids.signature("tx", tx_hash))
        ctx.add_tx(tx, Pending(receipt, self._on_verify, flow))

    def _on_verify(self, ctx: BlockCtx, p: Pending) -> Result:
        rng, flow = self.rng, p.state
        factor = self.engine.gas_factor(ctx.offset)
        if flow.deadline_ns < ctx.ts_ns:  # also intents held back by a verifier pause
            self.truth.intent(self.verifier, flow.intent_id, "expired", ctx.ts_ns, failure=EXPIRED,
                              signer_id=flow.user, solver_id=flow.solver.account)
            gas = int(rng.uniform(2.2, 3.0) * TGAS * factor)
            return Result(shapes.panic(EXPIRED), gas, receipt_ids=self._refund(ctx, flow))
        gas = min(int(rng.lognormvariate(math.log(4 * TGAS), 0.2) * factor), 20 * TGAS)
        solve_id, callback_id, data_id = ctx.new_id("r"), ctx.new_id("r"), ctx.new_id("data")
        solver = flow.solver.account
        solve = self._receipt(ctx, solve_id, self.verifier, solver, flow.user, "solve_intent",
                              {"intent_id": flow.intent_id, "user": flow.user, "input_amount": str(flow.amount)},
                              flow.tx_gas - 45 * TGAS,
                              output_data_receivers=[{"data_id": data_id, "receiver_id": self.verifier}])
        callback = self._receipt(ctx, callback_id, self.verifier, self.verifier, flow.user, "on_intent_solved",
                                 {"intent_id": flow.intent_id}, 15 * TGAS, input_data_ids=[data_id])
        latency = 1
        while latency < self.cfg.max_latency_blocks and rng.random() > flow.solver.latency_p:
            latency += 1
        flow.verify_ts = ctx.ts_ns
        callback_p = Pending(callback, self._on_callback, flow)
        ctx.schedule(Pending(solve, self._on_solve, (flow, callback_p, data_id)), latency)
        self.truth.intent(self.verifier, flow.intent_id, "verified", ctx.ts_ns, signer_id=flow.user, solver_id=solver)
        logs = [f"Intent verified: {flow.intent_id}", f"Verified intent {flow.intent_id}, calling solver at {solver}"]
        return Result(shapes.success_receipt(callback_id), gas, logs, [], [solve_id, callback_id])

    def _on_solve(self, ctx: BlockCtx, p: Pending) -> Result:
        rng = self.rng
        flow, callback_p, data_id = p.state
        solver = flow.solver
        attached = flow.tx_gas - 45 * TGAS
        gas = max(int(1.8 * TGAS), solver.sample_gas(rng, self.engine.gas_factor(ctx.offset)))
        ok, said_yes, failure = True, True, ""
        if gas >= attached:
            ok, failure, gas = False, EXCEEDED_GAS, attached
        elif rng.random() < solver.fail_prob_at(ctx.offset):
            if rng.random() < solver.said_no_share:
                said_yes, failure = False, SOLVER_SAID_NO
            else:
                ok, failure = False, WORKSHOP_PANICS[pick_index(rng, solver.reasons)]
        latency_s = (ctx.ts_ns - flow.verify_ts) / 1e9
        self.truth.solver_execution(self.verifier, solver.account, p.receipt_id, ok and said_yes, failure, gas,
                                    ctx.height, latency_s, flow.tx_hash)
        logs = [f"Executing intent {flow.intent_id} for user {flow.user}"]
        if ok:
            self.truth.intent(self.verifier, flow.intent_id, "executing", ctx.ts_ns)
            out = flow.amount * 995 // 1000 if said_yes else 0
            value = orjson.dumps({"intent_id": flow.intent_id, "success": said_yes, "output_amount": str(out),
                                  "fee_amount": str(flow.amount * 3 // 1000 if said_yes else 0)})
            status = shapes.success_value(value)
            data: str | None = shapes.b64json(value)
        else:
            status, data = shapes.panic(failure), None
        flow.solved_ok = ok and said_yes
        callback_p.extra_receipts.append(
            shapes.data_receipt(ctx.new_id("r"), solver.account, self.verifier, data_id, data))
        ctx.schedule(callback_p, 1)
        return Result(status, gas, logs)

    def _on_callback(self, ctx: BlockCtx, p: Pending) -> Result:
        flow = p.state
        gas = int(self.rng.uniform(2.0, 3.2) * TGAS * self.engine.gas_factor(ctx.offset))
        if flow.solved_ok:
            self.truth.intent(self.verifier, flow.intent_id, "completed", ctx.ts_ns)
            logs = [f"Intent {flow.intent_id} was successfully solved"]
        else:
            self.truth.intent(self.verifier, flow.intent_id, "failed", ctx.ts_ns, failure=SOLVER_FAILED)
            logs = [f"Intent {flow.intent_id} execution failed at solver"]
        return Result(shapes.success_value(), min(gas, 15 * TGAS), logs, [], self._refund(ctx, flow))

    def _refund(self, ctx: BlockCtx, flow: _Flow) -> list[str]:
        r = refund(ctx, flow.user, flow.user, self.rng.randint(10**20, 10**22))
        ctx.schedule(r, 1)
        return [r.receipt_id]
