"""The workshop contracts' views as API answers, for what the store does not know yet.

``get_intent_status({"intent_id"})`` on each tracked workshop Verifier (or the one ``?contract=``
names), first found wins; ``get_solver_info({})`` on a tracked workshop Solver. The Verifier's
status comes back as a word ("Pending", "completed"), an externally tagged enum
(``{"Failed": "reason"}`` / ``{"Failed": {"reason": ...}}``) or an object with ``status`` (and
``reason``); each is read into this API's vocabulary, and the raw value is returned too.
"""

from __future__ import annotations

from typing import Any

from indexer.api.models import RELAY_STATUS, OnChainIntent, OnChainSolver, Status
from indexer.api.rpc import Answer, ViewCaller
from indexer.config import Settings
from indexer.decode.roles import Role


def workshop_verifiers(settings: Settings, contract: str | None) -> list[str]:
    accounts = [c.account for c in settings.contract_specs if c.role is Role.WORKSHOP_VERIFIER]
    return [a for a in accounts if contract is None or a == contract]


def is_workshop_solver(settings: Settings, account: str) -> bool:
    return any(c.account == account and c.role is Role.WORKSHOP_SOLVER for c in settings.contract_specs)


async def intent(rpc: ViewCaller, verifiers: list[str], intent_id: str) -> tuple[OnChainIntent | None, list[str]]:
    """The first Verifier's answer that has the intent, and why each other one had none."""
    misses: list[str] = []
    for verifier in verifiers:
        answer: Answer = await rpc.view(verifier, "get_intent_status", {"intent_id": intent_id})
        if not answer.found:
            misses.append(answer.why or f"{verifier} does not know it")
            continue
        status, failure = read_status(answer.value)
        return OnChainIntent(source="rpc", intent_hash=intent_id, contract_id=verifier, status=status,
                             relay_status=RELAY_STATUS[status.value] if status else None,
                             terminal=status in (Status.completed, Status.executed, Status.expired, Status.failed),
                             failure=failure, onchain=answer.value), misses
    return None, misses


async def solver(rpc: ViewCaller, solver_id: str, window: str) -> tuple[OnChainSolver | None, str | None]:
    answer = await rpc.view(solver_id, "get_solver_info", {})
    if not answer.found:
        return None, answer.why
    return OnChainSolver(source="rpc", solver_id=solver_id, window=window, info=answer.value), None  # type: ignore[arg-type]


def read_status(value: Any) -> tuple[Status | None, str | None]:
    """(status, failure reason) from what get_intent_status returned."""
    if isinstance(value, str):
        return _word(value), None
    if isinstance(value, dict) and isinstance(value.get("status"), (str, dict)):
        status, failure = read_status(value["status"])
        reason = value.get("reason") or value.get("failure") or failure
        return status, str(reason) if reason is not None else None
    if isinstance(value, dict) and len(value) == 1:  # serde's externally tagged enum: {"Failed": reason}
        (word, data), = value.items()
        reason = data.get("reason") if isinstance(data, dict) else data
        return _word(word), str(reason) if reason is not None else None
    return None, None


def _word(word: str) -> Status | None:
    return Status.__members__.get(word.strip().lower())
