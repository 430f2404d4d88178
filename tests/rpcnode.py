"""A stand-in NEAR JSON-RPC node (the one allowed stand-in: a node cannot run here): an aiohttp server
on loopback that answers ``query`` / ``call_function`` in nearcore's shapes, with scripted views,
failures and hangs, and counts the requests it got.
"""

from __future__ import annotations

import asyncio
import base64
import threading
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest

from clitools import free_port

BLOCK = {"block_height": 187_000_123, "block_hash": "4qkA4sUUG8opjH5Q9bL5mWJTnfR4ech879Db1BZXbx6P"}


class Panic(Exception):
    """A view that panics (``env::panic_str``); ``legacy``: the older nodes' shape, the error inside
    ``result`` instead of a JSON-RPC error."""

    def __init__(self, message: str, legacy: bool = False):
        super().__init__(message)
        self.message, self.legacy = message, legacy


def _vm_error(text: str) -> str:
    return f'wasm execution failed with error: FunctionCallError(HostError(GuestPanic {{ panic_msg: "{text}" }}))'


def rpc_error(name: str, info: dict[str, Any] | None = None, data: str = "") -> dict[str, Any]:
    return {"name": "HANDLER_ERROR", "cause": {"name": name, "info": info or {}}, "code": -32000,
            "message": "Server error", "data": data}


class RpcNode:
    def __init__(self) -> None:
        self.views: dict[tuple[str, str], Callable[[dict[str, Any]], Any]] = {}
        self.requests: list[dict[str, Any]] = []
        self.fail_with: list[int] = []  # HTTP statuses answered to the next requests, one each
        self.hang = False
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self._release = asyncio.Event()
        self.runner = asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(timeout=30)

    async def _start(self) -> Any:
        from aiohttp import web

        app = web.Application()
        app.router.add_post("/", self._handle)
        runner = web.AppRunner(app)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", self.port).start()
        return runner

    async def _handle(self, request: Any) -> Any:
        from aiohttp import web

        body = await request.json()
        self.requests.append(body)
        if self.hang:
            await self._release.wait()
        if self.fail_with:
            return web.Response(status=self.fail_with.pop(0), text="upstream unavailable")
        params = body["params"]
        assert body["method"] == "query" and params["request_type"] == "call_function", body
        args = orjson.loads(base64.b64decode(params["args_base64"]))
        view = self.views.get((params["account_id"], params["method_name"]))
        if view is None:
            error = rpc_error("UNKNOWN_ACCOUNT", {"requested_account_id": params["account_id"], **BLOCK})
            return web.json_response({"jsonrpc": "2.0", "error": error, "id": body["id"]})
        try:
            value = view(args)
        except Panic as exc:
            if exc.legacy:
                result = {"error": _vm_error(exc.message), "logs": [], **BLOCK}
                return web.json_response({"jsonrpc": "2.0", "result": result, "id": body["id"]})
            error = rpc_error("CONTRACT_EXECUTION_ERROR", {"vm_error": _vm_error(exc.message), **BLOCK},
                              _vm_error(exc.message))
            return web.json_response({"jsonrpc": "2.0", "error": error, "id": body["id"]})
        result = {"result": list(orjson.dumps(value)), "logs": [], **BLOCK}
        return web.json_response({"jsonrpc": "2.0", "result": result, "id": body["id"]})

    def calls(self) -> list[tuple[str, str, dict[str, Any]]]:
        return [(r["params"]["account_id"], r["params"]["method_name"],
                 orjson.loads(base64.b64decode(r["params"]["args_base64"]))) for r in self.requests]

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self._release.set)
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(timeout=30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=30)
        self.loop.close()


@pytest.fixture
def rpc_node() -> Iterator[RpcNode]:
    node = RpcNode()
    yield node
    node.close()
