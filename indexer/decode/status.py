"""Execution outcome statuses -> ('success' | 'failure', failure message, return value)."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import orjson

SUCCESS = "success"
FAILURE = "failure"


@dataclass(slots=True, frozen=True)
class Status:
    ok: bool
    failure: str = ""
    value_b64: str | None = None  # SuccessValue payload, when the receipt returned one

    @property
    def label(self) -> str:
        return SUCCESS if self.ok else FAILURE

    def value_json(self) -> Any:
        """The returned value decoded as JSON, or None when there is none or it is not JSON."""
        if not self.value_b64:
            return None
        try:
            return orjson.loads(base64.b64decode(self.value_b64))
        except (ValueError, orjson.JSONDecodeError):
            return None


def _compact(obj: Any) -> str:
    return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS).decode()


def failure_message(failure: Any) -> str:
    """A readable message: the contract's panic text verbatim where there is one.

    ``{"ActionError": {"kind": {"FunctionCallError": {"ExecutionError": "Smart contract panicked: x"}}}}``
    gives ``"Smart contract panicked: x"``; other errors give ``"<Kind>: <compact JSON>"``.
    """
    if isinstance(failure, dict):
        if "ActionError" in failure:
            kind = (failure["ActionError"] or {}).get("kind")
            if isinstance(kind, dict) and "FunctionCallError" in kind:
                fce = kind["FunctionCallError"]
                if isinstance(fce, dict) and isinstance(fce.get("ExecutionError"), str):
                    return fce["ExecutionError"]
                return f"FunctionCallError: {_compact(fce)}"
            if isinstance(kind, dict) and len(kind) == 1:
                name, detail = next(iter(kind.items()))
                return f"{name}: {_compact(detail)}"
            return f"ActionError: {_compact(kind)}"
        if len(failure) == 1:
            name, detail = next(iter(failure.items()))
            return f"{name}: {_compact(detail)}"
    return _compact(failure)


def parse_status(status: Any) -> Status:
    """Every status form of the Lake: SuccessValue, SuccessReceiptId, Failure, "Unknown"."""
    if isinstance(status, dict):
        if "SuccessValue" in status:
            return Status(True, value_b64=status["SuccessValue"] or "")
        if "SuccessReceiptId" in status:
            return Status(True)
        if "Failure" in status:
            return Status(False, failure_message(status["Failure"]))
    if status == "Unknown":
        return Status(False, "Unknown")
    raise ValueError(f"unrecognised execution status: {_compact(status)[:200]}")
