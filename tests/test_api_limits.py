"""Rate limits (in process and on a real redis-server), their headers, both Redis-down policies,
trusted proxies and CORS, over real HTTP."""

from __future__ import annotations

from pathlib import Path

import pytest

from apiserver import RedisServer, redis_server, redis_url, serve  # noqa: F401 - fixtures


def _metric(api, name: str, **labels: str) -> float:  # type: ignore[no-untyped-def]
    from prometheus_client.parser import text_string_to_metric_families

    text = api.get("/metrics").raw.decode()
    total = 0.0
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                total += s.value
    return total


def test_headers_on_every_answer_and_429_past_the_limit(store, serve) -> None:  # type: ignore[no-untyped-def]
    api = serve(store, api_read_limit="3/hour")
    remaining = []
    for _ in range(3):
        r = api.get("/api/v1/intents/unknown")
        assert r.status == 404  # limited routes carry the headers on errors too
        assert r.headers["RateLimit-Policy"] == '"reads";q=3;w=3600'
        remaining.append(r.headers["RateLimit"].split(";")[1])
    assert remaining == ["r=2", "r=1", "r=0"]
    before = _metric(api, "near_intents_api_rate_limited_total", policy="reads")
    r = api.get("/api/v1/intents")
    assert r.status == 429 and r.headers["Content-Type"].startswith("application/problem+json")
    assert 1 <= int(r.headers["Retry-After"]) <= 3600
    assert r.headers["RateLimit"].startswith('"reads";r=0;t=')
    assert _metric(api, "near_intents_api_rate_limited_total", policy="reads") == before + 1
    # probes, metrics and the document are not limited
    assert api.get("/healthz").status == 200 and api.get("/api/v1/openapi.json").status == 200


def test_validations_have_their_own_limit(store, serve) -> None:  # type: ignore[no-untyped-def]
    api = serve(store, api_validate_limit="2/15 minutes", api_read_limit="100/minute")
    body = {"type": "workshop", "intent": {}}
    for _ in range(2):
        r = api.post("/api/v1/intents/validate", json=body)
        assert r.status == 200 and r.headers["RateLimit-Policy"] == '"validate";q=2;w=900'
    assert api.post("/api/v1/intents/validate", json=body).status == 429
    assert api.get("/api/v1/intents/x1").status == 404  # reads still allowed


def test_per_api_key_and_per_ip_behind_trusted_proxies(store, serve) -> None:  # type: ignore[no-untyped-def]
    api = serve(store, api_read_limit="1/hour", api_trusted_proxies=["127.0.0.0/8"])
    assert api.get("/api/v1/intents/a1", headers={"X-API-Key": "k1"}).status == 404
    assert api.get("/api/v1/intents/a1", headers={"X-API-Key": "k1"}).status == 429
    assert api.get("/api/v1/intents/a1", headers={"X-API-Key": "k2"}).status == 404  # another key, another count
    # The connection comes from a trusted proxy: the client is the address it forwarded.
    fwd = {"X-Forwarded-For": "203.0.113.7, 127.0.0.2"}
    assert api.get("/api/v1/intents/a1", headers=fwd).status == 404
    assert api.get("/api/v1/intents/a1", headers=fwd).status == 429
    assert api.get("/api/v1/intents/a1", headers={"X-Forwarded-For": "203.0.113.8"}).status == 404


def test_forwarded_for_is_ignored_from_untrusted_peers(store, serve) -> None:  # type: ignore[no-untyped-def]
    api = serve(store, api_read_limit="1/hour")  # no trusted proxies
    assert api.get("/api/v1/intents/a1", headers={"X-Forwarded-For": "203.0.113.7"}).status == 404
    # a client cannot escape its limit by claiming another address
    assert api.get("/api/v1/intents/a1", headers={"X-Forwarded-For": "203.0.113.9"}).status == 429


def test_client_ip_rules() -> None:
    import ipaddress

    from indexer.api.ratelimit import client_ip

    nets = [ipaddress.ip_network("10.0.0.0/8")]
    assert client_ip("10.0.0.1", "1.2.3.4, 10.0.0.5", nets) == "1.2.3.4"
    assert client_ip("10.0.0.1", "9.9.9.9, 1.2.3.4", nets) == "1.2.3.4"  # only the hop the proxy saw counts
    assert client_ip("8.8.8.8", "1.2.3.4", nets) == "8.8.8.8"
    assert client_ip("10.0.0.1", "garbage", nets) == "10.0.0.1"
    assert client_ip("10.0.0.1", "10.0.0.9", nets) == "10.0.0.9"


def test_limits_on_redis_are_shared_by_replicas(store, serve, redis_url) -> None:  # type: ignore[no-untyped-def]
    a = serve(store, redis_url=redis_url, api_read_limit="3/hour")
    b = serve(store, redis_url=redis_url, api_read_limit="3/hour")
    assert [a.get("/api/v1/intents/x").status, b.get("/api/v1/intents/x").status,
            a.get("/api/v1/intents/x").status] == [404, 404, 404]
    r = b.get("/api/v1/intents/x")
    assert r.status == 429 and "Retry-After" in r.headers
    ready = a.get("/readyz").json
    assert ready["ready"] is True and ready["redis"] == "ok" and ready["rate_limits"] == "enforced on Redis"


@pytest.mark.parametrize("policy", ["fail-open", "fail-closed"])
def test_redis_down_follows_the_policy(store, serve, tmp_path: Path, policy: str) -> None:  # type: ignore[no-untyped-def]
    own = RedisServer(tmp_path / "redis")
    try:
        api = serve(store, redis_url=own.url, api_read_limit="100/hour", api_limit_policy=policy)
        assert api.get("/api/v1/intents/x").headers["RateLimit"].startswith('"reads";r=99')
        own.stop()
        outcome = "allowed" if policy == "fail-open" else "refused"
        before = _metric(api, "near_intents_api_rate_limit_unavailable_total", outcome=outcome)
        r = api.get("/api/v1/intents/x")
        ready = api.get("/readyz")
        if policy == "fail-open":
            assert r.status == 404 and "RateLimit" not in r.headers
            assert ready.status == 200 and ready.json["reason"].startswith("ready, degraded: redis unreachable")
            assert ready.json["rate_limits"] == "not enforced (fail-open, Redis unreachable)"
        else:
            assert r.status == 503 and r.headers["Content-Type"].startswith("application/problem+json")
            assert "fail-closed" in r.json["detail"] and r.headers["Retry-After"] == "1"
            assert ready.status == 503 and ready.json["ready"] is False
            assert ready.json["rate_limits"] == "refusing requests (fail-closed, Redis unreachable)"
        assert ready.json["redis"].startswith("unreachable")
        assert _metric(api, "near_intents_api_rate_limit_unavailable_total", outcome=outcome) == before + 1
        assert _metric(api, "near_intents_api_redis_up") == 0
    finally:
        own.stop()


def test_cors_closed_by_default(store, serve) -> None:  # type: ignore[no-untyped-def]
    api = serve(store)
    r = api.get("/api/v1/intents/x", headers={"Origin": "https://wallet.example"})
    assert "Access-Control-Allow-Origin" not in r.headers
    pre = api.request("OPTIONS", "/api/v1/intents/x", headers={
        "Origin": "https://wallet.example", "Access-Control-Request-Method": "GET"})
    assert "Access-Control-Allow-Origin" not in pre.headers


def test_cors_for_configured_origins(store, serve) -> None:  # type: ignore[no-untyped-def]
    api = serve(store, api_cors_origins=["https://wallet.example"])
    r = api.get("/api/v1/intents/x", headers={"Origin": "https://wallet.example"})
    assert r.headers["Access-Control-Allow-Origin"] == "https://wallet.example"
    assert "RateLimit" in r.headers["Access-Control-Expose-Headers"]
    pre = api.request("OPTIONS", "/api/v1/intents/validate", headers={
        "Origin": "https://wallet.example", "Access-Control-Request-Method": "POST"})
    assert pre.status == 204 and "POST" in pre.headers["Access-Control-Allow-Methods"]
    assert "X-API-Key" in pre.headers["Access-Control-Allow-Headers"]
    other = api.get("/api/v1/intents/x", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in other.headers
