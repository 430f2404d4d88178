"""Helpers of the API tests: a real redis-server on a free loopback port, the API app listening on
loopback in a thread of its own, and a real aiohttp client talking to it over TCP.

The app runs in its own event loop thread so that plain (sync) tests, hypothesis among them, can
send requests; the store is the session's embedded chDB (one process, one path).
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import orjson
import pytest

from clitools import free_port

MS = 1_700_000_000_000  # a block time in ms, for commits rows
UPDATE_COLUMNS = ("block_height", "block_timestamp", "update_index", "contract_id", "receiver_id", "intent_id",
                  "status", "failure", "signer_id", "solver_id", "kinds", "tokens", "amounts", "referral", "action",
                  "deadline", "receipt_id", "tx_hash", "method_name", "gas_burnt", "accounts")
LOOKUP_COLUMNS = ("block_height", "block_timestamp", "update_index", "kind", "key", "contract_id", "receiver_id",
                  "intent_id", "status")


class RedisServer:
    """redis-server on 127.0.0.1, no persistence; stopped by ``stop`` (this process started it)."""

    def __init__(self, workdir: Path):
        if shutil.which("redis-server") is None:
            pytest.fail("redis-server is not installed (apt-get install redis-server; .ci/run installs it)")
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        workdir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(workdir)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self._wait()

    def _wait(self, timeout: float = 30) -> None:
        import redis

        client = redis.Redis(port=self.port, socket_timeout=1)
        deadline = time.monotonic() + timeout
        while True:
            try:
                client.ping()
                return
            except redis.exceptions.ConnectionError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise AssertionError("redis-server did not start") from None
                time.sleep(0.05)
            finally:
                client.close()

    def flush(self) -> None:
        import redis

        client = redis.Redis(port=self.port)
        client.flushall()
        client.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    redis_server.flush()
    return redis_server.url


class Response:
    def __init__(self, status: int, headers: dict[str, str], body: bytes):
        self.status, self.headers, self.raw = status, headers, body

    @property
    def json(self) -> Any:
        return orjson.loads(self.raw)

    def __repr__(self) -> str:
        return f"<{self.status} {self.raw[:300]!r}>"


class ApiServer:
    """The API app on a free loopback port, served by an event loop in a thread."""

    def __init__(self, settings: Any, store: Any, now: Callable[[], datetime] | None = None):
        from indexer.api.app import start

        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.port = settings.api_port
        self.base = f"http://127.0.0.1:{self.port}"
        self.runner = self._run(start(settings, store, now))
        self.session = self._run(self._session())

    async def _session(self) -> Any:
        import aiohttp

        return aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60))

    def _run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=120)

    def request(self, method: str, path: str, **kwargs: Any) -> Response:
        async def go() -> Response:
            async with self.session.request(method, self.base + path, **kwargs) as resp:
                return Response(resp.status, dict(resp.headers), await resp.read())

        return self._run(go())

    def get(self, path: str, **kwargs: Any) -> Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Response:
        return self.request("POST", path, **kwargs)

    def close(self) -> None:
        self._run(self.session.close())
        self._run(self.runner.cleanup())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=30)
        self.loop.close()


def api_settings(**overrides: Any) -> Any:
    from indexer.config import load_settings

    return load_settings(api_port=free_port(), **overrides)


@pytest.fixture
def serve() -> Iterator[Callable[..., ApiServer]]:
    """``serve(store, now=..., **settings)`` starts an API; every one started is stopped after the test."""
    started: list[ApiServer] = []

    def start(store: Any, now: Callable[[], datetime] | None = None, **overrides: Any) -> ApiServer:
        server = ApiServer(api_settings(**overrides), store, now)
        started.append(server)
        return server

    yield start
    for server in started:
        server.close()


def update(height: int, intent_id: str, status: str, *, contract: str = "intents.near", ts: float | None = None,
           index: int = 0, failure: str = "", signer: str = "", solver: str = "", kinds: list[str] | None = None,
           tokens: list[str] | None = None, amounts: list[str] | None = None, referral: str = "", action: str = "",
           deadline: str = "", receipt: str | None = None, tx: str = "", method: str = "execute_intents",
           gas: int = 0, accounts: list[str] | None = None) -> list[Any]:
    """One intent_updates row (block time: 1.7e9 s + height unless ``ts``); ``accounts`` as the
    decoder writes them: the signer, then whom the intent moves tokens for."""
    moved = list(dict.fromkeys(a for a in ([signer] if signer else []) + (accounts or []) if a))
    return [height, ts if ts is not None else 1_700_000_000 + height, index, contract, contract, intent_id, status,
            failure, signer, solver, kinds or [], tokens or [], amounts or [], referral, action, deadline,
            receipt or f"r{height}-{index}", tx, method, gas, moved]


def insert_updates(store: Any, rows: list[list[Any]]) -> None:
    """The rows, and their intent_lookups rows as the decoder derives them (decode/emit.py)."""
    store.insert_rows("intent_updates", UPDATE_COLUMNS, rows)
    lookups = []
    for r in rows:
        u = dict(zip(UPDATE_COLUMNS, r))
        keys = [("account", a) for a in u["accounts"]] + [("contract", u["contract_id"])]
        keys += [("solver", u["solver_id"])] if u["solver_id"] else []
        keys += [("tx", u["tx_hash"])] if u["tx_hash"] else []
        lookups += [[u["block_height"], u["block_timestamp"], u["update_index"], kind, key, u["contract_id"],
                     u["receiver_id"], u["intent_id"], u["status"]] for kind, key in keys]
    store.insert_rows("intent_lookups", LOOKUP_COLUMNS, lookups)


def commit(store: Any, stream: str, seq: int, owners: list[str], low: int, high: int,
           times_ms: tuple[int, int] = (MS, MS)) -> None:
    """A committed batch in the change feed, as a writer leaves it: the commits row, then the
    stream's state at that seq. ``times_ms``: the block times the batch spans."""
    from indexer.store import commits

    commits.append(store, commits.Commit(stream, seq, tuple(owners), low, high, times_ms[0], times_ms[1],
                                         {"intent_updates": 1}, False), token=uuid.uuid4().hex)
    store.insert_rows("streams", ("stream", "version", "owners", "height", "commit_seq"),
                      [[stream, seq, owners, high, seq]])


def fixed_clock(when: str = "2026-01-01T00:00:00Z") -> Callable[[], datetime]:
    at = datetime.fromisoformat(when.replace("Z", "+00:00")).astimezone(timezone.utc)
    return lambda: at


def wait_until(predicate: Callable[[], Any], timeout: float = 60.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not met in {timeout}s")
        time.sleep(0.05)


class WsClient:
    """A real aiohttp WebSocket client to an ApiServer, driven from sync tests."""

    def __init__(self, server: ApiServer, path: str = "/api/v1/ws"):
        self.server = server
        self.ws = server._run(server.session.ws_connect(server.base.replace("http", "ws") + path))

    def send(self, message: Any) -> None:
        self.server._run(self.ws.send_str(message if isinstance(message, str) else orjson.dumps(message).decode()))

    def receive(self, timeout: float = 30) -> Any:
        """The next message as JSON, or ("closed", code, reason) when the server closed."""
        import aiohttp

        msg = self.server._run(self.ws.receive(timeout=timeout))
        if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING):
            return ("closed", self.ws.close_code, msg.extra)
        return orjson.loads(msg.data)

    def close(self) -> None:
        self.server._run(self.ws.close())
