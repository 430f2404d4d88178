"""docker-compose.yml: the indexer's healthcheck is its /readyz, asked exactly as the container asks it.

No container engine runs here, so the healthcheck's own command line (python -c ...) runs against
a real daemon on loopback, with the port the service's environment gives it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from clitools import LogReader, cli_env, free_port, popen, wait_for_http
from lakebuild import fixture_lake

pytestmark = pytest.mark.timeout(300)

COMPOSE = Path(__file__).resolve().parents[1] / "docker-compose.yml"
HOUR = {"INDEXER_RETRY_BASE_DELAY": "3600", "INDEXER_RETRY_MAX_DELAY": "3600", "INDEXER_LOG_LEVEL": "debug",
        "INDEXER_POLL_INTERVAL": "0.05"}


def _service() -> dict:
    return yaml.safe_load(COMPOSE.read_text())["services"]["indexer"]


def _healthcheck(port: int) -> subprocess.CompletedProcess[str]:
    """Run the service's healthcheck command with the service's environment, the port set to ``port``."""
    test = _service()["healthcheck"]["test"]
    assert test[0] == "CMD" and test[1] == "python"
    env = {k: v for k, v in os.environ.items() if not k.startswith("INDEXER_")}
    env["INDEXER_METRICS_PORT"] = str(port)
    return subprocess.run([sys.executable, *test[2:]], capture_output=True, text=True, env=env, timeout=60)


def test_the_healthcheck_asks_readyz_on_the_metrics_port() -> None:
    service = _service()
    check = service["healthcheck"]
    test = check["test"]
    assert test[:3] == ["CMD", "python", "-c"] and len(test) == 4
    assert "/readyz" in test[3] and "urllib.request" in test[3] and "INDEXER_METRICS_PORT" in test[3]
    assert "curl" not in test[3] and "wget" not in test[3]  # the image has neither
    env = service["environment"]
    assert env["INDEXER_METRICS_PORT"] == "9464" and env["INDEXER_METRICS_HOST"] == "0.0.0.0"
    assert "9464:9464" in " ".join(service["ports"])
    for key in ("interval", "timeout", "retries", "start_period"):
        assert key in check, key
    seconds = {k: int(str(check[k]).rstrip("s")) for k in ("interval", "timeout", "start_period")}
    assert seconds["timeout"] < seconds["interval"] <= 60 and seconds["start_period"] >= 60


def test_the_healthcheck_fails_when_nothing_listens() -> None:
    assert _healthcheck(free_port()).returncode != 0


def test_the_healthcheck_passes_when_ready_and_fails_while_catching_up(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    heights = fixture_lake(lake, copies=2)
    # The fourth block's shard is not there yet: the daemon stores three blocks and retries until it comes.
    missing = next(iter(sorted((lake / f"{heights[3]:012d}").glob("shard_*.json"))))
    kept = missing.read_bytes()
    missing.unlink()
    port = free_port()
    proc = popen("run", "--source", f"files:{lake}", "--store", f"chdb://{tmp_path / 'store'}", "--start-block",
                 str(heights[0]), "--metrics-port", str(port), "--ready-max-lag-blocks", "2",
                 env=cli_env(**{**HOUR, "INDEXER_SHARD_RETRY_LIMIT": "1000", "INDEXER_RETRY_BASE_DELAY": "0.05",
                                "INDEXER_RETRY_MAX_DELAY": "0.2"}))
    try:
        logs = LogReader(proc)
        logs.wait_for(lambda e: e.get("event") == "batch stored" and e.get("height") == heights[2])
        wait_for_http(f"http://127.0.0.1:{port}/readyz", lambda s, b: b["head_height"] == heights[-1])
        behind = _healthcheck(port)
        assert behind.returncode != 0 and "503" in behind.stderr
        missing.write_bytes(kept)  # the shard arrives: the daemon catches up
        wait_for_http(f"http://127.0.0.1:{port}/readyz", lambda s, b: s == 200)
        assert _healthcheck(port).returncode == 0
    finally:
        proc.terminate()
        proc.wait(timeout=120)


def test_the_healthcheck_fails_while_the_store_is_unreachable(tmp_path: Path) -> None:
    port = free_port()
    proc = popen("run", "--source", f"files:{tmp_path}", "--store", "http://default:secret@127.0.0.1:9/near_intents",
                 "--metrics-port", str(port), env=cli_env(**HOUR))
    try:
        LogReader(proc).wait_for(lambda e: e.get("event") == "store unavailable; retrying")
        result = _healthcheck(port)
        assert result.returncode != 0 and "503" in result.stderr
    finally:
        proc.terminate()
        proc.wait(timeout=120)
