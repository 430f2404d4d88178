"""One rollup process per store: the jobs run only while this process holds the lease of the
``rollups`` row in ``streams`` (the store protocol's lease: holder, expiry in the store's clock).

Two processes recomputing one bucket at once could interleave their DELETE and INSERT and leave
the bucket's rows twice, so a second process waits: the daemon keeps indexing and skips its
rollups until the lease is free or expired; ``intents-indexer rollup`` refuses to start.
"""

from __future__ import annotations

import time
from typing import Any

import structlog

from indexer.store.streams import ROLLUPS, Lease, LeaseError, StreamState

log = structlog.get_logger(__name__)


class RollupLease:
    """This process's claim on the rollups of one store, taken on first use and renewed after."""

    def __init__(self, ttl: float = 60.0, settle: float = 2.0):
        self.ttl = ttl
        self.settle = settle
        self.lease: Lease | None = None
        self._store: Any = None
        self._refused_by: str | None = None
        self._renewed_at = 0.0  # time.monotonic() of the last write of the lease

    def hold(self, store: Any) -> None:
        """Take or renew the lease on ``store``; LeaseError while another process holds it.

        Called before every step of every job: a lease written less than a third of its TTL ago
        still has two thirds to run, so it is renewed only then (not one write per job and step)."""
        if self.lease is not None and self._store is store:
            if time.monotonic() - self._renewed_at >= self.ttl / 3:
                self.lease.renew()
                self._renewed_at = time.monotonic()
            return
        self.lease = Lease.acquire(store, StreamState(ROLLUPS, end_height=0), ttl=self.ttl, settle=self.settle)
        self._store = store
        self._renewed_at = time.monotonic()
        if self._refused_by is not None:
            log.info("took the rollup lease; rolling up", after=self._refused_by)
            self._refused_by = None

    def try_hold(self, store: Any) -> bool:
        """``hold``, or log (once per holder) that another process runs the rollups."""
        try:
            self.hold(store)
            return True
        except LeaseError as exc:
            self.lease, self._store = None, None
            if self._refused_by != str(exc):
                log.warning("another process runs the rollups of this store; skipping them until its lease "
                            "ends", reason=str(exc))
                self._refused_by = str(exc)
            return False

    def release(self) -> None:
        if self.lease is not None:
            try:
                self.lease.release()
            except Exception as exc:  # the store is gone: the lease expires by itself
                log.debug("could not release the rollup lease", error=str(exc))
            self.lease, self._store = None, None
