"""GET /api/v1/stats/status and /api/v1/stats/throughput: from the rollups."""

from __future__ import annotations

import pytest

from apiserver import commit, insert_updates, serve, update  # noqa: F401 - serve is a fixture

T0 = 1_767_225_600  # 2026-01-01T00:00:00Z, a minute boundary


@pytest.fixture
def rolled(store):  # type: ignore[no-untyped-def]
    """Ten blocks a minute apart, two receipts each (one failed in every other block) and intents."""
    from indexer.decode.rows import COLUMNS
    from indexer.rollup import job

    blocks, receipts = [], []
    for i in range(10):
        ts = T0 + 60 * i
        blocks.append([100 + i, f"h{i}", f"h{i - 1}", ts * 10**9, "v.near", 80, [0]])
        for j in range(2):
            r = dict.fromkeys(COLUMNS["receipts"], "")
            r.update(block_height=100 + i, block_timestamp=ts, shard_id=0, index_in_block=j, receipt_id=f"r{i}-{j}",
                     receiver_id="intents.near", action_kinds=["FunctionCall"], deposit=0, gas_attached=0,
                     gas_burnt=10**12, tokens_burnt=0, logs_count=0,
                     status="failure" if j == 1 and i % 2 else "success")
            receipts.append([r[c] for c in COLUMNS["receipts"]])
    store.insert_rows("blocks", COLUMNS["blocks"], blocks)
    store.insert_rows("receipts", COLUMNS["receipts"], receipts)
    insert_updates(store, [update(100 + i, f"x{i}", "executed" if i % 3 else "failed", ts=T0 + 60 * i,
                                  kinds=["token_diff"]) for i in range(10)]
                   + [update(109, "x0", "executed", ts=T0 + 540, index=1, kinds=["token_diff"])])
    commit(store, "s1", 1, ["intents.near"], 100, 109, (T0 * 1000, (T0 + 540) * 1000))
    job.run_all(store)
    return store


def test_status_over_a_window(rolled, serve) -> None:  # type: ignore[no-untyped-def]
    api = serve(rolled)
    body = api.get("/api/v1/stats/status?window=1h").json
    assert body["window"] == "1h" and body["until"].startswith("2026-01-01T00:10:00")
    # x0, x3, x6, x9 failed (x0 executed later and counts under both); the others executed
    assert body["contracts"] == {"intents.near": {"executed": 7, "failed": 4}}
    five = api.get("/api/v1/stats/status?window=5m").json["contracts"]["intents.near"]  # minutes 5..9
    assert five == {"executed": 4, "failed": 2}
    assert api.get("/api/v1/stats/status?contract=other.near").json["contracts"] == {}


def test_throughput_over_a_window(rolled, serve) -> None:  # type: ignore[no-untyped-def]
    api = serve(rolled)
    body = api.get("/api/v1/stats/throughput?window=5m").json
    assert (body["blocks"], body["receipts"], body["receipt_failures"], body["intent_updates"]) == (5, 10, 3, 6)
    assert body["receipts_per_s"] == round(10 / 300, 6) and body["seconds"] == 300
    assert body["gas_burnt"] == str(10 * 10**12)
    assert api.get("/api/v1/stats/throughput?window=1w").status == 400


def test_before_any_rollup(store, serve) -> None:  # type: ignore[no-untyped-def]
    api = serve(store)
    assert api.get("/api/v1/stats/status").json == {"window": "24h", "until": None, "contracts": {}}
    body = api.get("/api/v1/stats/throughput").json
    assert body["until"] is None and body["blocks"] == 0 and body["receipts_per_s"] == 0


def test_stats_responses_match_the_document(rolled, serve) -> None:  # type: ignore[no-untyped-def]
    from test_api_openapi import _check

    api = serve(rolled)
    doc = api.get("/api/v1/openapi.json").json
    _check(doc, "/api/v1/stats/status", "get", api.get("/api/v1/stats/status?window=1h"))
    _check(doc, "/api/v1/stats/throughput", "get", api.get("/api/v1/stats/throughput?window=24h"))
    _check(doc, "/api/v1/stats/throughput", "get", api.get("/api/v1/stats/throughput?window=bad"))
