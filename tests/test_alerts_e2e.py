"""End to end: a real Prometheus scrapes the daemon while it indexes a simulated lake in which a
solver collapses; the shipped rules page through a real Alertmanager to a webhook, and the page
resolves once the solver recovers.

The lake is delivered to the daemon's files source in two stages, as a chain would: first up to
the end of the collapse (the solver's 1h window is mostly failures: SolverSuccessRateLow fires),
then more than an hour of healthy blocks (the window holds no failure: it resolves). Only the
rules' `for:` durations are shortened; expressions, thresholds and annotations are as shipped.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
from pathlib import Path
from typing import Any

import pytest

from alertstack import Alertmanager, Prometheus, WebhookReceiver, fast_rules
from clitools import LogReader, cli, cli_env, free_port, popen

pytestmark = pytest.mark.timeout(900)

ROOT = Path(__file__).resolve().parent.parent
BLOCK_TIME = 5.0  # seconds a block: an hour of chain is 720 blocks
BLOCKS = 2000
COLLAPSE = (300, 1000)  # block offsets of the collapse, inclusive


def _simulate(lake: Path) -> dict[str, Any]:
    cli("simulate", "--out", str(lake), "--blocks", str(BLOCKS), "--block-time", str(BLOCK_TIME),
        "--noise-bytes-per-block", "500", "--workshop-solvers", "0", "--solvers", "6", "--failure-rate", "0.02",
        "--skip-rate", "0", "--intents-per-block", "3", "--incident-solver-collapse",
        f"1@{COLLAPSE[0]}-{COLLAPSE[1]}:0.0", "--quiet", timeout=600)
    return json.loads((lake / "truth.json").read_text())


def _deliver(lake: Path, source: Path, upto: int) -> None:
    """Copy the lake's block folders up to height ``upto`` into the source folder, each one under
    a temporary name first, so the daemon never sees half a block."""
    for block in sorted(p for p in lake.iterdir() if p.is_dir() and p.name.isdigit() and int(p.name) <= upto):
        target = source / block.name
        if not target.exists():
            tmp = source / f".{block.name}.tmp"
            shutil.copytree(block, tmp)
            os.rename(tmp, target)


def _solver_pages(hook: WebhookReceiver, status: str, solver: str):  # type: ignore[no-untyped-def]
    def match(note: dict[str, Any]) -> bool:
        return note["receiver"] == "pager" and any(
            a["labels"]["alertname"] == "SolverSuccessRateLow" and a["labels"].get("solver") == solver
            and a["status"] == status for a in note["alerts"])
    return match


def test_solver_collapse_pages_and_resolves(tmp_path: Path) -> None:
    lake, source, store = tmp_path / "lake", tmp_path / "source", tmp_path / "store"
    source.mkdir()
    truth = _simulate(lake)
    first = truth["blocks"]["first_height"]
    solver = truth["incidents"][0]["solver"]
    _deliver(lake, source, first + COLLAPSE[1])

    port = free_port()
    contracts = [a for c in truth["contracts"] for a in ("--contract", c)]
    accounts = [a for s in truth["solver_accounts"] for a in ("--solver-account", s)]
    daemon = popen("run", "--store", f"chdb://{store}", "--source", f"files:{source}", "--start-block", str(first),
                   "--metrics-port", str(port), "--rollup-interval", "1", *contracts, *accounts,
                   env=cli_env(INDEXER_POLL_INTERVAL="0.2"))
    logs = LogReader(daemon)
    rules = fast_rules(ROOT / "alerts" / "rules.yml", tmp_path / "rules.yml")
    try:
        with WebhookReceiver() as hook, Alertmanager(tmp_path, ROOT / "alerts" / "alertmanager.yml", hook.url) as am, \
                Prometheus(tmp_path, {"near-intents-indexer": f"127.0.0.1:{port}"}, rules, am.url) as prom:
            page = hook.wait_for(_solver_pages(hook, "firing", solver), timeout=600)
            alert = next(a for a in page["alerts"] if a["labels"]["alertname"] == "SolverSuccessRateLow")
            assert alert["labels"]["severity"] == "critical" and alert["labels"]["contract"] == "intents.near"
            assert solver in alert["annotations"]["summary"]
            assert alert["annotations"]["runbook_url"].endswith("#solversuccessratelow")
            assert "network's" in alert["annotations"]["description"]
            # Only the collapsing solver pages: the others stay above the network-relative threshold.
            paged = {a["labels"].get("solver") for n in hook.received for a in n["alerts"]
                     if a["labels"]["alertname"] == "SolverSuccessRateLow"}
            assert paged == {solver}

            _deliver(lake, source, truth["blocks"]["last_height"])
            hook.wait_for(_solver_pages(hook, "resolved", solver), timeout=600)
            # Resolved because the solver recovered, not because its series went away.
            ratio = prom.query(f'near_intents_solver_success_ratio{{solver="{solver}", window="1h"}}')
            assert ratio and float(ratio[0]["value"][1]) > 0.8
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=120)
    assert daemon.returncode == 0, "".join(logs.raw[-20:])
