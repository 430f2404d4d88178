"""The cache layers (in-process LRU -> Redis -> store), their order and their invalidation by the
commits change feed, on a real redis-server."""

from __future__ import annotations

from pathlib import Path

from apiserver import (MS, RedisServer, commit, insert_updates, redis_server, redis_url, serve,  # noqa: F401
                       update, wait_until)
from test_api_limits import _metric

HOUR = 3600.0


def _layers(api) -> dict[str, float]:  # type: ignore[no-untyped-def]
    return {f"{layer}_{result}": _metric(api, "near_intents_api_cache_total", layer=layer, result=result)
            for layer in ("local", "redis") for result in ("hit", "miss")}


def _delta(after: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    return {k: after[k] - before[k] for k in after if after[k] != before[k]}


def test_local_then_redis_then_store(store, serve, redis_url) -> None:  # type: ignore[no-untyped-def]
    insert_updates(store, [update(10, "intent-1", "pending", contract="v.near", signer="bob.near")])
    a = serve(store, redis_url=redis_url, api_local_cache_ttl=HOUR, api_cache_ttl=HOUR)
    b = serve(store, redis_url=redis_url, api_local_cache_ttl=HOUR, api_cache_ttl=HOUR)
    before = _layers(a)
    assert a.get("/api/v1/intents/intent-1").json["status"] == "pending"
    assert _delta(_layers(a), before) == {"local_miss": 1, "redis_miss": 1}  # then the store
    before = _layers(a)
    assert a.get("/api/v1/intents/intent-1").json["status"] == "pending"
    assert _delta(_layers(a), before) == {"local_hit": 1}
    # A newer state stored without a commit (no invalidation): replica b, new, finds the older
    # state in Redis, where replica a put it, without asking the store.
    insert_updates(store, [update(11, "intent-1", "verified", contract="v.near")])
    before = _layers(b)
    assert b.get("/api/v1/intents/intent-1").json["status"] == "pending"
    assert _delta(_layers(b), before) == {"local_miss": 1, "redis_hit": 1}


def test_a_commit_evicts_every_layer(store, serve, redis_url) -> None:  # type: ignore[no-untyped-def]
    insert_updates(store, [update(10, "intent-1", "pending", contract="v.near", signer="bob.near")])
    commit(store, "s1", 1, ["v.near"], 10, 10)
    a = serve(store, redis_url=redis_url, api_local_cache_ttl=HOUR, api_cache_ttl=HOUR)
    b = serve(store, redis_url=redis_url, api_local_cache_ttl=HOUR, api_cache_ttl=HOUR)
    assert a.get("/api/v1/intents/intent-1").json["status"] == "pending"
    assert b.get("/api/v1/intents/intent-1").json["status"] == "pending"
    assert a.get("/api/v1/intents/intent-1?contract=v.near").json["status"] == "pending"
    insert_updates(store, [update(12, "intent-1", "completed", contract="v.near")])
    commit(store, "s1", 2, ["v.near"], 11, 12)
    # TTLs of an hour: only the eviction can make these answers change.
    for api, path in ((a, "/api/v1/intents/intent-1"), (b, "/api/v1/intents/intent-1"),
                      (a, "/api/v1/intents/intent-1?contract=v.near")):
        wait_until(lambda: api.get(path).json["status"] == "completed", what=f"{path} completed")
    assert _metric(a, "near_intents_api_cache_invalidations_total") >= 1


def test_an_uncommitted_batch_evicts_nothing(store, serve) -> None:  # type: ignore[no-untyped-def]
    insert_updates(store, [update(10, "intent-1", "pending", contract="v.near")])
    commit(store, "s1", 1, ["v.near"], 10, 10)
    api = serve(store, api_local_cache_ttl=HOUR)
    assert api.get("/api/v1/intents/intent-1").json["status"] == "pending"
    insert_updates(store, [update(12, "intent-1", "completed", contract="v.near")])
    commit(store, "s1", 2, ["v.near"], 12, 12)  # seq 2: evicts
    wait_until(lambda: api.get("/api/v1/intents/intent-1").json["status"] == "completed", what="evicted")
    from indexer.store import commits

    evicted = _metric(api, "near_intents_api_cache_invalidations_total")

    insert_updates(store, [update(13, "intent-1", "failed", contract="v.near")])
    # a commits row above the stream's commit_seq is a batch that never committed (a crash)
    commits.append(store, commits.Commit("s1", 3, ("v.near",), 13, 13, MS, MS, {}, False), token="crashed")
    later_commit_probe = "other-intent"
    insert_updates(store, [update(14, later_commit_probe, "pending", contract="w.near")])
    commit(store, "s2", 1, ["w.near"], 14, 14)
    # the follower has read past the crashed row once it evicts s2's intent
    wait_until(lambda: _metric(api, "near_intents_api_cache_invalidations_total") > evicted, what="s2 followed")
    assert api.get("/api/v1/intents/intent-1").json["status"] == "completed"


def test_unknown_intents_are_not_cached(store, serve) -> None:  # type: ignore[no-untyped-def]
    api = serve(store, api_local_cache_ttl=HOUR)
    assert api.get("/api/v1/intents/late-one").status == 404
    insert_updates(store, [update(10, "late-one", "pending")])
    assert api.get("/api/v1/intents/late-one").status == 200


def test_redis_down_falls_back_to_the_store(store, serve, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    own = RedisServer(tmp_path / "redis")
    try:
        insert_updates(store, [update(10, "intent-1", "pending")])
        api = serve(store, redis_url=own.url, api_local_cache_ttl=0)
        assert api.get("/api/v1/intents/intent-1").status == 200
        own.stop()
        r = api.get("/api/v1/intents/intent-1")
        assert r.status == 200 and r.json["status"] == "pending"
    finally:
        own.stop()


def test_local_cache_expires_and_stays_bounded() -> None:
    from indexer.api.cache import LocalCache

    now = [0.0]
    cache = LocalCache(size=2, ttl=5, clock=lambda: now[0])
    cache.put("a", b"1")
    cache.put("b", b"2")
    assert cache.get("a") == b"1"  # a is now the most recent
    cache.put("c", b"3")
    assert cache.get("b") is None and len(cache) == 2  # the least recent went
    now[0] = 5.0
    assert cache.get("a") is None and cache.get("c") is None
    off = LocalCache(size=2, ttl=0)
    off.put("a", b"1")
    assert off.get("a") is None


def test_with_redis_down_a_replica_follows_the_feed_itself(store, serve, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    own = RedisServer(tmp_path / "redis")
    try:
        insert_updates(store, [update(10, "intent-1", "pending", contract="v.near")])
        commit(store, "s1", 1, ["v.near"], 10, 10)
        api = serve(store, redis_url=own.url, api_local_cache_ttl=HOUR, api_cache_ttl=HOUR)
        assert api.get("/api/v1/intents/intent-1").json["status"] == "pending"
        own.stop()
        insert_updates(store, [update(11, "intent-1", "completed", contract="v.near")])
        commit(store, "s1", 2, ["v.near"], 11, 11)
        wait_until(lambda: api.get("/api/v1/intents/intent-1").json["status"] == "completed",
                   what="evicted without Redis")
    finally:
        own.stop()
