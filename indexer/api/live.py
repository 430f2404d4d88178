"""GET /api/v1/ws: live intent updates over a WebSocket.

A client sends ``{"type": "subscribe", "intent_hash": H}`` or ``{"type": "subscribe", "account":
A}`` (optionally with ``"since_height": N`` to replay what changed above height N while it was
away) and ``{"type": "unsubscribe", ...}`` alike. The server answers ``subscribed`` /
``unsubscribed`` and pushes ``{"type": "intent_update", "intent_hash", "status", "details",
"block_height", "seq", "timestamp"}``: the current state on subscribing, then every committed
change. ``seq`` counts every message the server sends on the connection (1, 2, 3 ...), so a
client can tell it missed nothing. Only committed data is pushed: changes come from the commits
feed (``invalidate.py``), after the caches were evicted, so a GET after a push is never older.

Limits: ``MAX_SUBSCRIPTIONS`` per connection and ``MAX_MESSAGE_BYTES`` per client message. Close
codes: 1008 (policy: too many subscriptions, or a client that keeps sending what is not a
command), 1009 (message too big), 1011 (internal error), each with a reason.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import orjson
import structlog
from aiohttp import WSCloseCode, WSMsgType, web

from indexer.api import metrics, queries
from indexer.api.models import Intent
from indexer.config import account_problem
from indexer.store.client import Store

log = structlog.get_logger(__name__)

MAX_SUBSCRIPTIONS = 100
MAX_MESSAGE_BYTES = 4096
MAX_BAD_MESSAGES = 10
HEARTBEAT_SECONDS = 20.0
REPLAY_LIMIT = 100


class TooManySubscriptions(Exception):
    """A subscribe past MAX_SUBSCRIPTIONS: the connection is closed with 1008."""


@dataclass(eq=False)
class Connection:
    ws: web.WebSocketResponse
    seq: int = 0
    hashes: set[str] = field(default_factory=set)
    accounts: set[str] = field(default_factory=set)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def send(self, message: dict[str, Any]) -> None:
        # One sender at a time, so seq order is send order.
        async with self.lock:
            self.seq += 1
            await self.ws.send_str(orjson.dumps({**message, "seq": self.seq}).decode())


class Hub:
    """Who listens to what, and the pushes."""

    def __init__(self, store: Store):
        self.store = store
        self.connections: set[Connection] = set()

    @property
    def listening(self) -> bool:
        return any(c.hashes or c.accounts for c in self.connections)

    async def changed(self, pairs: list[tuple[str, str]]) -> None:
        """Push the new state of each changed intent to its subscribers (called by the commits
        follower after it evicted the caches)."""
        if not self.listening:
            return
        any_accounts = any(c.accounts for c in self.connections)
        for contract, intent_id in pairs:
            if not any_accounts and not any(intent_id in c.hashes for c in self.connections):
                continue
            intent = await asyncio.to_thread(queries.get_intent, self.store, intent_id, contract)
            if intent is None:
                continue
            for conn in list(self.connections):
                if intent_id in conn.hashes or conn.accounts.intersection(intent.accounts):
                    await self._push(conn, intent)

    async def _push(self, conn: Connection, intent: Intent) -> None:
        try:
            await conn.send(update_message(intent))
            metrics.WS_PUSHES.inc()
        except (ConnectionError, RuntimeError):
            self.connections.discard(conn)  # closing; its handler cleans up


def update_message(intent: Intent) -> dict[str, Any]:
    return {"type": "intent_update", "intent_hash": intent.intent_hash, "status": intent.status.value,
            "details": intent.model_dump(mode="json"), "block_height": intent.last_block_height,
            "timestamp": time.time()}


async def handle(request: web.Request, hub: Hub) -> web.WebSocketResponse:
    # Frames up to a MiB are read, so that a message over MAX_MESSAGE_BYTES gets a proper closing
    # handshake with 1009 and its reason (beyond that aiohttp drops the connection itself).
    ws = web.WebSocketResponse(heartbeat=HEARTBEAT_SECONDS, max_msg_size=2**20)
    await ws.prepare(request)
    conn = Connection(ws)
    hub.connections.add(conn)
    metrics.WS_CONNECTIONS.inc()
    bad = 0
    try:
        async for msg in ws:
            if msg.type == WSMsgType.ERROR:
                break
            if msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                continue
            if len(msg.data.encode() if isinstance(msg.data, str) else msg.data) > MAX_MESSAGE_BYTES:
                await ws.close(code=WSCloseCode.MESSAGE_TOO_BIG,
                               message=f"messages are at most {MAX_MESSAGE_BYTES} bytes".encode())
                break
            ok = await _command(hub, conn, msg.data)
            bad = 0 if ok else bad + 1
            if bad >= MAX_BAD_MESSAGES:
                await ws.close(code=WSCloseCode.POLICY_VIOLATION, message=b"too many invalid messages")
                break
    except TooManySubscriptions:
        await ws.close(code=WSCloseCode.POLICY_VIOLATION, message=f"more than {MAX_SUBSCRIPTIONS} subscriptions".encode())
    except Exception:
        log.exception("websocket failed")
        await ws.close(code=WSCloseCode.INTERNAL_ERROR, message=b"internal error")
    finally:
        hub.connections.discard(conn)
        metrics.WS_CONNECTIONS.dec()
    return ws


async def _command(hub: Hub, conn: Connection, data: str | bytes) -> bool:
    """Carry out one client message; False when it was not a valid command (an error is sent)."""
    try:
        msg = orjson.loads(data)
    except orjson.JSONDecodeError:
        return await _error(conn, "messages are JSON objects")
    if not isinstance(msg, dict) or msg.get("type") not in ("subscribe", "unsubscribe"):
        return await _error(conn, 'send {"type": "subscribe" | "unsubscribe", "intent_hash" | "account": ...}')
    target = _target(msg)
    if isinstance(target, str):
        return await _error(conn, target)
    kind, value = target
    chosen = conn.hashes if kind == "intent_hash" else conn.accounts
    if msg["type"] == "unsubscribe":
        chosen.discard(value)
        await conn.send({"type": "unsubscribed", kind: value})
        return True
    since = msg.get("since_height")
    if since is not None and (not isinstance(since, int) or isinstance(since, bool) or since < 0):
        return await _error(conn, "since_height is a block height (a whole number >= 0)")
    if value not in chosen and len(conn.hashes) + len(conn.accounts) >= MAX_SUBSCRIPTIONS:
        raise TooManySubscriptions
    chosen.add(value)
    await conn.send({"type": "subscribed", kind: value})
    await _current(hub, conn, kind, value, since)
    return True


def _target(msg: dict[str, Any]) -> tuple[str, str] | str:
    from indexer.api.app import INTENT_ID

    hash_, account = msg.get("intent_hash"), msg.get("account")
    if (hash_ is None) == (account is None):
        return "name exactly one of intent_hash or account"
    if hash_ is not None:
        if not isinstance(hash_, str) or not INTENT_ID.fullmatch(hash_):
            return "intent_hash is a dip4 intent hash or a workshop intent id"
        return "intent_hash", hash_
    if not isinstance(account, str) or account_problem(account):
        return "account is not a NEAR account id"
    return "account", account


async def _current(hub: Hub, conn: Connection, kind: str, value: str, since: int | None) -> None:
    """The state a new subscriber starts from: the intent's current state, or an account's intents
    changed above ``since_height`` (newest first, at most REPLAY_LIMIT)."""
    if kind == "intent_hash":
        intent = await asyncio.to_thread(queries.get_intent, hub.store, value)
        intents = [intent] if intent is not None and (since is None or intent.last_block_height > since) else []
    elif since is None:
        return
    else:
        intents = await asyncio.to_thread(queries.changed_since, hub.store, value, since, REPLAY_LIMIT)
    for intent in intents:
        await conn.send(update_message(intent))


async def _error(conn: Connection, message: str) -> bool:
    await conn.send({"type": "error", "message": message})
    return False
