"""The alert pack: rules, their unit tests, the Alertmanager routing and inhibition, the runbook.

promtool and amtool come with Debian's `prometheus` and `prometheus-alertmanager` packages, which
`.ci/run` installs; a real Alertmanager runs on loopback for the routing and inhibition tests.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from alertstack import Alertmanager, WebhookReceiver, require

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "alerts" / "rules.yml"
RULE_TESTS = ROOT / "alerts" / "tests" / "rules_test.yml"
AM_CONFIG = ROOT / "alerts" / "alertmanager.yml"
RUNBOOK = ROOT / "alerts" / "RUNBOOK.md"

REQUIRED_ALERTS = {
    "IndexerDown", "IndexerStalled", "IndexerLagHigh", "SourceErrors", "DeadLetters", "RollupStale",
    "SolverSuccessRateLow", "IntentFailureRateHigh", "SolverGasHigh", "VerifierIdle",
}


def _alerts() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [r for g in groups for r in g["rules"] if "alert" in r]


def _thresholds() -> list[str]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [r["record"] for g in groups for r in g["rules"] if r.get("record", "").startswith("near_intents:threshold:")]


def _run(*cmd: str) -> subprocess.CompletedProcess[str]:
    require(cmd[0])
    return subprocess.run(list(cmd), capture_output=True, text=True, timeout=120, cwd=ROOT)


def test_rules_pass_promtool_check() -> None:
    proc = _run("promtool", "check", "rules", str(RULES))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout


def test_rule_unit_tests_pass() -> None:
    proc = _run("promtool", "test", "rules", str(RULE_TESTS))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout


def test_every_required_alert_is_defined_once() -> None:
    names = [a["alert"] for a in _alerts()]
    assert len(names) == len(set(names))
    assert REQUIRED_ALERTS <= set(names)


@pytest.mark.parametrize("alert", _alerts(), ids=lambda a: a["alert"])
def test_alert_has_for_severity_and_annotations(alert: dict[str, Any]) -> None:
    assert alert.get("for"), "every alert waits before it fires"
    assert alert["labels"]["severity"] in {"critical", "warning"}
    for key in ("summary", "description", "runbook_url"):
        assert alert["annotations"].get(key), key
    anchor = alert["annotations"]["runbook_url"].rsplit("#", 1)[1]
    headings = {h.strip().lower() for h in re.findall(r"^## (.+)$", RUNBOOK.read_text(), re.M)}
    assert anchor in headings, f"RUNBOOK.md has no section for {alert['alert']}"


def test_every_alert_has_a_firing_and_a_quiet_case() -> None:
    cases = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    fires: set[str] = set()
    quiet: set[str] = set()
    for case in cases:
        for check in case.get("alert_rule_test", []):
            (fires if check["exp_alerts"] else quiet).add(check["alertname"])
    names = {a["alert"] for a in _alerts()}
    assert names - fires == set(), "alerts with no case where they fire"
    assert names - quiet == set(), "alerts with no case where they stay quiet"


def test_every_threshold_is_documented() -> None:
    text = RUNBOOK.read_text()
    assert _thresholds()
    for name in _thresholds():
        assert f"`{name}`" in text, f"{name} missing from the runbook's threshold table"


def test_every_alert_reads_its_threshold_from_the_threshold_rules() -> None:
    used = " ".join(a["expr"] for a in _alerts())
    for name in _thresholds():
        assert name in used, f"{name} is defined but no alert uses it"


def test_alertmanager_config_is_valid() -> None:
    proc = _run("amtool", "check-config", str(AM_CONFIG))
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize(("labels", "receiver"), [
    (["severity=critical", "alertname=SolverSuccessRateLow"], "pager"),
    (["severity=critical", "alertname=IndexerDown"], "pager"),
    (["severity=warning", "alertname=DeadLetters"], "ticket"),
    (["alertname=Unlabelled"], "ticket"),
])
def test_routing(labels: list[str], receiver: str) -> None:
    proc = _run("amtool", "config", "routes", "test", f"--config.file={AM_CONFIG}", *labels)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.split() == [receiver]


def test_every_alert_severity_routes_to_a_receiver_with_resolved_notifications() -> None:
    config = yaml.safe_load(AM_CONFIG.read_text())
    receivers = {r["name"]: r for r in config["receivers"]}
    for alert in _alerts():
        sev = alert["labels"]["severity"]
        route = next(r for r in config["route"]["routes"] if f'severity="{sev}"' in r["matchers"])
        hooks = receivers[route["receiver"]]["webhook_configs"]
        assert all(h["send_resolved"] for h in hooks)


def test_runbook_queries_run_on_a_store(store) -> None:  # type: ignore[no-untyped-def]
    from indexer.query import run_query

    queries = re.findall(r'`intents-indexer query "([^"]+)"`', RUNBOOK.read_text())
    assert len(queries) >= 4
    for sql in queries:
        run_query(store, sql.replace("<solver>", "solver.near"))  # raises on an unknown table or column


# --- a real Alertmanager ---------------------------------------------------------------------------

@pytest.fixture
def alertmanager(tmp_path: Path):  # type: ignore[no-untyped-def]
    with WebhookReceiver() as hook, Alertmanager(tmp_path, AM_CONFIG, hook.url) as am:
        yield am, hook


def test_critical_pages_and_warning_tickets(alertmanager) -> None:  # type: ignore[no-untyped-def]
    am, hook = alertmanager
    am.post([
        {"labels": {"alertname": "SolverSuccessRateLow", "severity": "critical", "solver": "bad.near",
                    "contract": "intents.near"}, "annotations": {"summary": "s"}},
        {"labels": {"alertname": "DeadLetters", "severity": "warning", "kind": "args"}},
    ])
    page = hook.wait_for(lambda n: n["receiver"] == "pager")
    ticket = hook.wait_for(lambda n: n["receiver"] == "ticket")
    assert [a["labels"]["solver"] for a in page["alerts"]] == ["bad.near"]
    assert [a["labels"]["alertname"] for a in ticket["alerts"]] == ["DeadLetters"]


def test_indexer_down_inhibits_stalled_and_lag_of_the_same_instance(alertmanager) -> None:  # type: ignore[no-untyped-def]
    am, hook = alertmanager
    am.post([
        {"labels": {"alertname": "IndexerDown", "severity": "critical", "instance": "a:9464"}},
        {"labels": {"alertname": "IndexerStalled", "severity": "critical", "instance": "a:9464"}},
        {"labels": {"alertname": "IndexerLagHigh", "severity": "warning", "instance": "a:9464"}},
        {"labels": {"alertname": "IndexerLagHigh", "severity": "warning", "instance": "b:9464"}},
    ])
    hook.wait_for(lambda n: any(a["labels"]["alertname"] == "IndexerDown" for a in n["alerts"]))
    hook.wait_for(lambda n: any(a["labels"].get("instance") == "b:9464" for a in n["alerts"]))
    expected = {("IndexerDown", "a:9464"): "active", ("IndexerStalled", "a:9464"): "suppressed",
                ("IndexerLagHigh", "a:9464"): "suppressed", ("IndexerLagHigh", "b:9464"): "active"}
    assert am.wait_states(expected) == expected
    sent = {(a["labels"]["alertname"], a["labels"].get("instance")) for n in hook.received for a in n["alerts"]}
    assert ("IndexerStalled", "a:9464") not in sent
    assert ("IndexerLagHigh", "a:9464") not in sent


def test_promtool_and_amtool_are_installed() -> None:
    # A missing binary must fail the suite, not skip it: CI installs both.
    assert shutil.which("promtool") and shutil.which("amtool")
