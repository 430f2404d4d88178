"""GET /api/v1/ws: live intent updates over a WebSocket.

A client sends ``{"type": "subscribe", "intent_hash": H}`` or ``{"type": "subscribe", "account":
A}`` (optionally with ``"since_height": N`` to replay what changed above height N while it was
away) and ``{"type": "unsubscribe", ...}`` alike. The server answers ``subscribed`` /
``unsubscribed`` (with the ``session`` id) and pushes ``{"type": "intent_update", "intent_hash",
"status", "details", "block_height", "seq", "timestamp"}``: the current state on subscribing,
then every committed change. ``seq`` counts every message the server sends in the session (1, 2,
3 ...), so a client can tell it missed nothing. Only committed data is pushed: changes come from
the commits feed (``invalidate.py``), after the caches were evicted, so a GET after a push is
never older.

Resume by seq: a session outlives its connection. When a client goes away (its socket closes or
the heartbeat finds it dead) the session stays ``RESUME_SECONDS``, still subscribed: changes
committed meanwhile are numbered and kept in its journal (its newest ``JOURNAL_BYTES`` of
messages). A client that reconnects and sends, as its first message, ``{"type": "subscribe",
..., "session": S, "since_seq": N}`` with N the last seq it received takes the session over: it
gets every message after N, in order, then ``subscribed`` and live pushes, all numbered on from
the old connection's seq, so the union of both connections is gapless and has no duplicate.
A session that expired, was closed by the server (1008/1009/1011), lives in another replica, or
whose journal no longer reaches back to N answers ``{"type": "error", "code": "resume_failed"}``:
subscribe afresh with ``since_height`` then.

Limits: ``MAX_SUBSCRIPTIONS`` per connection and ``MAX_MESSAGE_BYTES`` per client message. Close
codes: 1008 (policy: too many subscriptions, or a client that keeps sending what is not a
command), 1009 (message too big), 1011 (internal error), each with a reason.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import OrderedDict, deque
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
RESUME_SECONDS = 120.0
JOURNAL_BYTES = 128 * 1024  # per session: the newest messages that fit (always the last one)
MAX_DETACHED = 1000  # sessions kept for a resume at most; the longest detached go first


class TooManySubscriptions(Exception):
    """A subscribe past MAX_SUBSCRIPTIONS: the connection is closed with 1008."""


@dataclass(eq=False)
class Connection:
    """A session: its subscriptions, its seq and the journal of what it was sent. ``ws`` is the
    connection now carrying it; None while detached (waiting for a resume)."""

    ws: web.WebSocketResponse | None
    id: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    seq: int = 0
    hashes: set[str] = field(default_factory=set)
    accounts: set[str] = field(default_factory=set)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    journal: deque[tuple[int, str]] = field(default_factory=deque)
    journal_bytes: int = 0
    detached_at: float | None = None

    async def send(self, message: dict[str, Any]) -> None:
        await self.send_encoded(orjson.dumps(message).decode())

    async def send_encoded(self, body: str) -> None:
        """Send a JSON object (``body``, encoded) with this session's next ``seq`` added: a push
        to many sessions encodes the message once."""
        # One sender at a time, so seq order is send order. Every message is journaled before it
        # is sent: one lost with the connection is replayed on resume.
        async with self.lock:
            self.seq += 1
            text = f'{body[:-1]},"seq":{self.seq}}}' if len(body) > 2 else f'{{"seq":{self.seq}}}'
            self._journal(text)
            if self.ws is not None:
                await self.ws.send_str(text)

    def _journal(self, text: str) -> None:
        self.journal.append((self.seq, text))
        self.journal_bytes += len(text)
        while self.journal_bytes > JOURNAL_BYTES and len(self.journal) > 1:
            self.journal_bytes -= len(self.journal.popleft()[1])

    def replayable(self, since_seq: int) -> bool:
        """Whether the journal holds every message after ``since_seq``."""
        if not 0 <= since_seq <= self.seq:
            return False
        oldest = self.journal[0][0] if self.journal else self.seq + 1
        return since_seq >= oldest - 1

    async def adopt(self, ws: web.WebSocketResponse, since_seq: int) -> None:
        """Carry on over ``ws``: first every message after ``since_seq``, then what comes."""
        async with self.lock:
            old, self.ws, self.detached_at = self.ws, ws, None
            for seq, text in list(self.journal):
                if seq > since_seq:
                    await ws.send_str(text)
        if old is not None and old is not ws:  # a half-open connection the client gave up on
            await old.close(code=WSCloseCode.OK, message=b"session resumed on another connection")


class Hub:
    """Who listens to what, and the pushes."""

    def __init__(self, store: Store, clock: Any = time.monotonic):
        self.store = store
        self.connections: set[Connection] = set()  # attached and detached sessions
        self.detached: OrderedDict[str, Connection] = OrderedDict()  # id -> session, oldest first
        self._clock = clock

    @property
    def listening(self) -> bool:
        return any(c.hashes or c.accounts for c in self.connections)

    def detach(self, conn: Connection, ws: web.WebSocketResponse, resumable: bool) -> None:
        """``ws`` closed: keep its session for a resume (or drop it)."""
        if conn.ws is not ws:
            return  # the session moved to another connection already
        conn.ws = None
        if not resumable:
            self.connections.discard(conn)
            return
        conn.detached_at = self._clock()
        self.detached[conn.id] = conn
        self.expire()

    def resume(self, session: str) -> Connection | None:
        self.expire()
        conn = self.detached.pop(session, None)
        if conn is None:
            conn = next((c for c in self.connections if c.id == session and c.ws is not None), None)
        return conn

    def expire(self) -> None:
        now = self._clock()
        while self.detached:
            oldest = next(iter(self.detached.values()))
            if len(self.detached) <= MAX_DETACHED and now - (oldest.detached_at or now) < RESUME_SECONDS:
                break
            self.detached.popitem(last=False)
            self.connections.discard(oldest)

    async def changed(self, pairs: list[tuple[str, str]]) -> None:
        """Push the new state of each changed intent to its subscribers (called by the commits
        follower after it evicted the caches); detached sessions journal it for their resume."""
        self.expire()
        if not self.listening:
            return
        any_accounts = any(c.accounts for c in self.connections)
        for contract, intent_id in pairs:
            if not any_accounts and not any(intent_id in c.hashes for c in self.connections):
                continue
            intent = await asyncio.to_thread(queries.get_intent, self.store, intent_id, contract)
            if intent is None:
                continue
            body = orjson.dumps(update_message(intent)).decode()
            for conn in list(self.connections):
                if intent_id in conn.hashes or conn.accounts.intersection(intent.accounts):
                    await self._push(conn, body)

    async def _push(self, conn: Connection, body: str) -> None:
        try:
            await conn.send_encoded(body)
            metrics.WS_PUSHES.inc()
        except (ConnectionError, RuntimeError):
            pass  # closing: the message is journaled, and its handler detaches the session


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
    resumable = True  # False once the server closes the connection for a reason of its own
    try:
        async for msg in ws:
            if msg.type == WSMsgType.ERROR:
                break
            if msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                continue
            if len(msg.data.encode() if isinstance(msg.data, str) else msg.data) > MAX_MESSAGE_BYTES:
                resumable = False
                await ws.close(code=WSCloseCode.MESSAGE_TOO_BIG,
                               message=f"messages are at most {MAX_MESSAGE_BYTES} bytes".encode())
                break
            ok, conn = await _command(hub, conn, ws, msg.data)
            bad = 0 if ok else bad + 1
            if bad >= MAX_BAD_MESSAGES:
                resumable = False
                await ws.close(code=WSCloseCode.POLICY_VIOLATION, message=b"too many invalid messages")
                break
    except TooManySubscriptions:
        resumable = False
        await ws.close(code=WSCloseCode.POLICY_VIOLATION, message=f"more than {MAX_SUBSCRIPTIONS} subscriptions".encode())
    except Exception:
        resumable = False
        log.exception("websocket failed")
        await ws.close(code=WSCloseCode.INTERNAL_ERROR, message=b"internal error")
    finally:
        hub.detach(conn, ws, resumable)
        metrics.WS_CONNECTIONS.dec()
    return ws


async def _command(hub: Hub, conn: Connection, ws: web.WebSocketResponse, data: str | bytes
                   ) -> tuple[bool, Connection]:
    """Carry out one client message: (False when it was not a valid command and an error was
    sent, the session the connection carries from now on)."""
    try:
        msg = orjson.loads(data)
    except orjson.JSONDecodeError:
        return await _error(conn, "messages are JSON objects"), conn
    if not isinstance(msg, dict) or msg.get("type") not in ("subscribe", "unsubscribe"):
        return await _error(conn, 'send {"type": "subscribe" | "unsubscribe", "intent_hash" | "account": ...}'), conn
    target = _target(msg)
    if isinstance(target, str):
        return await _error(conn, target), conn
    kind, value = target
    if msg["type"] == "unsubscribe":
        (conn.hashes if kind == "intent_hash" else conn.accounts).discard(value)
        await conn.send({"type": "unsubscribed", kind: value, "session": conn.id})
        return True, conn
    since = msg.get("since_height")
    if since is not None and not _whole(since):
        return await _error(conn, "since_height is a block height (a whole number >= 0)"), conn
    fresh = True
    if "since_seq" in msg or "session" in msg:
        resumed = await _resume(hub, conn, ws, msg)
        if isinstance(resumed, str):
            return await _error(conn, resumed, "resume_failed"), conn
        conn, fresh = resumed, False
    chosen = conn.hashes if kind == "intent_hash" else conn.accounts
    new = value not in chosen
    if new and len(conn.hashes) + len(conn.accounts) >= MAX_SUBSCRIPTIONS:
        raise TooManySubscriptions
    chosen.add(value)
    await conn.send({"type": "subscribed", kind: value, "session": conn.id})
    if fresh or new:  # a resumed subscription's state came with the replay
        await _current(hub, conn, kind, value, since)
    return True, conn


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


async def _resume(hub: Hub, conn: Connection, ws: web.WebSocketResponse, msg: dict[str, Any]) -> Connection | str:
    """The session ``msg`` names, now carried by ``ws`` and replayed after ``since_seq``; or why not."""
    session, since_seq = msg.get("session"), msg.get("since_seq")
    if not isinstance(session, str) or not _whole(since_seq):
        return "a resume names the session (from subscribed) and since_seq, the last seq received (>= 0)"
    if conn.seq or conn.hashes or conn.accounts:
        return "resume a session with the first message of a connection"
    old = hub.resume(session)
    if old is None:
        return (f"session {session[:40]} is unknown here (expired after {RESUME_SECONDS:.0f} s, closed by the "
                "server, or on another replica): subscribe with since_height instead")
    if not old.replayable(since_seq):
        if old.ws is None:  # still resumable, from a later seq
            hub.detached[old.id] = old
        return (f"session {session[:40]} cannot replay from seq {since_seq} (it is at seq {old.seq} and keeps "
                f"its newest {JOURNAL_BYTES // 1024} KiB of messages): subscribe with since_height instead")
    hub.connections.discard(conn)
    try:
        await old.adopt(ws, since_seq)
    except (ConnectionError, RuntimeError):
        hub.detach(old, ws, resumable=True)  # this connection died during the replay: keep the session
        raise
    return old


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


async def _error(conn: Connection, message: str, code: str | None = None) -> bool:
    await conn.send({"type": "error", "message": message, **({"code": code} if code else {})})
    return False
