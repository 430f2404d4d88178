"""The exporter: rollup gauges equal a computation over the base rows (windows ending at the newest
indexed block, solvers beyond the top N folded into 'other'), a scrape reads only the cache, the
gauges come back from the store after a restart, and counters count committed rows once; a real
daemon's /metrics parses and holds every documented name with its labels."""

from __future__ import annotations

import json
import signal
import subprocess
import time
import urllib.request
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from clitools import cli_env
from indexer import metrics
from indexer.exporter import Exporter, install
from indexer.exporter.counters import kind_of
from indexer.rollup import job
from rollupcheck import _q, backfill, settings_for, simulate

pytestmark = pytest.mark.timeout(600)

SCENARIO: dict[str, Any] = {
    "blocks": 240, "seed": 3, "block_time": 20.0, "start_time": "2026-01-05T10:00:00Z", "solvers": 12,
    "unlisted_solvers": 2, "intents_per_block": 4.0, "failure_rate": 0.15, "workshop_solvers": 3,
    "workshop_intents_per_block": 1.0, "noise_bytes_per_block": 2000, "tracked_shard_fraction": 0.0,
}
WINDOWS = {"5m": 300, "1h": 3600, "24h": 86400}
TOP_N = 4


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    root = tmp_path_factory.mktemp("exporter") / "lake"
    return root, simulate(root, **SCENARIO)


def _scrape(registry=None) -> dict[str, list[Any]]:  # type: ignore[no-untyped-def]
    """What /metrics serves (``metrics.render``), or one registry's metrics."""
    out: dict[str, list[Any]] = defaultdict(list)
    body = metrics.render() if registry is None else generate_latest(registry)
    for family in text_string_to_metric_families(body.decode()):
        for s in family.samples:
            out[s.name].append((dict(s.labels), s.value))
    return out


def _gauge(samples: list[Any]) -> dict[tuple, float]:
    return {tuple(sorted(labels.items())): v for labels, v in samples}


def _expected(store) -> dict[str, dict[tuple, float]]:  # type: ignore[no-untyped-def]
    """The rollup gauges computed in Python from the base rows."""
    T = store.table
    end = store.scalar(f"SELECT toUnixTimestamp(max(block_timestamp)) FROM {T('blocks')}") // 60 * 60
    ex = store.query(f"SELECT contract_id, toString(solver_id), intDiv(toUnixTimestamp(block_timestamp), 60) * 60, "
                     f"success, gas_burnt FROM {T('solver_executions')}")[1]
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for c, s, b, _, _ in ex:
        if end - 86400 < b <= end:
            counts[c][s] += 1
    top = {c: {s for s, _ in sorted(per.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_N]} for c, per in counts.items()}
    out: dict[str, dict[tuple, float]] = defaultdict(dict)
    for window, seconds in WINDOWS.items():
        groups: dict[tuple[str, str], list[tuple[int, int]]] = defaultdict(list)
        for c, s, b, ok, gas in ex:
            if end - seconds < b <= end:
                groups[(c, s if s in top.get(c, ()) else "other")].append((ok, gas))
                groups[(c, "*")].append((ok, gas))
        for (c, s), rows in groups.items():
            n, ok = len(rows), sum(r[0] for r in rows)
            base = (("contract", c), ("solver", s), ("window", window))
            out["near_intents_solver_success_ratio"][base] = ok / n
            out["near_intents_solver_executions"][tuple(sorted((*base, ("outcome", "success"))))] = ok
            out["near_intents_solver_executions"][tuple(sorted((*base, ("outcome", "failure"))))] = n - ok
            for level, v in zip(("0.5", "0.9", "0.99"), _q([r[1] for r in rows])):
                out["near_intents_solver_gas_burnt"][tuple(sorted((*base, ("quantile", level))))] = v
        receipts: dict[str, int] = defaultdict(int)
        for c, b in store.query(f"SELECT toString(receiver_id), intDiv(toUnixTimestamp(block_timestamp), 60) * 60 "
                                f"FROM {T('receipts')}")[1]:
            receipts[c] += end - seconds < b <= end
        for c, n in receipts.items():
            out["near_intents_throughput_per_minute"][(("contract", c), ("window", window))] = n / (seconds / 60)
    reached: dict[tuple, set] = defaultdict(set)
    for c, status, intent_id, day in store.query(
            f"SELECT contract_id, toString(status), intent_id, toStartOfDay(block_timestamp) "
            f"FROM {T('intent_updates')}")[1]:
        reached[(c, status, day)].add(intent_id)
    for (c, status, _), ids in reached.items():
        key = (("contract", c), ("status", status))
        out["near_intents_by_status"][key] = out["near_intents_by_status"].get(key, 0) + len(ids)
    return out


def _zero_filled(samples: dict[tuple, float]) -> dict[tuple, float]:
    return {k: v for k, v in samples.items() if v}


def test_rollup_gauges_equal_base_rows_and_survive_a_restart(store, lake) -> None:  # type: ignore[no-untyped-def]
    backfill(store, settings_for(*lake), lake[1]["blocks"]["first_height"], lake[1]["blocks"]["last_height"])
    job.run_all(store)
    exporter = install(TOP_N)
    exporter.gauges.refresh(store)
    want = _expected(store)
    got = _scrape()
    for name, samples in want.items():
        have = _gauge(got[name])
        if name == "near_intents_solver_executions":  # top solvers quiet in a window are shown as 0
            have = _zero_filled(have)
            samples = _zero_filled(samples)
        assert have == samples, name
    assert {labels["solver"] for labels, _ in got["near_intents_solver_executions"]} >= {"*", "other"}
    assert len({labels["solver"] for labels, _ in got["near_intents_solver_executions"]
                if labels["contract"] == "intents.near"}) == TOP_N + 2
    # the lake spans less than 24h: the 24h window holds every execution truth.json counts
    for contract, per in lake[1]["solver_executions"].items():
        day = {labels["solver"]: v for labels, v in got["near_intents_solver_executions"]
               if labels["contract"] == contract and labels["window"] == "24h" and labels["outcome"] == "success"}
        assert day["*"] == sum(v["successes"] for v in per.values()), contract
        assert sum(v for s, v in day.items() if s != "*") == day["*"], contract
    end = got["near_intents_rollup_window_end_timestamp_seconds"][0][1]
    assert end == store.scalar(f"SELECT toUnixTimestamp(max(block_timestamp)) FROM {store.table('blocks')}") // 60 * 60 + 60

    # a new process: nothing counted yet, the gauges read back from the store are the same
    restarted = Exporter(TOP_N)
    restarted.gauges.refresh(store)
    from prometheus_client import CollectorRegistry

    registry = CollectorRegistry()
    registry.register(restarted.gauges)
    again = _scrape(registry)
    for name in want:
        assert _gauge(again[name]) == _gauge(got[name]), name


def test_a_scrape_never_queries_the_store(store, lake) -> None:  # type: ignore[no-untyped-def]
    from prometheus_client import CollectorRegistry

    backfill(store, settings_for(*lake), lake[1]["blocks"]["first_height"], lake[1]["blocks"]["first_height"] + 60)
    job.run_all(store)
    exporter = Exporter(TOP_N)
    exporter.gauges.refresh(store)
    registry = CollectorRegistry()
    registry.register(exporter.gauges)
    before = generate_latest(registry)
    assert exporter.gauges.text() == before  # what /metrics serves is the refresh's rendering

    class Gone:
        def __getattr__(self, name: str) -> Any:
            raise AssertionError(f"a scrape used the store ({name})")

    store.client, real = Gone(), store.client  # type: ignore[assignment]
    try:
        assert generate_latest(registry) == before
        assert exporter.gauges.text() == before
    finally:
        store.client = real


def test_counters_count_committed_rows_once(store, lake) -> None:  # type: ignore[no-untyped-def]
    exporter = install(TOP_N)
    settings = settings_for(*lake)
    low, high = lake[1]["blocks"]["first_height"], lake[1]["blocks"]["last_height"]

    def counted() -> dict[tuple, float]:
        return _gauge(_scrape()["near_intents_intents_processed_total"])

    before = counted()
    backfill(store, settings, low, high)
    backfill(store, settings, low, high)  # already indexed: nothing committed, nothing counted
    after = counted()
    rows = store.query(f"SELECT contract_id, arrayMap(k -> toString(k), kinds), toString(action), toString(status), "
                       f"count() FROM {store.table('intent_updates')} GROUP BY ALL")[1]
    want: dict[tuple, float] = defaultdict(float)
    for c, kinds, action, status, n in rows:
        want[(("contract", c), ("kind", kind_of(kinds, action)), ("status", status))] += n
    assert {k: after[k] - before.get(k, 0) for k in after if after[k] - before.get(k, 0)} == dict(want)
    assert exporter.rows is not None


# Every name a dashboard or alert may use, with its labels (README "Monitoring").
NAMES: dict[str, set[str]] = {
    "near_intents_indexed_height": set(),
    "near_intents_indexed_block_timestamp_seconds": set(),
    "near_intents_blocks_indexed_total": set(),
    "near_intents_chain_head_height": set(),
    "near_intents_rollup_seconds_bucket": {"job", "le"},
    "near_intents_rollup_last_success_timestamp_seconds": {"job"},
    "near_intents_build_info": {"version"},
    "near_intents_flush_seconds_bucket": {"le"},
    "near_intents_rows_written_total": {"table"},
    "near_intents_intents_processed_total": {"contract", "kind", "status"},
    "near_intents_gas_used_bucket": {"contract", "kind", "le"},
    "near_intents_processing_seconds_bucket": {"contract", "le"},
    "near_intents_solver_execution_seconds_bucket": {"contract", "solver", "le"},
    "near_intents_by_status": {"contract", "status"},
    "near_intents_solver_success_ratio": {"contract", "solver", "window"},
    "near_intents_solver_executions": {"contract", "solver", "window", "outcome"},
    "near_intents_solver_gas_burnt": {"contract", "solver", "window", "quantile"},
    "near_intents_throughput_per_minute": {"contract", "window"},
    "near_intents_rollup_window_end_timestamp_seconds": set(),
    "near_intents_fees_collected": {"contract", "token", "window"},
    "near_intents_volume": {"contract", "token", "side", "window"},
    "near_intents_solver_gas_per_settlement": {"contract", "solver", "window"},
    "near_intents_solver_gas_per_intent": {"contract", "solver", "window"},
    "near_intents_withdrawals": {"contract", "bridge", "outcome", "window"},
    "near_intents_withdrawal_resolve_seconds": {"contract", "bridge", "quantile", "window"},
    "near_intents_deposits": {"contract", "bridge", "window"},
}
DECLARED_ONLY = {"near_intents_store_insert_errors_total": {"table"}}  # no sample until an insert fails


def _window_end(text: str) -> float | None:
    for family in text_string_to_metric_families(text):
        if family.name == "near_intents_rollup_window_end_timestamp_seconds" and family.samples:
            return family.samples[0].value
    return None


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_scrape_of_a_running_daemon_holds_every_name(tmp_path: Path, lake) -> None:  # type: ignore[no-untyped-def]
    root, truth = lake
    port = _free_port()
    args = ["intents-indexer", "run", "--source", f"files:{root}", "--start-block", str(truth["blocks"]["first_height"]),
            "--store", f"chdb://{tmp_path / 'store'}", "--metrics-port", str(port), "--rollup-interval", "0.5",
            "--exporter-top-solvers", str(TOP_N), "--log-format", "json"]
    for spec in truth["contracts"]:
        args += ["--contract", spec]
    for account in truth["solver_accounts"]:
        args += ["--solver-account", account]
    import sys

    exe = str(Path(sys.executable).parent / "intents-indexer")
    proc = subprocess.Popen([exe, *args[1:]], env=cli_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    last_minute = truth["blocks"]["last_timestamp_ns"] // 10**9 // 60 * 60
    text = ""
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:  # until the rollup gauges show the last block's minute
            try:
                text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
            except OSError:
                text = ""
            if _window_end(text) == last_minute + 60:
                break
            time.sleep(0.5)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err[-3000:]
    families = {f.name: f for f in text_string_to_metric_families(text)}
    samples: dict[str, list[dict[str, str]]] = defaultdict(list)
    for f in families.values():
        for s in f.samples:
            samples[s.name].append(s.labels)
    end = [s.value for s in families["near_intents_rollup_window_end_timestamp_seconds"].samples]
    assert end == [last_minute + 60], json.dumps(end)
    for name, labels in NAMES.items():
        assert samples.get(name), name
        assert all(set(lbl) == labels for lbl in samples[name]), (name, samples[name][:3])
    for name, labels in DECLARED_ONLY.items():
        assert name.removesuffix("_total") in families, name
    assert {lbl["window"] for lbl in samples["near_intents_solver_executions"]} == {"5m", "1h", "24h"}
    assert {lbl["job"] for lbl in samples["near_intents_rollup_last_success_timestamp_seconds"]} == \
        {"solver_stats", "intent_stats", "receipt_stats", "block_stats", "token_flows", "solver_costs", "bridge_flows"}
    solvers = {lbl["solver"] for lbl in samples["near_intents_solver_executions"] if lbl["contract"] == "intents.near"}
    assert len(solvers) == TOP_N + 2 and {"*", "other"} <= solvers


def test_solver_labels_stay_bounded() -> None:
    from indexer.exporter.labels import SolverLabels

    labels = SolverLabels(2)
    assert [labels.label("v", s) for s in ("a", "b", "c", "a")] == ["a", "b", "other", "a"]
    labels.set_top({"v": ["c", "d", "e"]})  # the rollups' top 2 by executions: c and d
    assert [labels.label("v", s) for s in ("c", "d", "e", "b", "*")] == ["c", "d", "other", "b", "*"]
    assert labels.label("w", "x") == "x"  # per contract
