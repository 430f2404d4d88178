"""GET /api/v1/solvers and /api/v1/solvers/{solver_id}: solver statistics from the rollups."""

from __future__ import annotations

import pytest

from apiserver import commit, serve  # noqa: F401 - serve is a fixture

COLUMNS = ("block_height", "block_timestamp", "contract_id", "receiver_id", "solver_id", "receipt_id", "tx_hash",
           "method_name", "intent_ids", "success", "failure", "gas_burnt", "latency_s")
T0 = 1_767_225_600  # 2026-01-01T00:00:00Z
TGAS = 10**12


@pytest.fixture
def rolled(store):  # type: ignore[no-untyped-def]
    """Executions over two hours: a solver that mostly succeeds, one that fails, and old ones."""
    from indexer.rollup import job

    rows = []
    for i in range(10):  # the last 10 minutes: 8 of a.near's 10 succeed, b.near fails twice
        rows.append([100 + i, T0 + 3600 + 50 * 60 + i * 60, "intents.near", "intents.near", "a.near", f"ra{i}", "",
                     "execute_intents", [f"i{i}"], int(i < 8), "" if i < 8 else "deadline has expired",
                     (i + 1) * TGAS, None])
    rows += [[200 + i, T0 + 3600 + 58 * 60 + i, "intents.near", "intents.near", "b.near", f"rb{i}", "",
              "execute_intents", [f"j{i}"], 0, "invalid signature", 5 * TGAS, None] for i in range(2)]
    rows.append([50, T0 + 10, "intents.near", "intents.near", "old.near", "ro", "", "execute_intents", ["o"], 1, "",
                 TGAS, None])
    store.insert_rows("solver_executions", COLUMNS, rows)
    commit(store, "s1", 1, ["intents.near"], 50, 201, ((T0 + 10) * 1000, (T0 + 3600 + 59 * 60) * 1000))
    job.run_all(store)
    return store


def test_solvers_over_a_window_with_the_network_row(rolled, serve) -> None:  # type: ignore[no-untyped-def]
    api = serve(rolled)
    body = api.get("/api/v1/solvers?window=1h").json
    assert body["window"] == "1h" and body["until"].startswith("2026-01-01T02:00:00")
    by = {s["solver_id"]: s for s in body["solvers"]}
    assert set(by) == {"a.near", "b.near"}  # old.near is outside the last hour
    a = by["a.near"]
    assert (a["executions"], a["successes"], a["failures"], a["success_ratio"]) == (10, 8, 2, 0.8)
    assert a["failures_by_reason"] == {"deadline has expired": 2}
    assert a["gas_burnt"] == str(55 * TGAS) and a["gas"]["p50"] in (5 * TGAS, 6 * TGAS)
    assert a["latency_s"] == {"p50": None, "p90": None, "p99": None} and a["latency_mean_s"] is None
    # cost: the 8 successful settlements burnt 1..8 Tgas, one intent each; no token_diff, no fees
    assert (a["settlements"], a["intents_settled"], a["gas_per_settlement"], a["gas_per_intent"]) == (
        8, 8, 4.5 * TGAS, 4.5 * TGAS)
    assert a["fees_collected"] == {}
    assert by["b.near"]["settlements"] == 0 and by["b.near"]["gas_per_settlement"] is None
    net = body["network"]
    assert net["solver_id"] == "*" and net["executions"] == 12 and net["failures"] == 4
    assert net["failures_by_reason"] == {"deadline has expired": 2, "invalid signature": 2}
    assert {s["solver_id"] for s in api.get("/api/v1/solvers?window=24h").json["solvers"]} == {
        "a.near", "b.near", "old.near"}
    five = {s["solver_id"]: s["executions"] for s in api.get("/api/v1/solvers?window=5m").json["solvers"]}
    assert five == {"a.near": 5, "b.near": 2}


def test_one_solver(rolled, serve) -> None:  # type: ignore[no-untyped-def]
    api = serve(rolled)
    body = api.get("/api/v1/solvers/b.near?window=1h").json
    assert [s["solver_id"] for s in body["solvers"]] == ["b.near"] and body["network"]["executions"] == 12
    assert body["solvers"][0]["success_ratio"] == 0.0
    r = api.get("/api/v1/solvers/old.near?window=1h")
    assert r.status == 404 and "no executions in the last 1h" in r.json["detail"]
    assert api.get("/api/v1/solvers/a.near?window=2h").status == 400
    assert api.get("/api/v1/solvers/Not%20A%20Solver").status == 400
    assert api.get("/api/v1/solvers?contract=other.near&window=1h").json["solvers"] == []


def test_no_rollups_yet(store, serve) -> None:  # type: ignore[no-untyped-def]
    body = serve(store).get("/api/v1/solvers").json
    assert body == {"window": "24h", "until": None, "network": None, "solvers": []}


def test_solver_responses_match_the_document(rolled, serve) -> None:  # type: ignore[no-untyped-def]
    from test_api_openapi import _check

    api = serve(rolled)
    doc = api.get("/api/v1/openapi.json").json
    _check(doc, "/api/v1/solvers", "get", api.get("/api/v1/solvers?window=1h"))
    _check(doc, "/api/v1/solvers", "get", api.get("/api/v1/solvers?window=1y"))
    one = "/api/v1/solvers/{solver_id}"
    _check(doc, one, "get", api.get("/api/v1/solvers/a.near?window=1h"))
    _check(doc, one, "get", api.get("/api/v1/solvers/old.near?window=5m"))
