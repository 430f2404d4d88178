"""The Grafana dashboards: valid JSON of the generator's making, provisioned datasources, every
ClickHouse query run (macros and variables expanded as the ClickHouse plugin expands them) against
a store filled from a simulated lake and rolled up, every PromQL expression parsed by a real
Prometheus."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from alertstack import Prometheus
from clitools import cli

pytestmark = pytest.mark.timeout(900)

ROOT = Path(__file__).resolve().parent.parent
DASHBOARDS = ROOT / "dashboards"
PROVISIONING = ROOT / "deploy" / "grafana" / "provisioning"
START = "2026-01-05T00:00:00Z"
START_S = 1767571200  # START in unix seconds
BLOCKS = 900
BLOCK_TIME = 2.0


def _generator() -> Any:
    spec = importlib.util.spec_from_file_location("dashboards_generate", DASHBOARDS / "generate.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _dashboards() -> dict[str, dict[str, Any]]:
    return {p.name: json.loads(p.read_text()) for p in sorted(DASHBOARDS.glob("*.json"))}


def _targets(kind: str) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    out = []
    for name, d in _dashboards().items():
        for p in d["panels"]:
            for t in p["targets"]:
                if t["datasource"]["type"] == kind:
                    out.append((f"{name}: {p['title']} {t['refId']}", p, t))
    return out


def test_the_json_is_what_the_generator_writes() -> None:
    gen = _generator()
    assert set(_dashboards()) == set(gen.DASHBOARDS)
    for name, build in gen.DASHBOARDS.items():
        assert (DASHBOARDS / name).read_text() == gen.render(build), f"run python dashboards/generate.py ({name})"


def test_dashboards_have_schema_41_unique_ids_and_uids() -> None:
    uids = [d["uid"] for d in _dashboards().values()]
    assert len(uids) == len(set(uids)) == 4
    for name, d in _dashboards().items():
        assert d["schemaVersion"] == 41, name
        ids = [p["id"] for p in d["panels"]]
        assert len(ids) == len(set(ids)), name
        for p in d["panels"]:
            assert p["targets"] and p["gridPos"]["w"] > 0, p["title"]


def test_every_datasource_is_provisioned() -> None:
    provisioned = [d for f in (PROVISIONING / "datasources").glob("*.yml")
                   for d in yaml.safe_load(f.read_text())["datasources"]]
    uids = {d["uid"] for d in provisioned}
    types = {d["type"] for d in provisioned}
    for name, d in _dashboards().items():
        variables = {v["name"]: v for v in d["templating"]["list"]}
        refs = [p["datasource"] for p in d["panels"]] + [t["datasource"] for p in d["panels"] for t in p["targets"]]
        refs += [v["datasource"] for v in variables.values() if "datasource" in v]
        for ref in refs:
            if ref["uid"].startswith("${"):
                var = variables[ref["uid"][2:-1]]
                assert var["type"] == "datasource" and var["query"] == ref["type"] in types
                assert var["current"]["value"] in uids
            else:
                assert ref["uid"] in uids, f"{name}: datasource {ref['uid']} is not provisioned"


def test_the_file_provider_loads_this_folder() -> None:
    provider = yaml.safe_load((PROVISIONING / "dashboards" / "dashboards.yml").read_text())["providers"][0]
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    mounts = compose["services"]["grafana"]["volumes"]
    assert f"./dashboards:{provider['options']['path']}:ro" in mounts


# --- ClickHouse queries on a real store ------------------------------------------------------------

RUN = """
import json, sys
from indexer.store.client import Store
s = Store(sys.argv[1])
s.use_database(s.database)  # as the datasource's defaultDatabase: panels name tables unqualified
out = []
for sql in json.loads(sys.stdin.read()):
    cols, rows = s.query(sql)
    types = [t.name for t in s.client.query(sql).column_types] if rows else []
    out.append({"columns": list(cols), "types": types, "rows": len(rows)})
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def rolled_up(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("dashboards")
    lake, store = tmp / "lake", tmp / "store"
    backfill = cli("simulate", "--out", str(lake), "--blocks", str(BLOCKS), "--block-time", str(BLOCK_TIME),
                   "--start-time", START, "--noise-bytes-per-block", "500", "--failure-rate", "0.1",
                   "--quiet", timeout=600)
    assert backfill.returncode == 0
    truth = json.loads((lake / "truth.json").read_text())
    args = ["backfill", "--store", f"chdb://{store}", "--source", f"files:{lake}",
            "--from", str(truth["blocks"]["first_height"]), "--to", str(truth["blocks"]["last_height"])]
    args += [a for c in truth["contracts"] for a in ("--contract", c)]
    args += [a for s in truth["solver_accounts"] for a in ("--solver-account", s)]
    cli(*args, timeout=600)
    cli("rollup", "--once", "--store", f"chdb://{store}", timeout=300)
    return store, truth


def _run(store: Path, queries: list[str]) -> list[dict[str, Any]]:
    proc = subprocess.run([sys.executable, "-c", RUN, f"chdb://{store}"], input=json.dumps(queries),
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


def test_every_clickhouse_query_runs_and_returns_what_its_panel_needs(rolled_up) -> None:  # type: ignore[no-untyped-def]
    store, truth = rolled_up
    # Every query for each verifier of the lake (intents.near, and the workshop verifier whose
    # solvers have latencies), with its solvers as the `solver` variable.
    contracts = sorted({r[0] for r in truth["details"]["solver_executions"]})
    assert len(contracts) == 2
    end = START_S + int(BLOCKS * BLOCK_TIME * 1.2)
    targets = _targets("grafana-clickhouse-datasource")
    assert len(targets) >= 10
    # Each query at three intervals, so each grain of the rollup tables answers once.
    plan = [(label, panel, t, interval, c) for label, panel, t in targets for interval in (60, 3600, 86400)
            for c in contracts]
    queries = []
    for _, _, t, interval, c in plan:
        solvers = sorted({r[1] for r in truth["details"]["solver_executions"] if r[0] == c})
        queries.append(_generator().expand(t["rawSql"], START_S, end, interval, {"contract": [c], "solver": solvers}))
    results = _run(store, queries)
    rows: dict[str, int] = {}
    for (label, panel, target, interval, c), res in zip(plan, results):
        where = f"{label} at {interval} s for {c}"
        if interval == 60:
            rows[label] = rows.get(label, 0) + res["rows"]
        if panel["type"] in ("timeseries", "heatmap") and res["rows"]:
            assert res["columns"][0] == "time" and res["types"][0].startswith("DateTime"), where
        if panel["type"] == "heatmap":
            assert res["columns"] == ["time", "le", "executions"], where
    assert [label for label, n in rows.items() if n == 0] == [], "panels with no rows on a lake with traffic"


def test_variable_queries_return_values(rolled_up) -> None:  # type: ignore[no-untyped-def]
    store, _ = rolled_up
    queries = []
    for d in _dashboards().values():
        for v in d["templating"]["list"]:
            if v["type"] == "query" and v["datasource"]["type"] == "grafana-clickhouse-datasource":
                queries.append(_generator().expand(v["query"], START_S, START_S + 3600, 60, {"contract": ["intents.near"]}))
    assert len(queries) >= 3
    assert all(r["rows"] > 0 for r in _run(store, queries))


# --- PromQL on a real Prometheus --------------------------------------------------------------------

def test_every_promql_expression_parses(tmp_path: Path) -> None:
    rules = tmp_path / "empty.yml"
    rules.write_text("groups: []\n")
    exprs = [t["expr"] for _, _, t in _targets("prometheus")]
    assert len(exprs) >= 10
    with Prometheus(tmp_path, {}, rules, "http://127.0.0.1:1") as prom:
        for expr in exprs:
            promql = (expr.replace("$__rate_interval", "1m").replace("$instance", ".*")
                      .replace("$contract", "intents.near").replace("$solver", ".*"))
            url = f"{prom.url}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"
            try:
                with urllib.request.urlopen(url, timeout=10) as resp:
                    assert json.load(resp)["status"] == "success", expr
            except urllib.error.HTTPError as exc:
                pytest.fail(f"Prometheus rejects {expr!r}: {exc.read().decode()}")
