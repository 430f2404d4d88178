"""Prometheus metrics of the ingest path.

Names follow the ``near_intents_`` prefix, base units and ``_total`` counters. Labels stay
bounded: table names, source names and fixed reason words, never a receipt or an account.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

# `_created` series double the samples of every counter and histogram, and no dashboard or alert
# reads them (Prometheus' text format 0.0.4 has no use for them).
disable_created_metrics()

REGISTRY = CollectorRegistry(auto_describe=True)

BLOCKS = Counter("near_intents_blocks_indexed_total", "Blocks decoded and stored", registry=REGISTRY)
BYTES = Counter("near_intents_lake_bytes_total", "Bytes of Lake JSON read", registry=REGISTRY)
ROWS = Counter("near_intents_rows_written_total", "Rows inserted into the store", ["table"], registry=REGISTRY)
DEAD_LETTERS = Counter(
    "near_intents_dead_letters_total", "Inputs that could not be decoded, by kind", ["kind"], registry=REGISTRY
)
SHARDS_SKIPPED = Counter(
    "near_intents_shards_skipped_total",
    "Shards not decoded because their bytes never mention a tracked account",
    registry=REGISTRY,
)
TX_UNRESOLVED = Counter(
    "near_intents_tx_hash_unresolved_total",
    "Tracked receipts stored with an empty tx_hash (their transaction was not seen)",
    registry=REGISTRY,
)
CHAIN_BREAKS = Counter(
    "near_intents_chain_breaks_total", "Blocks whose prev_hash did not match the previous block", registry=REGISTRY
)
SOURCE_RETRIES = Counter(
    "near_intents_source_retries_total", "Fetches retried, by source and reason", ["source", "reason"], registry=REGISTRY
)
SOURCE_ERRORS = Counter(
    "near_intents_source_errors_total", "Fetch errors, by source and reason", ["source", "reason"], registry=REGISTRY
)
FLUSH_SECONDS = Histogram(
    "near_intents_flush_seconds",
    "Time to insert one batch and write its checkpoint",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
    registry=REGISTRY,
)
HEAD_HEIGHT = Gauge("near_intents_indexed_height", "Height of the newest stored block", registry=REGISTRY)
HEAD_TIMESTAMP = Gauge(
    "near_intents_indexed_block_timestamp_seconds", "Timestamp of the newest stored block", registry=REGISTRY
)
STORE_INSERT_ERRORS = Counter(
    "near_intents_store_insert_errors_total", "Inserts the store refused or lost, by table", ["table"],
    registry=REGISTRY,
)
STREAM_SKIPPED_HEIGHTS = Counter(
    "near_intents_stream_heights_left_total",
    "Heights of a batch left to another stream that already wrote them or is writing them",
    registry=REGISTRY,
)
CHAIN_HEAD_HEIGHT = Gauge(
    "near_intents_chain_head_height", "Newest final height the source knows (asked every few seconds)",
    registry=REGISTRY,
)
ROLLUP_SECONDS = Histogram(
    "near_intents_rollup_seconds", "Time of one rollup job run (read commits, recompute buckets, move the cursor)",
    ["job"], buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60), registry=REGISTRY,
)
ROLLUP_LAST_SUCCESS = Gauge(
    "near_intents_rollup_last_success_timestamp_seconds", "When a rollup job last finished without error", ["job"],
    registry=REGISTRY,
)
BUILD_INFO = Gauge("near_intents_build_info", "Always 1; the running version as a label", ["version"],
                   registry=REGISTRY)

# Called by the store writer with the rows of each committed batch (only the rows it wrote, not
# those it left to another stream), so metrics counted from rows count each row once. The
# exporter registers its counters here; the store cannot import the exporter (data flows one way).
COMMITTED_ROWS_OBSERVERS: list = []

# Metrics that change only at known moments (the committed-row counters at a commit, the rollup
# gauges at a refresh) are rendered to text then, not at every scrape: each callable returns its
# latest rendering.
SNAPSHOTS: list[Callable[[], bytes]] = []


def render() -> bytes:
    """The /metrics body (text format 0.0.4): the live metrics rendered now, then the snapshots."""
    return generate_latest(REGISTRY) + b"".join(text() for text in SNAPSHOTS)


async def aiohttp_view(request: Any) -> Any:
    """GET /metrics for an aiohttp app (the daemon's metrics port and the API)."""
    from aiohttp import web

    return web.Response(body=render(), headers={"Content-Type": CONTENT_TYPE_LATEST})


def _build_info() -> None:
    from indexer import __version__

    BUILD_INFO.labels(version=__version__).set(1)


_build_info()
