"""Liveness and readiness, served with /metrics on the metrics port.

``/healthz`` answers 200 while the process is alive (its event loop answers). ``/readyz``
answers 200 when the daemon follows the chain head: the store and the source answer, and the
newest stored block is at most ``ready_max_lag_blocks`` behind the head; 503 otherwise. Both
bodies are JSON saying why, so that an operator reading a failed probe knows what to fix.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import structlog

from indexer.config import Settings
from indexer import metrics
from indexer.metrics import REGISTRY

log = structlog.get_logger(__name__)

HEAD_POLL_SECONDS = 10.0  # how often the daemon asks the source for the head (a few paid LISTs on the Lake)


class Health:
    """What the daemon knows about itself; the daemon updates it, the HTTP handlers read it."""

    def __init__(self, max_lag_blocks: int, stored_height: Callable[[], float | None] | None = None):
        self.max_lag_blocks = max_lag_blocks
        # The writer's gauge: the newest block whose batch is stored (0 until one is).
        self._stored_height = stored_height or (lambda: REGISTRY.get_sample_value("near_intents_indexed_height"))
        self.store_error: str | None = "not connected to the store yet"
        self.source_error: str | None = None
        self.head_height: int | None = None
        self.committed_height: int | None = None  # where the current plan starts from, before any batch

    def store_ok(self) -> None:
        self.store_error = None

    @property
    def indexed_height(self) -> int | None:
        """The newest stored block: the writer's gauge once a batch is stored, else the plan's start."""
        stored = self._stored_height() or 0
        if self.committed_height is None and not stored:
            return None
        return int(max(stored, self.committed_height or 0))

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        indexed, head = self.indexed_height, self.head_height
        lag = max(head - indexed, 0) if indexed is not None and head is not None else None
        body: dict[str, Any] = {"indexed_height": indexed, "head_height": head, "lag_blocks": lag,
                                "max_lag_blocks": self.max_lag_blocks}
        if self.store_error:
            reason = f"store unreachable: {self.store_error}"
        elif self.source_error:
            reason = f"source unreachable: {self.source_error}"
        elif lag is None:
            reason = "starting: the indexed height or the chain head is not known yet"
        elif lag > self.max_lag_blocks:
            reason = f"catching up: {lag} blocks behind the chain head (ready at {self.max_lag_blocks} or fewer)"
        else:
            return True, {"ready": True, "reason": f"following the chain head, {lag} blocks behind", **body}
        return False, {"ready": False, "reason": reason, **body}


async def follow_head(source: Any, health: Health, interval: float = HEAD_POLL_SECONDS) -> None:
    """Keep ``health.head_height`` current while the source is open (run as a task; cancel it)."""
    from indexer.sources import SourceError

    while True:
        try:
            health.head_height = await source.final_head()
            metrics.CHAIN_HEAD_HEIGHT.set(health.head_height)
            health.source_error = None
        except (SourceError, OSError) as exc:
            health.source_error = str(exc)
            log.debug("chain head unknown", error=str(exc))
        await asyncio.sleep(interval)


async def serve(settings: Settings, health: Health):  # type: ignore[no-untyped-def]
    """Serve /metrics, /healthz and /readyz on the metrics port; None when no port is set."""
    if settings.metrics_port is None:
        return None
    from aiohttp import web

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"alive": True})

    async def readyz(request: web.Request) -> web.Response:
        ready, body = health.readiness()
        return web.json_response(body, status=200 if ready else 503)

    app = web.Application()
    app.router.add_get("/metrics", metrics.aiohttp_view)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, settings.metrics_host, settings.metrics_port).start()
    base = f"http://{settings.metrics_host}:{settings.metrics_port}"
    log.info("serving metrics and health", url=f"{base}/metrics", healthz=f"{base}/healthz", readyz=f"{base}/readyz")
    return runner
