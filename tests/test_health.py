"""/healthz and /readyz of a running daemon, read with a real HTTP client on loopback."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from clitools import LogReader, cli_env, free_port, http_get, popen, wait_for_http
from lakebuild import fixture_lake

pytestmark = pytest.mark.timeout(300)

# Hour-long retry delays: a daemon waiting for a shard or a server is certainly still waiting
# when it is probed; the test stops it instead of waiting for the retry.
HOUR = {"INDEXER_RETRY_BASE_DELAY": "3600", "INDEXER_RETRY_MAX_DELAY": "3600", "INDEXER_LOG_LEVEL": "debug",
        "INDEXER_POLL_INTERVAL": "0.05"}


def _stop(proc) -> None:  # type: ignore[no-untyped-def]
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=120)
    assert proc.returncode == 0


def test_ready_once_caught_up(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    heights = fixture_lake(lake, copies=1)
    port = free_port()
    proc = popen("run", "--source", f"files:{lake}", "--store", f"chdb://{tmp_path / 'store'}", "--start-block",
                 str(heights[0]), "--metrics-port", str(port), "--ready-max-lag-blocks", "0", env=cli_env(**HOUR))
    try:
        LogReader(proc).wait_for(lambda e: e.get("event") == "batch stored" and e.get("height") == heights[-1])
        status, body = wait_for_http(f"http://127.0.0.1:{port}/readyz", lambda s, b: b["head_height"] is not None)
        assert status == 200, body
        assert body["ready"] is True and body["indexed_height"] == body["head_height"] == heights[-1]
        assert body["lag_blocks"] == 0 and "following the chain head" in body["reason"]
        assert http_get(f"http://127.0.0.1:{port}/healthz") == (200, {"alive": True})
    finally:
        _stop(proc)


def test_not_ready_while_catching_up(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    heights = fixture_lake(lake, copies=2)
    # The fourth block's shard is not there yet: the daemon stores the first three and waits an hour.
    next(iter(sorted((lake / f"{heights[3]:012d}").glob("shard_*.json")))).unlink()
    port = free_port()
    proc = popen("run", "--source", f"files:{lake}", "--store", f"chdb://{tmp_path / 'store'}", "--start-block",
                 str(heights[0]), "--metrics-port", str(port), "--ready-max-lag-blocks", "2", env=cli_env(**HOUR))
    try:
        LogReader(proc).wait_for(lambda e: e.get("event") == "batch stored" and e.get("height") == heights[2])
        status, body = wait_for_http(f"http://127.0.0.1:{port}/readyz",
                                     lambda s, b: b["head_height"] == heights[-1] and b["indexed_height"] == heights[2])
        assert status == 503 and body["ready"] is False
        assert body["lag_blocks"] == heights[-1] - heights[2] > 2
        assert body["reason"].startswith(f"catching up: {heights[-1] - heights[2]} blocks behind")
        assert http_get(f"http://127.0.0.1:{port}/healthz")[0] == 200  # alive all the same
    finally:
        _stop(proc)


def test_not_ready_while_the_store_is_unreachable(tmp_path: Path) -> None:
    port = free_port()
    proc = popen("run", "--source", f"files:{tmp_path}", "--store", "http://default:secret@127.0.0.1:9/near_intents",
                 "--metrics-port", str(port), env=cli_env(**HOUR))
    try:
        LogReader(proc).wait_for(lambda e: e.get("event") == "store unavailable; retrying")
        status, body = http_get(f"http://127.0.0.1:{port}/readyz")
        assert status == 503 and body["reason"].startswith("store unreachable: ")
        assert "secret" not in body["reason"]
        assert http_get(f"http://127.0.0.1:{port}/healthz")[0] == 200
    finally:
        _stop(proc)


def test_not_ready_while_the_source_is_unreachable(tmp_path: Path) -> None:
    port = free_port()
    proc = popen("run", "--source", "neardata", "--neardata-url", "http://127.0.0.1:9", "--store",
                 f"chdb://{tmp_path / 'store'}", "--metrics-port", str(port),
                 env=cli_env(**HOUR, INDEXER_SHARD_RETRY_LIMIT="0"))
    try:
        LogReader(proc).wait_for(lambda e: e.get("event") == "source unavailable; retrying")
        status, body = http_get(f"http://127.0.0.1:{port}/readyz")
        assert status == 503 and body["reason"].startswith("source unreachable: ") and "127.0.0.1:9" in body["reason"]
    finally:
        _stop(proc)


def test_readiness_rules() -> None:
    from indexer.health import Health

    stored = [0]
    h = Health(max_lag_blocks=5, stored_height=lambda: stored[0])
    assert h.readiness()[1]["reason"].startswith("store unreachable")
    h.store_ok()
    ready, body = h.readiness()
    assert not ready and body["reason"].startswith("starting")
    h.committed_height, h.head_height = 100, 106
    assert h.readiness()[0] is False and h.readiness()[1]["lag_blocks"] == 6
    h.head_height = 105
    assert h.readiness() == (True, {"ready": True, "reason": "following the chain head, 5 blocks behind",
                                    "indexed_height": 100, "head_height": 105, "lag_blocks": 5, "max_lag_blocks": 5})
    stored[0] = 104  # a batch stored: the gauge moves past the plan's start
    assert h.readiness()[1]["indexed_height"] == 104 and h.readiness()[1]["lag_blocks"] == 1
    h.source_error = "neardata: connection refused"
    assert h.readiness()[1]["reason"] == "source unreachable: neardata: connection refused"
