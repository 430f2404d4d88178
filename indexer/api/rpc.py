"""View calls over NEAR JSON-RPC: the last resort for a workshop intent or solver the store does not
know yet (``--rpc-url``).

A view is ``query`` / ``call_function`` at ``final`` finality; the node answers the method's return
value as a JSON array of bytes in ``result.result``. The answer is one of three things:

- found: the value, JSON-decoded;
- absent: the method returned ``null`` (an ``Option`` that is ``None``) or the contract panicked
  (e.g. "Intent not found"): the contract's answer, not a node failure;
- a node failure (``NodeFailure``): unreachable, a 5xx, a timeout, or an error that is not the
  contract's (unknown account, no such method, node not synced). Transient ones are retried,
  bounded (``rpc_attempts``, short exponential waits); what remains is a 502, or a 504 for a timeout.

Answers (absent ones too, so a flood of unknown ids does not become a flood of node requests) are
kept ``rpc_cache_ttl`` seconds in process. The store is always asked first, so this cache never
hides an intent a commit brought.
"""

from __future__ import annotations

import asyncio
import base64
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson
import structlog
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential

from indexer.api import metrics
from indexer.api.cache import LocalCache

log = structlog.get_logger(__name__)

# JSON-RPC error causes worth another try: the node is busy or behind, not wrong.
TRANSIENT_CAUSES = frozenset({"TIMEOUT_ERROR", "NO_SYNCED_BLOCKS", "UNKNOWN_BLOCK", "INTERNAL_ERROR",
                              "NOT_SYNCED_YET"})


class NodeFailure(Exception):
    """The node did not give the contract's answer; ``timeout`` tells a 504 from a 502."""

    def __init__(self, detail: str, *, timeout: bool = False, transient: bool = False):
        super().__init__(detail)
        self.detail, self.timeout, self.transient = detail, timeout, transient


@dataclass(frozen=True)
class Answer:
    found: bool
    value: Any = None
    why: str | None = None  # for an absent value: null, or the contract's panic text


class ViewCaller:
    def __init__(self, url: str, timeout: float, attempts: int, cache_ttl: float, cache_size: int = 10_000):
        self.url, self.attempts = url, attempts
        self.timeout = aiohttp.ClientTimeout(total=timeout)
        self.cache = LocalCache(cache_size, cache_ttl)
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def view(self, account_id: str, method: str, args: dict[str, Any]) -> Answer:
        key = orjson.dumps([account_id, method, args], option=orjson.OPT_SORT_KEYS).decode()
        cached = self.cache.get(key)
        if cached is not None:
            metrics.CACHE.labels("rpc", "hit").inc()
            return Answer(**orjson.loads(cached))
        metrics.CACHE.labels("rpc", "miss").inc()
        answer = await self._retrying(account_id, method, args)
        self.cache.put(key, orjson.dumps(answer.__dict__))
        return answer

    async def _retrying(self, account_id: str, method: str, args: dict[str, Any]) -> Answer:
        retrying = AsyncRetrying(stop=stop_after_attempt(self.attempts), reraise=True,
                                 wait=wait_exponential(multiplier=0.05, max=0.5),
                                 retry=retry_if_exception(lambda e: isinstance(e, NodeFailure) and e.transient))
        async for attempt in retrying:
            with attempt:
                return await self._once(account_id, method, args)
        raise AssertionError("unreachable: tenacity reraises the last failure")  # pragma: no cover

    async def _once(self, account_id: str, method: str, args: dict[str, Any]) -> Answer:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self.timeout)
        body = {"jsonrpc": "2.0", "id": "near-intents-indexer", "method": "query",
                "params": {"request_type": "call_function", "finality": "final", "account_id": account_id,
                           "method_name": method, "args_base64": base64.b64encode(orjson.dumps(args)).decode()}}
        try:
            async with self._session.post(self.url, json=body) as resp:
                if resp.status >= 500:
                    raise NodeFailure(f"the node answered HTTP {resp.status}", transient=True)
                if resp.status != 200:
                    raise NodeFailure(f"the node answered HTTP {resp.status}")
                reply = orjson.loads(await resp.read())
        except asyncio.TimeoutError:
            raise NodeFailure(f"the node did not answer within {self.timeout.total} s", timeout=True,
                              transient=True) from None
        except aiohttp.ClientError as exc:
            raise NodeFailure(f"the node is unreachable: {type(exc).__name__}", transient=True) from None
        except orjson.JSONDecodeError:
            raise NodeFailure("the node's answer is not JSON") from None
        return _answer(reply, account_id, method)


def _answer(reply: Any, account_id: str, method: str) -> Answer:
    if not isinstance(reply, dict):
        raise NodeFailure("the node's answer is not a JSON-RPC response")
    if reply.get("error") is not None:
        return _error(reply["error"], account_id, method)
    result = reply.get("result")
    if not isinstance(result, dict):
        raise NodeFailure("the node's answer has no result")
    if "error" in result:  # older nodes put a failed view's error inside the result
        return _vm_error(str(result["error"]), account_id, method)
    raw = result.get("result")
    if not isinstance(raw, list) or not all(isinstance(b, int) and 0 <= b < 256 for b in raw):
        raise NodeFailure("the node's result is not a byte array")
    try:
        value = orjson.loads(bytes(raw)) if raw else None
    except orjson.JSONDecodeError:
        raise NodeFailure(f"{account_id}.{method} did not return JSON") from None
    return Answer(True, value) if value is not None else Answer(False, why=f"{account_id}.{method} returned null")


def _error(error: Any, account_id: str, method: str) -> Answer:
    error = error if isinstance(error, dict) else {"message": str(error)}
    cause = error.get("cause") if isinstance(error.get("cause"), dict) else {}
    name = str(cause.get("name") or error.get("name") or "")  # nearcore's structured errors name a cause
    info = cause.get("info") if isinstance(cause.get("info"), dict) else {}
    if name == "CONTRACT_EXECUTION_ERROR":
        return _vm_error(str(info.get("vm_error") or error.get("data") or ""), account_id, method)
    if name in TRANSIENT_CAUSES:
        raise NodeFailure(f"the node could not answer now ({name})", transient=True)
    if name == "UNKNOWN_ACCOUNT":
        raise NodeFailure(f"the node knows no account {account_id}: is --rpc-url on the right network?")
    if name == "NO_CONTRACT_CODE":
        raise NodeFailure(f"{account_id} has no contract deployed")
    raise NodeFailure(f"the node refused the view call: {name or error.get('message') or 'unknown error'}")


def _vm_error(text: str, account_id: str, method: str) -> Answer:
    if "MethodNotFound" in text:
        raise NodeFailure(f"{account_id} has no view method {method}")
    # A panic is the contract's own answer ("Intent not found" and the like).
    return Answer(False, why=f"{account_id}.{method} panicked: {_panic_message(text)}")


def _panic_message(text: str) -> str:
    marker = 'panic_msg: "'
    if marker in text:
        return text.split(marker, 1)[1].split('"', 1)[0][:300]
    return text[:300]
