"""The API's request and response shapes: one set of pydantic models validates requests, builds
responses and generates the OpenAPI document (``openapi.py``), so the three cannot disagree.
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Status(str, Enum):
    """An intent's latest state (README "API": what each means and how it maps to the relay's)."""

    pending = "pending"
    verified = "verified"
    executing = "executing"
    executed = "executed"
    completed = "completed"
    failed = "failed"
    expired = "expired"


RelayStatus = Literal["PENDING", "TX_BROADCASTED", "SETTLED", "NOT_FOUND_OR_NOT_VALID"]

# The solver relay's get_status words, for clients that already speak them.
RELAY_STATUS: dict[str, RelayStatus] = {
    "pending": "PENDING", "verified": "PENDING", "executing": "TX_BROADCASTED",
    "executed": "SETTLED", "completed": "SETTLED", "failed": "NOT_FOUND_OR_NOT_VALID",
    "expired": "NOT_FOUND_OR_NOT_VALID",
}


class TokenAmount(BaseModel):
    token: str = Field(description="token id (nep141:ACCOUNT, nep245:ACCOUNT:ID, nep171:ACCOUNT:ID) or, for a "
                                   "workshop intent, the token contract")
    amount: str = Field(description="decimal integer, exact (u128 / i128); negative: the signer gives it")


class Intent(BaseModel):
    intent_hash: str = Field(description="the Verifier's intent hash (base58), or a workshop intent's id")
    contract_id: str
    status: Status
    relay_status: RelayStatus = Field(description="the same status in the solver relay's get_status words")
    terminal: bool = Field(description="true when the status will not change any more: stop polling")
    failure: str | None = Field(description="why it failed or expired: the contract's panic text")
    kinds: list[str] = Field(description="dip4 intent kinds (token_diff, transfer, ft_withdraw ...)")
    action: str | None = Field(description="a workshop intent's action (swap, transfer ...)")
    signer_id: str | None
    solver_id: str | None
    referral: str | None
    accounts: list[str] = Field(description="every account the intent involves: signer, solver, referral, and "
                                           "the accounts it moves tokens for")
    tokens: list[TokenAmount]
    deadline: str | None
    attempts: int = Field(description="receipts that executed or failed it (a failed batch can be sent again)")
    first_block_height: int
    last_block_height: int
    first_seen: datetime
    last_seen: datetime
    verified_at: datetime | None
    completed_at: datetime | None
    latency_s: float | None = Field(description="workshop intents: seconds from verification to completion")
    receipt_id: str = Field(description="the receipt of the latest state")
    tx_hashes: list[str]
    gas_burnt: int


class OnChainIntent(BaseModel):
    """A workshop intent the store does not know yet, as the Verifier's ``get_intent_status`` view
    answered over JSON-RPC (``--rpc-url``)."""

    source: Literal["rpc"] = Field(description="where the answer came from: the node, not the store")
    intent_hash: str = Field(description="the workshop intent's id")
    contract_id: str = Field(description="the Verifier that answered")
    status: Status | None = Field(description="the view's status in this API's words; null when it used another")
    relay_status: RelayStatus | None
    terminal: bool
    failure: str | None = Field(description="the reason the view gives for a failed intent")
    onchain: Any = Field(description="what get_intent_status returned, verbatim")
    finality: Literal["final"] = "final"


class IntentPage(BaseModel):
    items: list[Intent]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next (older) page; null on the last")
    limit: int


class Problem(BaseModel):
    """RFC 9457 problem details: every error body."""

    model_config = ConfigDict(extra="allow")

    type: str = "about:blank"
    title: str
    status: int
    detail: str


class Issue(BaseModel):
    path: str = Field(description="where in the request body, as a JSON path ($.messages[0].deadline)")
    code: str = Field(description="a stable word for the rule broken (account_id, amount_sign, deadline_past ...)")
    message: str


class ValidationResult(BaseModel):
    valid: bool
    errors: list[Issue]


class Health(BaseModel):
    alive: bool


class Readiness(BaseModel):
    model_config = ConfigDict(extra="allow")

    ready: bool
    reason: str
    store: str
    redis: str


class Percentiles(BaseModel):
    p50: float | None
    p90: float | None
    p99: float | None


class SolverStats(BaseModel):
    solver_id: str = Field(description="the solver, or * for every execution of the window (the network)")
    executions: int
    successes: int
    failures: int
    success_ratio: float | None = Field(description="successes / executions; null without executions")
    failures_by_reason: dict[str, int] = Field(description="the panic text -> executions that failed with it")
    gas_burnt: str = Field(description="gas burnt by the executions, exact (decimal string)")
    gas: Percentiles = Field(description="gas per execution")
    latency_s: Percentiles = Field(description="workshop solvers: seconds from verification to the solver's answer")
    latency_mean_s: float | None
    settlements: int = Field(0, description="successful settlements (receipts) of the solver (solver_costs)")
    intents_settled: int = Field(0, description="intents those settlements executed")
    gas_per_settlement: float | None = Field(None, description="gas burnt per successful settlement")
    gas_per_intent: float | None = Field(None, description="gas burnt per intent settled")
    fees_collected: dict[str, str] = Field(
        default_factory=dict,
        description="token -> fees_collected of the solver's own token_diffs in successful receipts, exact "
                    "(decimal string, the token's smallest unit); for * every fee of the window (token_flows)")


class SolverWindow(BaseModel):
    window: Literal["5m", "1h", "24h", "7d"]
    until: datetime | None = Field(description="end of the window: the newest rolled-up bucket (block time)")
    network: SolverStats | None = Field(description="every solver together, for comparison")
    solvers: list[SolverStats]


class OnChainSolver(BaseModel):
    """A workshop solver the rollups know nothing of yet, as its ``get_solver_info`` view answered."""

    source: Literal["rpc"] = Field(description="where the answer came from: the node, not the store")
    solver_id: str
    window: Literal["5m", "1h", "24h", "7d"]
    info: Any = Field(description="what get_solver_info returned, verbatim")
    finality: Literal["final"] = "final"


class StatusStats(BaseModel):
    window: Literal["5m", "1h", "24h", "7d"]
    until: datetime | None
    contracts: dict[str, dict[str, int]] = Field(
        description="contract -> status -> intents with an update of that status in the window (an intent that "
                    "failed and then executed counts under both)")


class Throughput(BaseModel):
    window: Literal["5m", "1h", "24h", "7d"]
    until: datetime | None
    seconds: int
    blocks: int
    receipts: int = Field(description="receipts of the tracked contracts")
    receipt_successes: int
    receipt_failures: int
    gas_burnt: str
    intent_updates: int
    receipts_per_s: float
    intent_updates_per_s: float
