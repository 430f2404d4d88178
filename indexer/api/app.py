"""The aiohttp application: routes under /api/v1, probes, metrics, and the middlewares that every
request passes (metrics, problem+json errors, CORS, rate limits).

Redis, the limiter and the cache-invalidation loop live in ``cleanup_ctx``: opened when the app
starts, closed (the loop cancelled and awaited) when it stops.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timezone
from typing import Any

import orjson
import structlog
from aiohttp import WSCloseCode, web

from indexer.api import metrics, onchain, queries
from indexer.api.backend import Redis
from indexer.api.cache import IntentCache, LocalCache
from indexer.api.live import Hub
from indexer.api.models import Percentiles, SolverStats, SolverWindow, Status, StatusStats, Throughput
from indexer.api.openapi import PROBLEM, document
from indexer.api.ratelimit import Limiter, LimiterUnavailable, client_id
from indexer.api.rpc import NodeFailure, ViewCaller
from indexer.api.validate import validate
from indexer.config import Settings, account_problem
from indexer.metrics import aiohttp_view as metrics_view
from indexer.store.client import Store

log = structlog.get_logger(__name__)

Clock = Callable[[], datetime]
SETTINGS = web.AppKey("settings", Settings)
STORE = web.AppKey("store", Store)
NOW = web.AppKey("now", Clock)
REDIS = web.AppKey("redis", Redis)  # absent without --redis-url
LIMITER = web.AppKey("limiter", Limiter)
CACHE = web.AppKey("cache", IntentCache)
TRUSTED = web.AppKey("trusted", list)
HUB = web.AppKey("hub", Hub)
RPC = web.AppKey("rpc", ViewCaller)  # absent without --rpc-url

INTENT_ID = re.compile(r"[A-Za-z0-9._:\-]{1,128}")
VALIDATE_MAX_BYTES = 256 * 1024
LIST_PARAMS = frozenset({"account", "solver", "status", "contract", "since", "until", "limit", "cursor"})
DEFAULT_PAGE = 50
# Rate-limit policy of each route (by name); routes not named here are not limited.
ROUTE_POLICY = {"intent": "reads", "intents": "reads", "validate": "validate", "ws": "reads", "solvers": "reads",
                "solver": "reads", "stats_status": "reads", "stats_throughput": "reads"}


class ApiError(Exception):
    """An answer other than 2xx, as RFC 9457 problem details."""

    def __init__(self, status: int, title: str, detail: str, headers: dict[str, str] | None = None):
        super().__init__(detail)
        self.status, self.title, self.detail, self.headers = status, title, detail, headers or {}


def problem(status: int, title: str, detail: str, headers: dict[str, str] | None = None) -> web.Response:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    return web.Response(status=status, body=orjson.dumps(body), content_type=PROBLEM, headers=headers)


def _route(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


@web.middleware
async def observe(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                  ) -> web.StreamResponse:
    """Requests by route and code, and their latency."""
    started = time.perf_counter()
    try:
        response = await handler(request)
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # what the inner middlewares did not turn into a response
        response = _problem_of(request, exc)
    route = _route(request)
    metrics.REQUESTS.labels(route, request.method, str(response.status)).inc()
    metrics.LATENCY.labels(route).observe(time.perf_counter() - started)
    return response


@web.middleware
async def errors(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                 ) -> web.StreamResponse:
    """Every error as application/problem+json; never a stack trace in a body."""
    try:
        return await handler(request)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        return _problem_of(request, exc)


def _problem_of(request: web.Request, exc: Exception) -> web.StreamResponse:
    if isinstance(exc, ApiError):
        return problem(exc.status, exc.title, exc.detail, exc.headers)
    if isinstance(exc, web.HTTPException):
        if exc.status < 400:
            raise exc
        detail = exc.text if exc.text and not exc.text.startswith(f"{exc.status}:") else exc.reason
        return problem(exc.status, exc.reason, detail, {k: v for k, v in exc.headers.items() if k.lower() == "allow"})
    log.error("request failed", route=_route(request), method=request.method, exc_info=exc)
    return problem(500, "Internal Server Error", "the request failed; the server logged why")


@web.middleware
async def cors(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
               ) -> web.StreamResponse:
    """CORS for the configured origins only; closed (no headers) by default."""
    allowed = request.app[SETTINGS].api_cors_origins
    origin = request.headers.get("Origin")
    ok = bool(origin) and ("*" in allowed or origin in allowed)
    if request.method == "OPTIONS" and ok and "Access-Control-Request-Method" in request.headers:
        response: web.StreamResponse = web.Response(status=204)
    else:
        response = await handler(request)
    if ok:
        response.headers["Access-Control-Allow-Origin"] = "*" if "*" in allowed else str(origin)
        response.headers["Vary"] = "Origin"
        response.headers["Access-Control-Expose-Headers"] = "RateLimit, RateLimit-Policy, Retry-After"
        if request.method == "OPTIONS":
            response.headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
            response.headers["Access-Control-Allow-Headers"] = f"Content-Type, {request.app[SETTINGS].api_key_header}"
            response.headers["Access-Control-Max-Age"] = "600"
    return response


@web.middleware
async def rate_limit(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                     ) -> web.StreamResponse:
    policy = ROUTE_POLICY.get(request.match_info.route.name or "")
    if policy is None or request.method == "OPTIONS":
        return await handler(request)
    app, settings = request.app, request.app[SETTINGS]
    who = client_id(request.remote, request.headers.get("X-Forwarded-For"),
                    request.headers.get(settings.api_key_header), app[TRUSTED])
    try:
        decision = await app[LIMITER].check(policy, who)
    except LimiterUnavailable as exc:
        raise ApiError(503, "Service Unavailable", str(exc), {"Retry-After": "1"}) from None
    if decision is None:  # fail-open while Redis is down
        return await handler(request)
    if not decision.allowed:
        raise ApiError(429, "Too Many Requests", f"rate limit {decision.item.amount} per "
                       f"{decision.item.get_expiry()} s exceeded; retry in {decision.reset_in} s", decision.headers())
    try:
        response = await handler(request)
    except ApiError as exc:
        exc.headers.update(decision.headers())
        raise
    response.headers.update(decision.headers())
    return response


def _json(body: bytes | dict[str, Any], status: int = 200) -> web.Response:
    return web.Response(status=status, body=body if isinstance(body, bytes) else orjson.dumps(body),
                        content_type="application/json")


async def _store_call(fn: Callable[..., Any], *args: Any) -> Any:
    """A store query off the event loop; an unreachable store is 503, not 500."""
    from clickhouse_connect.driver.exceptions import Error as ClickHouseError

    try:
        return await asyncio.to_thread(fn, *args)
    except (ClickHouseError, OSError) as exc:
        log.error("store query failed", error=str(exc).strip().splitlines()[0][:300] if str(exc) else repr(exc))
        raise ApiError(503, "Service Unavailable", "the store did not answer; try again shortly") from None


def _account_param(request: web.Request, name: str) -> str | None:
    value = request.query.get(name)
    if value is None:
        return None
    why = account_problem(value)
    if why:
        raise ApiError(400, "Bad Request", f"?{name}={value[:80]!r} is not a NEAR account id: {why}")
    return value


async def get_intent(request: web.Request) -> web.Response:
    intent_id = request.match_info["intent_hash"]
    if not INTENT_ID.fullmatch(intent_id):
        raise ApiError(400, "Bad Request", f"{intent_id[:80]!r} is not an intent hash (base58) or a workshop "
                                           "intent id (letters, digits and . _ : -, at most 128)")
    contract = _account_param(request, "contract")
    store = request.app[STORE]

    async def load() -> bytes | None:
        intent = await _store_call(queries.get_intent, store, intent_id, contract)
        return intent.model_dump_json().encode() if intent is not None else None

    body = await request.app[CACHE].get(f"{contract or ''}/{intent_id}", load)
    if body is not None:
        return _json(body)
    missing = f"no intent {intent_id} is in the store{' for ' + contract if contract else ''}"
    rpc, verifiers = request.app.get(RPC), onchain.workshop_verifiers(request.app[SETTINGS], contract)
    if rpc is None or not verifiers:
        raise ApiError(404, "Not Found", f"{missing}: it is unknown, or not indexed yet")
    found, misses = await _node_call(onchain.intent(rpc, verifiers, intent_id))
    if found is None:
        raise ApiError(404, "Not Found", f"{missing}, and on chain: {'; '.join(misses)}")
    return _json(found.model_dump_json().encode())


async def _node_call(call: Awaitable[Any]) -> Any:
    """A view call over --rpc-url; a node that fails is a 502, one that times out a 504."""
    try:
        return await call
    except NodeFailure as exc:
        log.warning("rpc view call failed", error=exc.detail, timeout=exc.timeout)
        if exc.timeout:
            raise ApiError(504, "Gateway Timeout", f"the NEAR RPC node did not answer in time: {exc.detail}") from None
        raise ApiError(502, "Bad Gateway", f"the NEAR RPC node failed: {exc.detail}") from None


def _time_param(request: web.Request, name: str) -> datetime | None:
    value = request.query.get(name)
    if value is None:
        return None
    try:
        if re.fullmatch(r"[0-9]{1,12}(\.[0-9]+)?", value):
            return datetime.fromtimestamp(float(value), timezone.utc)
        when = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return when if when.tzinfo else when.replace(tzinfo=timezone.utc)
    except (ValueError, OverflowError, OSError):
        raise ApiError(400, "Bad Request", f"?{name}={value[:80]!r} is not a time: use RFC 3339 "
                                           "(2026-01-05T00:00:00Z) or Unix seconds") from None


def _limit_param(request: web.Request) -> int:
    value, most = request.query.get("limit"), request.app[SETTINGS].api_max_page
    if value is None:
        return min(DEFAULT_PAGE, most)
    if not value.isdigit() or not 1 <= int(value) <= most:
        raise ApiError(400, "Bad Request", f"?limit={value[:20]!r}: give a whole number from 1 to {most}")
    return int(value)


async def list_intents(request: web.Request) -> web.Response:
    unknown = sorted(set(request.query) - LIST_PARAMS)
    if unknown:
        raise ApiError(400, "Bad Request", f"unknown parameter {unknown[0]!r}; use {', '.join(sorted(LIST_PARAMS))}")
    status = request.query.get("status")
    if status is not None and status not in Status.__members__:
        raise ApiError(400, "Bad Request", f"?status={status[:40]!r}: use one of {', '.join(Status.__members__)}")
    after = None
    if "cursor" in request.query:
        try:
            after = queries.Key.decode(request.query["cursor"])
        except queries.CursorError as exc:
            raise ApiError(400, "Bad Request", str(exc)) from None
    filters = queries.Filters(account=_account_param(request, "account"), solver=_account_param(request, "solver"),
                              status=status, contract=_account_param(request, "contract"),
                              since=_time_param(request, "since"), until=_time_param(request, "until"))
    limit = _limit_param(request)
    page, key = await _store_call(queries.list_intents, request.app[STORE], filters, limit, after)
    body = {"items": [i.model_dump(mode="json") for i in page], "next_cursor": key.encode() if key else None,
            "limit": limit}
    return _json(body)


def _window(request: web.Request) -> str:
    window = request.query.get("window", "24h")
    if window not in queries.WINDOWS:
        raise ApiError(400, "Bad Request", f"?window={window[:20]!r}: use one of {', '.join(queries.WINDOWS)}")
    return window


def _solver_stats(row: dict[str, Any], eco: dict[str, dict[str, Any]]) -> SolverStats:
    def pct(values: list[float | None], count: int) -> Percentiles:
        if not count or not values:
            return Percentiles(p50=None, p90=None, p99=None)
        return Percentiles(p50=values[0], p90=values[1], p99=values[2])

    n = int(row["executions"])
    cost = eco.get(row["solver_id"], {"settlements": 0, "intents": 0, "gas_burnt": 0, "fees": {}})
    return SolverStats(
        solver_id=row["solver_id"], executions=n, successes=int(row["successes"]), failures=int(row["failures"]),
        success_ratio=round(int(row["successes"]) / n, 6) if n else None,
        failures_by_reason={str(k): int(v) for k, v in dict(row["reasons"]).items()}, gas_burnt=row["gas_burnt"],
        gas=pct([float(v) for v in row["gas_q"]], n),
        latency_s=pct([None if v is None or v != v else float(v) for v in row["latency_q"]], int(row["latency_count"])),
        latency_mean_s=row["latency_sum"] / row["latency_count"] if row["latency_count"] else None,
        settlements=cost["settlements"], intents_settled=cost["intents"],
        gas_per_settlement=cost["gas_burnt"] / cost["settlements"] if cost["settlements"] else None,
        gas_per_intent=cost["gas_burnt"] / cost["intents"] if cost["intents"] else None,
        fees_collected=dict(sorted(cost["fees"].items())))


async def solvers(request: web.Request) -> web.Response:
    window, contract = _window(request), _account_param(request, "contract")
    until, rows = await _store_call(queries.solver_stats, request.app[STORE], window, contract)
    eco = await _store_call(queries.solver_economics, request.app[STORE], window, contract)
    stats = [_solver_stats(r, eco) for r in rows]
    body = SolverWindow(window=window, until=until, network=next((s for s in stats if s.solver_id == "*"), None),
                        solvers=[s for s in stats if s.solver_id != "*"])
    return _json(body.model_dump_json().encode())


async def solver(request: web.Request) -> web.Response:
    solver_id = request.match_info["solver_id"]
    why = account_problem(solver_id)
    if why:
        raise ApiError(400, "Bad Request", f"{solver_id[:80]!r} is not a NEAR account id: {why}")
    window, contract = _window(request), _account_param(request, "contract")
    until, rows = await _store_call(queries.solver_stats, request.app[STORE], window, contract, solver_id)
    eco = await _store_call(queries.solver_economics, request.app[STORE], window, contract, solver_id)
    stats = [_solver_stats(r, eco) for r in rows]
    mine = [s for s in stats if s.solver_id == solver_id]
    if not mine:
        missing = f"solver {solver_id} has no executions in the last {window} of the rollups"
        rpc = request.app.get(RPC)
        if rpc is None or not onchain.is_workshop_solver(request.app[SETTINGS], solver_id):
            raise ApiError(404, "Not Found", missing)
        info, why = await _node_call(onchain.solver(rpc, solver_id, window))
        if info is None:
            raise ApiError(404, "Not Found", f"{missing}, and on chain: {why}")
        return _json(info.model_dump_json().encode())
    body = SolverWindow(window=window, until=until, network=next((s for s in stats if s.solver_id == "*"), None),
                        solvers=mine)
    return _json(body.model_dump_json().encode())


async def stats_status(request: web.Request) -> web.Response:
    window, contract = _window(request), _account_param(request, "contract")
    until, counts = await _store_call(queries.status_stats, request.app[STORE], window, contract)
    return _json(StatusStats(window=window, until=until, contracts=counts).model_dump_json().encode())


async def stats_throughput(request: web.Request) -> web.Response:
    window, contract = _window(request), _account_param(request, "contract")
    until, t = await _store_call(queries.throughput_stats, request.app[STORE], window, contract)
    seconds = queries.WINDOWS[window][0]
    t = t or {"blocks": 0, "receipts": 0, "receipt_successes": 0, "receipt_failures": 0, "gas_burnt": "0",
              "intent_updates": 0}
    body = Throughput(window=window, until=until, seconds=seconds, **t,
                      receipts_per_s=round(t["receipts"] / seconds, 6),
                      intent_updates_per_s=round(t["intent_updates"] / seconds, 6))
    return _json(body.model_dump_json().encode())


async def validate_intent(request: web.Request) -> web.Response:
    raw = await request.read()
    if len(raw) > VALIDATE_MAX_BYTES:
        raise ApiError(413, "Payload Too Large", f"the body has {len(raw)} bytes; at most {VALIDATE_MAX_BYTES}")
    try:
        body = json.loads(raw)
    except (ValueError, RecursionError):
        raise ApiError(400, "Bad Request", "the body is not JSON") from None
    try:
        result = validate(body, request.app[NOW])
    except RecursionError:
        raise ApiError(400, "Bad Request", "the body nests too deeply") from None
    return _json(result.model_dump_json().encode())


async def openapi(request: web.Request) -> web.Response:
    return _json(document())


async def websocket(request: web.Request) -> web.StreamResponse:
    from indexer.api.live import handle

    return await handle(request, request.app[HUB])


async def healthz(request: web.Request) -> web.Response:
    return _json({"alive": True})


async def readyz(request: web.Request) -> web.Response:
    app = request.app
    try:
        await asyncio.wait_for(asyncio.to_thread(queries.ping, app[STORE]), timeout=5)
        store = "ok"
    except Exception as exc:  # any failure to answer is "unreachable", with its reason
        store = f"unreachable: {str(exc).strip().splitlines()[0][:200] if str(exc) else type(exc).__name__}"
    redis = app.get(REDIS)
    redis_state = "none (in-process cache and limits)"
    if redis is not None:
        redis_state = "ok" if await redis.ping() else f"unreachable: {redis.error}"
    limiter = app[LIMITER]
    refusing = redis is not None and not redis.up and limiter.fail_closed
    ready = store == "ok" and not refusing
    reason = ("ready" if ready else f"store {store}" if store != "ok"
              else "redis unreachable and the rate-limit policy is fail-closed")
    if ready and redis is not None and not redis.up:
        reason = "ready, degraded: redis unreachable, rate limits not enforced (fail-open)"
    body = {"ready": ready, "reason": reason, "store": store, "redis": redis_state, "rate_limits": limiter.mode}
    return _json(body, 200 if ready else 503)


async def _redis_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    redis = Redis(settings.redis_url) if settings.redis_url else None
    if redis is not None:
        app[REDIS] = redis
    app[LIMITER] = Limiter({"reads": settings.api_read_limit, "validate": settings.api_validate_limit},
                           settings.redis_url, redis, settings.api_limit_policy == "fail-closed")
    app[CACHE] = IntentCache(LocalCache(settings.api_local_cache_size, settings.api_local_cache_ttl), redis,
                             settings.api_cache_ttl)
    log.info("api cache and rate limits", redis=_redacted(settings.redis_url), policy=settings.api_limit_policy,
             reads=settings.api_read_limit, validations=settings.api_validate_limit)
    if settings.rpc_url:
        app[RPC] = ViewCaller(settings.rpc_url, settings.rpc_timeout, settings.rpc_attempts, settings.rpc_cache_ttl)
    yield
    if RPC in app:
        await app[RPC].close()
    await app[LIMITER].close()
    if redis is not None:
        await redis.close()


async def _invalidation_ctx(app: web.Application) -> AsyncIterator[None]:
    from indexer.api.fanout import follow

    task = asyncio.create_task(follow(app[STORE], app[CACHE], app[HUB], app.get(REDIS),
                                      interval=app[SETTINGS].api_feed_interval))
    yield
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
    for conn in list(app[HUB].connections):  # clean shutdown: clients learn why, and may reconnect
        if conn.ws is not None:
            await conn.ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutting down")


def _redacted(url: str | None) -> str | None:
    from indexer.store.client import redact

    return redact(url) if url else None


def create_app(settings: Settings, store: Store, now: Clock | None = None) -> web.Application:
    app = web.Application(middlewares=[observe, cors, errors, rate_limit], client_max_size=VALIDATE_MAX_BYTES * 4)
    app[SETTINGS] = settings
    app[STORE] = store
    app[NOW] = now or (lambda: datetime.now(timezone.utc))
    app[TRUSTED] = [ipaddress.ip_network(n.strip(), strict=False) for n in settings.api_trusted_proxies]
    app[HUB] = Hub(store)
    app.cleanup_ctx.append(_redis_ctx)
    app.cleanup_ctx.append(_invalidation_ctx)
    app.router.add_post("/api/v1/intents/validate", validate_intent, name="validate")
    app.router.add_get("/api/v1/intents/{intent_hash}", get_intent, name="intent")
    app.router.add_get("/api/v1/intents", list_intents, name="intents")
    app.router.add_get("/api/v1/solvers", solvers, name="solvers")
    app.router.add_get("/api/v1/solvers/{solver_id}", solver, name="solver")
    app.router.add_get("/api/v1/stats/status", stats_status, name="stats_status")
    app.router.add_get("/api/v1/stats/throughput", stats_throughput, name="stats_throughput")
    app.router.add_get("/api/v1/ws", websocket, name="ws")
    app.router.add_get("/api/v1/openapi.json", openapi, name="openapi")
    app.router.add_get("/healthz", healthz, name="healthz")
    app.router.add_get("/readyz", readyz, name="readyz")
    app.router.add_get("/metrics", metrics_view, name="metrics")
    return app


async def start(settings: Settings, store: Store, now: Clock | None = None) -> web.AppRunner:
    """Listen on --api-host:--api-port; the caller stops it with ``await runner.cleanup()``."""
    runner = web.AppRunner(create_app(settings, store, now), access_log=None, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, settings.api_host, settings.api_port).start()
    log.info("serving the API", url=f"http://{settings.api_host}:{settings.api_port}/api/v1",
             openapi=f"http://{settings.api_host}:{settings.api_port}/api/v1/openapi.json")
    return runner
