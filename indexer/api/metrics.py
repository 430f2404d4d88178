"""Prometheus metrics of the API, in the daemon's registry (one /metrics shows both).

Labels are bounded: route templates (never a path with an id in it), status codes, cache layers,
rate-limit policies.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from indexer.metrics import REGISTRY

REQUESTS = Counter("near_intents_api_requests_total", "API requests answered, by route template, method and status",
                   ["route", "method", "code"], registry=REGISTRY)
LATENCY = Histogram("near_intents_api_request_duration_seconds", "Time to answer an API request, by route template",
                    ["route"], buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
                    registry=REGISTRY)
CACHE = Counter("near_intents_api_cache_total", "Intent lookups by cache layer (local, redis) and result (hit, miss)",
                ["layer", "result"], registry=REGISTRY)
RATE_LIMITED = Counter("near_intents_api_rate_limited_total", "Requests refused with 429, by rate-limit policy",
                       ["policy"], registry=REGISTRY)
LIMITER_DEGRADED = Counter(
    "near_intents_api_rate_limit_unavailable_total",
    "Requests whose rate limit could not be checked (Redis unreachable), by what the policy did (allowed, refused)",
    ["outcome"], registry=REGISTRY)
REDIS_UP = Gauge("near_intents_api_redis_up", "1 while the API's Redis answers, 0 while it does not (absent: none "
                                              "configured)", registry=REGISTRY)
INVALIDATIONS = Counter("near_intents_api_cache_invalidations_total",
                        "Intents evicted from the caches because a committed batch changed them", registry=REGISTRY)
WS_CONNECTIONS = Gauge("near_intents_api_websocket_connections", "Open WebSocket connections", registry=REGISTRY)
WS_PUSHES = Counter("near_intents_api_websocket_pushes_total", "intent_update messages pushed to WebSocket clients",
                    registry=REGISTRY)
