"""Real Prometheus and Alertmanager processes on loopback, and a webhook receiver, for tests.

The repository's own configuration files are used, with only what a test must change: webhook
URLs pointing at the test's receiver, and short grouping and evaluation intervals.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

ALERTMANAGER_BIN = "prometheus-alertmanager"  # Debian's name; upstream calls it alertmanager
PROMETHEUS_BIN = "prometheus"


def require(binary: str) -> str:
    found = shutil.which(binary) or (shutil.which("alertmanager") if binary == ALERTMANAGER_BIN else None)
    if not found:
        pytest.fail(f"{binary} is not installed: `apt-get install prometheus prometheus-alertmanager` "
                    "(.ci/run installs them)")
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, proc: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"{proc.args[0]} exited {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"{url} did not answer within {timeout:.0f} s")


class WebhookReceiver:
    """Collects Alertmanager's webhook notifications (JSON bodies) posted to /<receiver>."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self._cond = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                body["path"] = self.path
                with receiver._cond:
                    receiver.received.append(body)
                    receiver._cond.notify_all()
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> WebhookReceiver:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def wait_for(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 60.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for note in self.received:
                    if predicate(note):
                        return note
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no matching notification within {timeout:.0f} s; got {self.received}")
                self._cond.wait(left)


def _fast_routes(route: dict[str, Any]) -> None:
    route.update(group_wait="1s", group_interval="1s", repeat_interval="1h")
    for child in route.get("routes", []):
        _fast_routes(child)


class _Server:
    """A server binary run from ``_cmd`` until the context ends; ready once ``url``/-/ready answers."""

    _cmd: list[str]
    url: str
    _proc: subprocess.Popen[bytes] | None = None

    def __enter__(self):  # type: ignore[no-untyped-def]
        self._proc = subprocess.Popen(self._cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_http(f"{self.url}/-/ready", self._proc)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._proc is not None
        self._proc.terminate()
        self._proc.wait(timeout=30)


class Alertmanager(_Server):
    """The repository's alertmanager.yml with its webhooks aimed at ``hook_url``/<receiver>."""

    def __init__(self, workdir: Path, config: Path, hook_url: str):
        conf = yaml.safe_load(config.read_text())
        for receiver in conf["receivers"]:
            for hook in receiver.get("webhook_configs", []):
                hook["url"] = f"{hook_url}/{receiver['name']}"
        _fast_routes(conf["route"])
        self.config = workdir / "alertmanager.yml"
        self.config.write_text(yaml.safe_dump(conf))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._cmd = [require(ALERTMANAGER_BIN), f"--config.file={self.config}",
                     f"--storage.path={workdir / 'am-data'}", f"--web.listen-address=127.0.0.1:{self.port}",
                     "--cluster.listen-address=", "--log.level=warn"]

    def post(self, alerts: list[dict[str, Any]]) -> None:
        req = urllib.request.Request(f"{self.url}/api/v2/alerts", data=json.dumps(alerts).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(req, timeout=10) as resp:
            assert resp.status == 200

    def states(self) -> dict[tuple[str, str | None], str]:
        with urllib.request.urlopen(f"{self.url}/api/v2/alerts", timeout=10) as resp:
            alerts = json.load(resp)
        return {(a["labels"]["alertname"], a["labels"].get("instance")): a["status"]["state"] for a in alerts}

    def wait_states(self, expected: dict[tuple[str, str | None], str], timeout: float = 30.0
                    ) -> dict[tuple[str, str | None], str]:
        """The alerts' states once they equal ``expected`` (inhibition applies once the source alert
        has been ingested), or the last states seen at the deadline."""
        deadline = time.monotonic() + timeout
        while True:
            states = self.states()
            if states == expected or time.monotonic() > deadline:
                return states
            time.sleep(0.2)


def fast_rules(rules: Path, out: Path, wait: str = "1s") -> Path:
    """alerts/rules.yml with every `for:` shortened to ``wait``, so a test sees alerts fire in
    seconds; expressions, thresholds, labels and annotations stay as shipped."""
    conf = yaml.safe_load(rules.read_text())
    for group in conf["groups"]:
        group["interval"] = "1s"
        for rule in group["rules"]:
            if "for" in rule:
                rule["for"] = wait
    out.write_text(yaml.safe_dump(conf, sort_keys=False))
    return out


class Prometheus(_Server):
    """Prometheus scraping ``targets`` (job name -> host:port) every second, evaluating ``rules``
    every second and sending alerts to ``alertmanager_url``."""

    def __init__(self, workdir: Path, targets: dict[str, str], rules: Path, alertmanager_url: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = {
            "global": {"scrape_interval": "1s", "scrape_timeout": "900ms", "evaluation_interval": "1s"},
            "rule_files": [str(rules)],
            "alerting": {"alertmanagers": [{"static_configs": [{"targets": [alertmanager_url.split("//", 1)[1]]}]}]},
            "scrape_configs": [{"job_name": job, "static_configs": [{"targets": [t]}]} for job, t in targets.items()],
        }
        self.config = workdir / "prometheus.yml"
        self.config.write_text(yaml.safe_dump(config))
        self._cmd = [require(PROMETHEUS_BIN), f"--config.file={self.config}",
                     f"--storage.tsdb.path={workdir / 'prom-data'}", f"--web.listen-address=127.0.0.1:{self.port}",
                     "--log.level=warn"]

    def query(self, promql: str) -> list[dict[str, Any]]:
        from urllib.parse import urlencode

        with urllib.request.urlopen(f"{self.url}/api/v1/query?{urlencode({'query': promql})}", timeout=10) as resp:
            return json.load(resp)["data"]["result"]
