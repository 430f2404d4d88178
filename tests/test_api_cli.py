"""The API as operators start it: inside `run --api-port` on the embedded store, and `serve`."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import pytest

from clitools import LogReader, cli, cli_env, free_port, http_get, popen, wait_for_http
from decodehelpers import SOLVER, SOLVER_HASH, TX_HASH, USER, USER_HASH, USER_REFERRAL
from lakebuild import fixture_lake

pytestmark = pytest.mark.timeout(300)


def test_run_serves_the_api_on_the_embedded_store(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    heights = fixture_lake(lake, copies=1)
    port = free_port()
    proc = popen("run", "--source", f"files:{lake}", "--store", f"chdb://{tmp_path / 'store'}", "--start-block",
                 str(heights[0]), "--api-port", str(port),
                 env=cli_env(INDEXER_POLL_INTERVAL="0.05", INDEXER_RETRY_BASE_DELAY="3600", INDEXER_LOG_LEVEL="debug"))
    try:
        LogReader(proc).wait_for(lambda e: e.get("event") == "batch stored" and e.get("height") == heights[-1])
        base = f"http://127.0.0.1:{port}"
        status, body = wait_for_http(f"{base}/api/v1/intents/{USER_HASH}", lambda s, b: s == 200)
        assert body["status"] == "executed" and body["relay_status"] == "SETTLED" and body["terminal"] is True
        assert body["contract_id"] == "intents.near" and body["kinds"][0] == "token_diff"
        assert body["signer_id"] == USER and body["solver_id"] == SOLVER and body["referral"] == USER_REFERRAL
        assert body["tx_hashes"] == [TX_HASH] and body["gas_burnt"] == 10038341571544
        status, page = http_get(f"{base}/api/v1/intents?solver={SOLVER}")
        assert status == 200 and {i["intent_hash"] for i in page["items"]} == {USER_HASH, SOLVER_HASH}
        status, missing = http_get(f"{base}/api/v1/intents/{USER_HASH[:-1]}x")
        assert status == 404 and "is in the store" in missing["detail"]
        assert http_get(f"{base}/healthz") == (200, {"alive": True})
        status, ready = http_get(f"{base}/readyz")
        assert status == 200 and ready["store"] == "ok" and ready["redis"].startswith("none")
        import urllib.request

        metrics = urllib.request.urlopen(f"{base}/metrics", timeout=10).read().decode()
        assert 'near_intents_api_requests_total{code="200",method="GET",route="/api/v1/intents/{intent_hash}"}' \
            in metrics
        assert "near_intents_api_request_duration_seconds_bucket" in metrics
        assert "near_intents_blocks_indexed_total" in metrics  # one registry: the daemon's metrics too
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=120)
    assert proc.returncode == 0


def test_serve_refuses_the_embedded_store(tmp_path: Path) -> None:
    proc = cli("serve", "--store", f"chdb://{tmp_path / 'store'}", check=False)
    assert proc.returncode == 2
    assert "serve needs a ClickHouse server store" in proc.stderr and "run --api-port" in proc.stderr
    assert not (tmp_path / "store").exists()


def test_serve_exits_1_when_the_server_store_is_unreachable() -> None:
    proc = cli("serve", "--store", "http://default:secret@127.0.0.1:9/near_intents", "--api-port", str(free_port()),
               check=False)
    assert proc.returncode == 1 and "cannot open store" in proc.stderr and "secret" not in proc.stderr


def test_api_settings_by_flag_and_environment() -> None:
    env = cli_env(INDEXER_API_PORT="8099", INDEXER_REDIS_URL="redis://:hunter2@cache:6379/0",
                  INDEXER_API_TRUSTED_PROXIES="10.0.0.0/8,192.168.1.1", INDEXER_API_LIMIT_POLICY="fail-closed")
    out = json.loads(cli("config", "--format", "json", "--api-read-limit", "50/minute", env=env).stdout)["settings"]
    assert out["api_port"] == {"value": 8099, "source": "env INDEXER_API_PORT"}
    assert out["redis_url"]["value"] == "redis://:***@cache:6379/0"
    assert out["api_trusted_proxies"]["value"] == ["10.0.0.0/8", "192.168.1.1"]
    assert out["api_limit_policy"]["value"] == "fail-closed"
    assert out["api_read_limit"] == {"value": "50/minute", "source": "flag --api-read-limit"}
    assert out["api_cache_ttl"] == {"value": 30.0, "source": "default"}
    for args, words in ((["--api-read-limit", "lots"], "not in the `limits` notation"),
                        (["--api-trusted-proxies", "proxy.local"], "not an address or CIDR"),
                        (["--redis-url", "http://x"], "--redis-url")):
        proc = cli("config", *args, check=False)
        assert proc.returncode == 2 and words in proc.stderr, proc.stderr
    assert "--api-port" in cli("run", "--help").stdout
    assert "--api-port" not in cli("backfill", "--help").stdout


async def test_a_websocket_client_gets_the_update_of_the_block_the_daemon_indexes(tmp_path: Path) -> None:
    import aiohttp

    lake = tmp_path / "lake"
    heights = fixture_lake(lake, copies=1)
    # The block carrying the settlement waits for one of its shards, as a Lake upload can.
    shard = lake / f"{heights[0]:012d}" / "shard_0.json"
    held = shard.read_bytes()
    shard.unlink()
    port = free_port()
    proc = popen("run", "--source", f"files:{lake}", "--store", f"chdb://{tmp_path / 'store'}", "--start-block",
                 str(heights[0]), "--api-port", str(port),
                 env=cli_env(INDEXER_POLL_INTERVAL="0.05", INDEXER_RETRY_BASE_DELAY="0.05",
                             INDEXER_RETRY_MAX_DELAY="0.2", INDEXER_SHARD_RETRY_LIMIT="600",
                             INDEXER_LOG_LEVEL="debug"))
    logs = LogReader(proc)
    try:
        logs.wait_for(lambda e: e.get("event") == "serving the API")
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(f"ws://127.0.0.1:{port}/api/v1/ws") as ws:
                await ws.send_json({"type": "subscribe", "intent_hash": USER_HASH})
                subscribed = await ws.receive_json(timeout=60)
                assert isinstance(subscribed.pop("session"), str)  # the id to resume the session by
                assert subscribed == {"type": "subscribed", "intent_hash": USER_HASH, "seq": 1}
                shard.write_bytes(held)  # the shard arrives; the daemon indexes the block
                pushed = await ws.receive_json(timeout=120)
        assert pushed["type"] == "intent_update" and pushed["intent_hash"] == USER_HASH and pushed["seq"] == 2
        assert pushed["status"] == "executed" and pushed["block_height"] == heights[0]
        assert pushed["details"]["solver_id"] == SOLVER
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=120)
    assert proc.returncode == 0


def test_the_compose_api_service_serves_against_clickhouse_and_redis() -> None:
    from urllib.parse import urlsplit

    import yaml

    services = yaml.safe_load((Path(__file__).parents[1] / "docker-compose.yml").read_text())["services"]
    api = services["api"]
    assert api["command"] == ["intents-indexer", "serve"]
    env = {k: str(v) for k, v in api["environment"].items()}
    store = urlsplit(env["INDEXER_STORE"].replace("${CLICKHOUSE_PASSWORD:-change-me}", "pw"))
    assert (store.hostname, store.port, store.path) == ("clickhouse", 8123, "/near_intents")
    assert urlsplit(env["INDEXER_REDIS_URL"]).hostname == "redis" and "redis" in services
    port = env["INDEXER_API_PORT"]
    assert f"{port}:{port}" in " ".join(api["ports"]) and env["INDEXER_API_HOST"] == "0.0.0.0"
    assert "/readyz" in " ".join(api["healthcheck"]["test"]) and "INDEXER_API_PORT" in " ".join(api["healthcheck"]["test"])
    # the settings the service passes are valid settings
    from indexer.config import load_settings

    settings = load_settings(api_port=int(port), api_host=env["INDEXER_API_HOST"], redis_url=env["INDEXER_REDIS_URL"])
    assert settings.redis_url == "redis://redis:6379/0"
