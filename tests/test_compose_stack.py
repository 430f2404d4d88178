"""docker-compose.yml as a whole: it validates, what it mounts exists, and the daemon, Prometheus,
Alertmanager, Grafana and ClickHouse files agree on ports, users, databases and URLs.

No container engine runs here: `docker-compose config` (Debian's docker-compose, installed by
.ci/run) validates the file, and the demo profile's entry script runs on this machine.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from clitools import LogReader, cli, cli_env, free_port

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "docker-compose.yml"
PROMETHEUS = ROOT / "deploy" / "prometheus.yml"
DATASOURCES = ROOT / "deploy" / "grafana" / "provisioning" / "datasources"
GRAFANA_USERS = ROOT / "deploy" / "clickhouse" / "users.d" / "grafana.xml"


def _compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def _services() -> dict[str, Any]:
    return _compose()["services"]


def _env(service: str) -> dict[str, str]:
    return {k: str(v) for k, v in _services()[service].get("environment", {}).items()}


def _default(value: str) -> str:
    """`${VAR:-default}` -> default, as compose substitutes it with VAR unset."""
    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", value)


def _datasources() -> list[dict[str, Any]]:
    return [d for f in sorted(DATASOURCES.glob("*.yml")) for d in yaml.safe_load(f.read_text())["datasources"]]


def test_compose_file_validates_with_and_without_the_demo_profile() -> None:
    binary = shutil.which("docker-compose")
    if not binary:
        pytest.fail("docker-compose is not installed: `apt-get install docker-compose` (.ci/run installs it)")
    for args in ([], ["--profile", "demo"]):
        proc = subprocess.run([binary, "-f", str(COMPOSE), *args, "config", "-q"], capture_output=True, text=True,
                              timeout=60, cwd=ROOT)
        assert proc.returncode == 0, proc.stderr


def test_every_mounted_file_exists() -> None:
    mounts = [v.split(":")[0] for s in _services().values() for v in s.get("volumes", []) if v.startswith("./")]
    assert mounts
    for host in mounts:
        assert (ROOT / host).exists(), f"docker-compose.yml mounts {host}, which the repository does not hold"


def test_every_service_has_a_healthcheck_and_a_pinned_image() -> None:
    for name, service in _services().items():
        assert "healthcheck" in service, f"{name} has no healthcheck"
        image = service["image"]
        if "build" in service:  # built from this repository
            continue
        tag = image.rsplit(":", 1)[1] if ":" in image else ""
        assert tag and tag != "latest", f"{name}: pin the image version ({image})"


def test_every_named_volume_is_declared() -> None:
    declared = set(_compose()["volumes"])
    used = {v.split(":")[0] for s in _services().values() for v in s.get("volumes", []) if not v.startswith(("./", "/"))}
    assert used <= declared


def test_clickhouse_server_runs_the_embedded_engines_major() -> None:
    # In a subprocess: this process may already hold the session's chDB.
    engine = subprocess.run([sys.executable, "-c", "import chdb; print(chdb.query('SELECT version()', 'CSV'))"],
                            capture_output=True, text=True, timeout=120, check=True).stdout.strip().strip('"')
    tag = _services()["clickhouse"]["image"].rsplit(":", 1)[1]
    assert engine.split(".")[:2] == tag.split(".")[:2], f"chDB runs ClickHouse {engine}, compose {tag}"


def test_prometheus_scrapes_the_daemons_on_their_metrics_ports() -> None:
    jobs = {j["job_name"]: j for j in yaml.safe_load(PROMETHEUS.read_text())["scrape_configs"]}
    expected = {"near-intents-indexer": "indexer", "near-intents-demo": "indexer-demo"}
    for job, service in expected.items():
        target = jobs[job]["static_configs"][0]["targets"][0]
        host, port = target.split(":")
        assert host == service and port == _env(service)["INDEXER_METRICS_PORT"]
        assert f"{port}:{port}" in " ".join(_services()[service]["ports"])
    # IndexerDown watches the live job by name.
    assert 'up{job="near-intents-indexer"}' in (ROOT / "alerts" / "rules.yml").read_text()


def test_prometheus_loads_the_rules_and_sends_to_alertmanager() -> None:
    conf = yaml.safe_load(PROMETHEUS.read_text())
    prom = _services()["prometheus"]
    mounted = {v.split(":")[1]: v.split(":")[0] for v in prom["volumes"] if v.startswith("./")}
    config_dir = Path(next(c.split("=", 1)[1] for c in prom["command"] if c.startswith("--config.file="))).parent
    for rule_file in conf["rule_files"]:
        in_container = config_dir / rule_file
        host = next(ROOT / src / in_container.relative_to(dst) for dst, src in mounted.items()
                    if in_container.is_relative_to(dst) and (ROOT / src).is_dir())
        assert host.is_file(), f"rule file {rule_file} is not mounted from the repository"
    target = conf["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"][0]
    assert target == "alertmanager:9093"
    assert any(p.endswith(":9093:9093") for p in _services()["alertmanager"]["ports"])


def test_grafana_datasources_reach_the_services_as_the_read_only_user() -> None:
    sources = {d["uid"]: d for d in _datasources()}
    assert urlsplit(sources["prometheus"]["url"]).netloc == "prometheus:9090"
    grafana_env = _env("grafana")
    user_xml = ET.parse(GRAFANA_USERS).getroot()
    user = user_xml.find("users/grafana")
    assert user is not None
    assert user.find("password").get("from_env") == "GRAFANA_CLICKHOUSE_PASSWORD"  # type: ignore[union-attr]
    profile = user.findtext("profile")
    assert user_xml.findtext(f"profiles/{profile}/readonly") == "2"
    allowed = {d.text for d in user.findall("allow_databases/database")}
    # The same password reaches ClickHouse (which reads the XML) and Grafana (which logs in with it).
    assert _default(_env("clickhouse")["GRAFANA_CLICKHOUSE_PASSWORD"]) == _default(grafana_env["GRAFANA_CLICKHOUSE_PASSWORD"])
    store_dbs = {"clickhouse": urlsplit(_env("indexer")["INDEXER_STORE"]).path.strip("/"),
                 "clickhouse-demo": urlsplit(_env("indexer-demo")["INDEXER_STORE"]).path.strip("/")}
    for uid, database in store_dbs.items():
        ds = sources[uid]
        assert ds["type"] == "grafana-clickhouse-datasource"
        assert ds["jsonData"]["host"] == "clickhouse" and ds["jsonData"]["port"] == 9000
        assert ds["jsonData"]["username"] == "$GRAFANA_CLICKHOUSE_USER" and grafana_env["GRAFANA_CLICKHOUSE_USER"] == "grafana"
        assert ds["secureJsonData"]["password"] == "$GRAFANA_CLICKHOUSE_PASSWORD"
        assert ds["jsonData"]["defaultDatabase"] == database and database in allowed


def test_indexer_stores_point_at_the_clickhouse_service() -> None:
    password = _default(_env("clickhouse")["CLICKHOUSE_PASSWORD"])
    for service in ("indexer", "indexer-demo"):
        url = urlsplit(_default(_env(service)["INDEXER_STORE"]))
        assert (url.hostname, url.port, url.username, url.password) == ("clickhouse", 8123, "default", password)


def _wait_for_indexed_height(port: int, truth: Path, proc: subprocess.Popen[str], timeout: float = 480) -> None:
    """Until the daemon's /metrics shows the last height of the lake (truth.json is written last)."""
    import time
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    deadline = time.monotonic() + timeout
    seen = None
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
                families = {f.name: f for f in text_string_to_metric_families(resp.read().decode())}
            seen = families["near_intents_indexed_height"].samples[0].value
        except (OSError, KeyError, IndexError):
            pass
        if seen is not None and truth.exists() and seen == json.loads(truth.read_text())["blocks"]["last_height"]:
            return
        time.sleep(0.5)
    raise AssertionError(f"the demo daemon did not reach the lake's last height (last seen {seen}, exit {proc.poll()})")


@pytest.mark.timeout(600)
def test_demo_entry_script_simulates_and_indexes_a_lake_with_an_incident(tmp_path: Path) -> None:
    lake, store = tmp_path / "lake", tmp_path / "store"
    env = cli_env(DEMO_LAKE=str(lake), DEMO_BLOCKS="400", INDEXER_STORE=f"chdb://{store}",
                  INDEXER_METRICS_PORT=str(free_port()), INDEXER_POLL_INTERVAL="0.2",
                  PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    proc = subprocess.Popen(["sh", str(ROOT / "deploy" / "demo" / "run.sh")], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    logs = LogReader(proc)  # drains stderr, so the daemon never blocks on a full pipe
    try:
        _wait_for_indexed_height(int(env["INDEXER_METRICS_PORT"]), lake / "truth.json", proc)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=120)
    truth = json.loads((lake / "truth.json").read_text())
    assert [i["kind"] for i in truth["incidents"]] == ["solver_collapse"]
    assert truth["incidents"][0]["from_offset"] == 240
    out = cli("query", "--store", f"chdb://{store}", "--format", "json",
              "SELECT count() AS n, max(block_height) AS top FROM solver_executions", env=cli_env()).stdout
    row = json.loads(out)[0] if out.lstrip().startswith("[") else json.loads(out)["data"][0]
    assert int(row["n"]) == truth["totals"]["solver_executions"]
