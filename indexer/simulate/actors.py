"""Who takes part: solvers with their own quality, gas and latency, users, relayers and tokens.

Solver profiles are drawn once from the seed. Volume follows a Zipf-like law (a few solvers do
most of the work); quality is log-normal around ``--failure-rate`` and normalised so that the
volume-weighted mean failure probability equals it; gas is log-normal per solver with a Pareto
tail that can run into the attached gas (the receipt then fails with "Exceeded the prepaid gas.").
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

from indexer.simulate.ids import Ids
from indexer.simulate.options import PGAS, TGAS, SimConfig, SolverCollapse

DIP4_FAILURES: tuple[tuple[str, float, str], ...] = (
    # (panic text, base weight, where it stops the batch: "payload" = at one payload, "end" = after all)
    ("Smart contract panicked: deadline has expired", 0.35, "payload"),
    ("Smart contract panicked: invariant violated: unmatched deltas", 0.25, "end"),
    ("Smart contract panicked: nonce was already used", 0.15, "payload"),
    ("Smart contract panicked: invalid signature", 0.10, "payload"),
    ("Smart contract panicked: insufficient balance or overflow", 0.15, "payload"),
)
WORKSHOP_PANICS: tuple[str, ...] = (
    "Smart contract panicked: Insufficient liquidity",
    "Smart contract panicked: Slippage tolerance exceeded",
    "Smart contract panicked: Solver is paused",
)
EXCEEDED_GAS = "Exceeded the prepaid gas."

_DIP4_NAMES = (
    "solver-priv-liq.near", "amm-solver.near", "cex-liq-solver.near", "hot-maker.tg", "omni-rfq-solver.near",
    "deep-book-solver.near", "arb-flow-solver.near", "mm-alpha-solver.near", "tfs-solver.near", "xliq-solver.near",
    "bridge-maker.near", "pmm-solver.near", "kodiak-liq.near", "wintermute-solver.near", "lambda-mm.near",
    "rfq-engine.near", "quoter-prime.near", "flux-solver.near", "atlas-mm.near", "tidal-solver.near",
)


@dataclass(slots=True)
class SolverProfile:
    account: str
    listed: bool
    weight: float
    fail_prob: float
    reasons: tuple[float, ...]  # weights over DIP4_FAILURES or WORKSHOP_PANICS
    gas_median: float
    gas_sigma: float
    tail_prob: float
    latency_p: float = 1.0  # workshop: chance per block that the solver call runs now rather than later
    said_no_share: float = 0.0  # workshop: share of failures returned as success=false (not a panic)
    collapse: SolverCollapse | None = None

    def fail_prob_at(self, offset: int) -> float:
        if self.collapse is not None and self.collapse.active_at(offset):
            return 1.0 - self.collapse.success_rate
        return self.fail_prob

    def sample_gas(self, rng: random.Random, factor: float = 1.0) -> int:
        g = self.gas_median * math.exp(self.gas_sigma * rng.gauss(0.0, 1.0))
        if rng.random() < self.tail_prob:
            g *= 8 * rng.paretovariate(1.0)  # heavy tail: can exceed the attached gas
        return int(min(g * factor, 4 * PGAS))


def _zipf_weights(n: int, s: float = 1.1) -> list[float]:
    return [1.0 / (i + 1) ** s for i in range(n)]


def _qualities(rng: random.Random, weights: list[float], mean_fail: float, cap: float) -> list[float]:
    q = [rng.lognormvariate(0.0, 0.9) for _ in weights]
    norm = sum(w * x for w, x in zip(weights, q)) / sum(weights)
    return [min(cap, mean_fail * x / norm) for x in q]


def dip4_solvers(cfg: SimConfig, rng: random.Random) -> list[SolverProfile]:
    names = list(_DIP4_NAMES[: cfg.solvers]) + [f"mm-solver-{i}.near" for i in range(len(_DIP4_NAMES), cfg.solvers)]
    weights = _zipf_weights(cfg.solvers)
    fails = _qualities(rng, weights, cfg.failure_rate, 0.6)
    out = []
    for i, (name, w, f) in enumerate(zip(names, weights, fails)):
        out.append(SolverProfile(
            account=name,
            listed=i < cfg.solvers - cfg.unlisted_solvers,  # the smallest ones are the unknown ones
            weight=w,
            fail_prob=f,
            reasons=tuple(base * rng.lognormvariate(0.0, 0.7) for _, base, _ in DIP4_FAILURES),
            gas_median=rng.uniform(3, 12) * TGAS,
            gas_sigma=rng.uniform(0.25, 0.6),
            tail_prob=rng.uniform(0.002, 0.02),
        ))
    return out


def workshop_solvers(cfg: SimConfig, rng: random.Random) -> list[SolverProfile]:
    n = cfg.workshop_solvers
    if n == 0:
        return []
    weights = _zipf_weights(n, 0.8)
    fails = _qualities(rng, weights, min(0.5, cfg.failure_rate * 2), 0.8)
    return [SolverProfile(
        account=f"solver-{i + 1}.workshop.near",
        listed=True,
        weight=w,
        fail_prob=f,
        reasons=tuple(rng.uniform(0.2, 1.0) for _ in WORKSHOP_PANICS),
        gas_median=rng.uniform(4, 30) * TGAS,
        gas_sigma=rng.uniform(0.3, 0.9),
        tail_prob=rng.uniform(0.005, 0.03),
        latency_p=rng.uniform(0.45, 0.95),
        said_no_share=rng.uniform(0.2, 0.6),
    ) for i, (w, f) in enumerate(zip(weights, fails))]


def apply_collapses(cfg: SimConfig, profiles: list[SolverProfile]) -> list[dict[str, object]]:
    """Attach each ``--incident-solver-collapse`` to its solver; returns the incidents for truth."""
    applied = []
    for c in cfg.solver_collapses:
        target = None
        if c.solver.isdigit():
            idx = int(c.solver) - 1
            if 0 <= idx < len(profiles):
                target = profiles[idx]
        else:
            target = next((p for p in profiles if p.account == c.solver), None)
        if target is None:
            from indexer.simulate.options import SimulateError

            known = ", ".join(p.account for p in profiles)
            raise SimulateError(f"--incident-solver-collapse {c.solver!r}: no such solver; use an index "
                                f"1..{len(profiles)} or one of: {known}")
        target.collapse = c
        incident: dict[str, object] = {"kind": "solver_collapse", "solver": target.account, "from_offset": c.offset,
                                       "from_height": cfg.start_height + c.offset, "success_rate": c.success_rate}
        if c.end is not None:
            incident.update(to_offset=c.end, to_height=cfg.start_height + c.end)
        applied.append(incident)
    return applied


@dataclass(frozen=True, slots=True)
class Token:
    id: str  # multi-token id inside intents.near: nep141:<acct> or nep245:<acct>:<id>
    decimals: int
    usd: float

    @property
    def contract(self) -> str:
        return self.id.split(":")[1]

    @property
    def inner_id(self) -> str:
        """The token id on its own contract (nep245 only)."""
        return self.id.split(":", 2)[2]

    @property
    def standard(self) -> str:
        return self.id.split(":")[0]

    def amount(self, usd_value: float) -> int:
        return max(1, int(usd_value / self.usd * 10**self.decimals))


TOKENS: tuple[Token, ...] = (
    Token("nep141:wrap.near", 24, 3.1),
    Token("nep141:17208628f84f5d6ad33f0da3bbbeb27ffcb398eac501a31bd6ad2011e36133a1", 6, 1.0),
    Token("nep141:usdt.tether-token.near", 6, 1.0),
    Token("nep141:eth.omft.near", 18, 3400.0),
    Token("nep141:btc.omft.near", 8, 97000.0),
    Token("nep141:sol.omft.near", 9, 180.0),
    Token("nep141:base-0x833589fcd6edb6e08f4c7c32d4f71b54bda02913.omft.near", 6, 1.0),
    Token("nep245:v2_1.omni.hot.tg:56_11111111111111111111", 18, 600.0),
    Token("nep245:v2_1.omni.hot.tg:137_qiStmoQJDQPTebaPjgx5VBxZv6L", 6, 1.0),
)
FEE_COLLECTOR = "7066024d3f20f94de601c003163367873cca78507eeca4df66d9be645f197f05"
REFERRALS = ("1click-rango", "near-intents.org", "hot-wallet", "1click-api", "meteor-wallet")


class People:
    """Users and relayers; a skewed pick so that some users come back often."""

    def __init__(self, cfg: SimConfig, ids: Ids, rng: random.Random, size: int = 3000):
        words = ("alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory",
                 "oscar", "peggy", "trent", "victor", "walter")
        users = []
        for i in range(size):
            r = rng.random()
            if r < 0.45:  # an ed25519 key's hex, or (one in two) an Ethereum-style 0x address
                implicit = ids.implicit_account("user", i)
                users.append("0x" + implicit[:40] if ids.digest("eth-user", i)[0] < 128 else implicit)
            elif r < 0.8:
                users.append(f"{rng.choice(words)}{i}.near")
            else:
                users.append(f"{rng.choice(words)}_{i}.tg")
        self.users = users
        self.relayers = ((cfg.verifier_account, 0.6), ("solver-relay-v2.near", 0.3), ("1click-relayer.near", 0.1))

    def user(self, rng: random.Random) -> str:
        return self.users[int(len(self.users) * rng.random() ** 2.5)]

    def relayer(self, rng: random.Random) -> str:
        r = rng.random()
        for name, p in self.relayers:
            if r < p:
                return name
            r -= p
        return self.relayers[0][0]


def pick_weighted(rng: random.Random, items: list[SolverProfile]) -> SolverProfile:
    total = sum(p.weight for p in items)
    r = rng.random() * total
    for p in items:
        r -= p.weight
        if r < 0:
            return p
    return items[-1]


def pick_index(rng: random.Random, weights: tuple[float, ...]) -> int:
    r = rng.random() * sum(weights)
    for i, w in enumerate(weights):
        r -= w
        if r < 0:
            return i
    return len(weights) - 1


def poisson(rng: random.Random, lam: float) -> int:
    if lam <= 0:
        return 0
    if lam > 30:  # normal approximation keeps large rates cheap
        return max(0, int(round(rng.gauss(lam, math.sqrt(lam)))))
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1
