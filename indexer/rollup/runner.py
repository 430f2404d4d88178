"""Run the rollup jobs on an interval inside an asyncio program (the daemon, ``rollup``).

Jobs run in a worker thread (the store client is blocking); after each round ``after`` runs in the
same thread, so the exporter's gauges are refreshed from buckets that are complete. A failing
round is logged and retried at the next tick: the cursors have not moved, nothing is lost. Jobs
run only under the rollup lease (indexer/rollup/lease.py); without it a round only refreshes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import structlog

from indexer.rollup import job
from indexer.rollup.lease import RollupLease

log = structlog.get_logger(__name__)


def one_round(store: Any, after: Callable[[Any], Any] | None = None, *, rollups: bool = True,
              lease: RollupLease | None = None) -> list[job.JobResult]:
    results: list[job.JobResult] = []
    if rollups and (lease is None or lease.try_hold(store)):
        results = job.run_all(store, renew=None if lease is None else lambda: lease.hold(store))
    if after is not None:
        after(store)
    return results


async def run_forever(get_store: Callable[[], Any], interval: float, stop: asyncio.Event,
                      after: Callable[[Any], Any] | None = None, *, rollups: bool = True,
                      lease: RollupLease | None = None) -> None:
    """Every ``interval`` seconds until ``stop``: a round on the current store (skipped while
    ``get_store()`` is None, e.g. while the daemon reconnects); the lease is released at the end."""
    lease = lease or RollupLease()
    try:
        while not stop.is_set():
            store = get_store()
            if store is not None:
                try:
                    await asyncio.to_thread(one_round, store, after, rollups=rollups, lease=lease)
                except Exception as exc:  # the store is down or a statement failed: the next round redoes it
                    log.warning("rollup round failed; retrying at the next one",
                                error=str(exc).splitlines()[0][:500])
            try:
                await asyncio.wait_for(stop.wait(), timeout=interval)
            except TimeoutError:
                pass
    finally:
        await asyncio.to_thread(lease.release)
