"""GET /api/v1/intents/{intent_hash} and GET /api/v1/intents over real HTTP, on the embedded store."""

from __future__ import annotations

import pytest

from apiserver import insert_updates, serve, update  # noqa: F401 - serve is a fixture

HASH = "B6NsK8kTDvRXdD6dQUjJRJhT3ihYFCzCA3WpK6yx7Bmm"


@pytest.fixture
def loaded(store):  # type: ignore[no-untyped-def]
    """A dip4 intent that failed once and then executed, a workshop intent through its life, and
    a few more executed intents at increasing heights."""
    insert_updates(store, [
        update(100, HASH, "failed", failure="Smart contract panicked: deadline has expired", signer="alice.near",
               kinds=["token_diff"], tokens=["nep141:wrap.near", "nep141:usdt.tether-token.near"],
               amounts=["-1000000000000000000000000", "3500000"], deadline="2026-01-05T00:00:00.000Z",
               tx="txfail", gas=5),
        update(110, HASH, "executed", signer="alice.near", solver="solver-1.near", kinds=["token_diff"],
               tokens=["nep141:wrap.near", "nep141:usdt.tether-token.near"],
               amounts=["-1000000000000000000000000", "3500000"], referral="app.near", tx="txok", gas=7),
        update(120, "intent-7", "pending", contract="verifier.workshop.near", signer="bob.near", action="swap",
               tokens=["wrap.near", "usdc.near"], amounts=["5000", "4950"], deadline="1999999999000000000",
               method="verify_and_solve", tx="txw"),
        update(120, "intent-7", "verified", contract="verifier.workshop.near", index=1, solver="solver-2.near",
               ts=1_700_000_121, tx="txw"),
        update(125, "intent-7", "completed", contract="verifier.workshop.near", ts=1_700_000_130,
               method="on_intent_solved", tx="txw2"),
        *[update(200 + i, f"h{i}", "executed", signer="carol.near", solver="solver-1.near",
                 accounts=["dest.near"] if i == 2 else []) for i in range(5)],
    ])
    return store


def test_intent_by_hash(loaded, serve) -> None:  # type: ignore[no-untyped-def]
    api = serve(loaded)
    r = api.get(f"/api/v1/intents/{HASH}")
    assert r.status == 200, r
    assert r.headers["Content-Type"].startswith("application/json")
    body = r.json
    assert body["intent_hash"] == HASH and body["contract_id"] == "intents.near"
    assert body["status"] == "executed" and body["relay_status"] == "SETTLED" and body["terminal"] is True
    assert body["attempts"] == 2 and body["failure"] is None
    assert body["signer_id"] == "alice.near" and body["solver_id"] == "solver-1.near"
    assert body["accounts"] == ["alice.near", "solver-1.near", "app.near"]
    # u128-exact amounts, as strings
    assert body["tokens"] == [{"token": "nep141:wrap.near", "amount": "-1000000000000000000000000"},
                              {"token": "nep141:usdt.tether-token.near", "amount": "3500000"}]
    assert body["first_block_height"] == 100 and body["last_block_height"] == 110
    assert body["tx_hashes"] == ["txfail", "txok"] and body["gas_burnt"] == 12
    assert body["first_seen"].startswith("2023-11-14T22:15:00")


def test_workshop_intent_by_id(loaded, serve) -> None:  # type: ignore[no-untyped-def]
    api = serve(loaded)
    body = api.get("/api/v1/intents/intent-7").json
    assert body["contract_id"] == "verifier.workshop.near" and body["action"] == "swap"
    assert body["status"] == "completed" and body["terminal"] is True and body["relay_status"] == "SETTLED"
    assert body["signer_id"] == "bob.near" and body["solver_id"] == "solver-2.near"
    assert body["latency_s"] == 9.0 and body["verified_at"] is not None
    assert api.get("/api/v1/intents/intent-7?contract=verifier.workshop.near").json["status"] == "completed"
    assert api.get("/api/v1/intents/intent-7?contract=other.near").status == 404


def test_executed_is_final(store, serve) -> None:  # type: ignore[no-untyped-def]
    """A replay of an executed payload that fails is one more attempt, not a new status."""
    insert_updates(store, [update(1, "once", "executed", signer="alice.near", receipt="r-ok"),
                           update(2, "once", "failed", failure="nonce was already used", receipt="r-replay")])
    body = serve(store).get("/api/v1/intents/once").json
    assert body["status"] == "executed" and body["failure"] is None and body["attempts"] == 2
    assert body["receipt_id"] == "r-ok"


def test_failed_intent_is_not_terminal_before_its_deadline(store, serve) -> None:  # type: ignore[no-untyped-def]
    insert_updates(store, [update(1, "retry-me", "failed", failure="nonce was already used",
                                  deadline="2999-01-01T00:00:00Z"),
                           update(2, "gone", "failed", failure="deadline has expired", deadline="2000-01-01T00:00:00Z")])
    api = serve(store)
    assert api.get("/api/v1/intents/retry-me").json["terminal"] is False
    gone = api.get("/api/v1/intents/gone").json
    assert gone["terminal"] is True and gone["relay_status"] == "NOT_FOUND_OR_NOT_VALID"
    assert gone["failure"] == "deadline has expired"


@pytest.mark.parametrize("bad", ["not%20a%20hash", "x" * 129, "a%2Fb", "%E2%9C%93"])
def test_malformed_hash_is_400(store, serve, bad: str) -> None:  # type: ignore[no-untyped-def]
    api = serve(store)
    r = api.get(f"/api/v1/intents/{bad}")
    assert r.status in (400, 404) if bad == "a%2Fb" else r.status == 400, r
    assert r.headers["Content-Type"].startswith("application/problem+json")
    assert r.json["status"] == r.status and r.json["title"] and r.json["detail"]


def test_unknown_hash_is_404_saying_so(store, serve) -> None:  # type: ignore[no-untyped-def]
    api = serve(store)
    r = api.get(f"/api/v1/intents/{HASH}")
    assert r.status == 404
    assert r.headers["Content-Type"].startswith("application/problem+json")
    assert r.json["title"] == "Not Found" and f"no intent {HASH} is in the store" in r.json["detail"]


def test_unknown_route_and_method_are_problems(store, serve) -> None:  # type: ignore[no-untyped-def]
    api = serve(store)
    r = api.get("/api/v1/nothing")
    assert r.status == 404 and r.headers["Content-Type"].startswith("application/problem+json")
    r = api.request("DELETE", f"/api/v1/intents/{HASH}")
    assert r.status == 405 and r.headers["Content-Type"].startswith("application/problem+json")


def _ids(page) -> list[str]:  # type: ignore[no-untyped-def]
    return [i["intent_hash"] for i in page["items"]]


def test_list_newest_first_with_a_stable_cursor(loaded, serve) -> None:  # type: ignore[no-untyped-def]
    api = serve(loaded)
    first = api.get("/api/v1/intents?limit=3").json
    assert _ids(first) == ["h4", "h3", "h2"] and first["limit"] == 3 and first["next_cursor"]
    # New intents arrive above the page boundary, and an older one on the next page changes: the
    # next page goes on where the first stopped, with nothing skipped or repeated.
    insert_updates(loaded, [update(300, "new-1", "executed"), update(301, "new-2", "executed"),
                            update(302, "h1", "failed", index=1)])
    second = api.get(f"/api/v1/intents?limit=3&cursor={first['next_cursor']}").json
    assert _ids(second) == ["h1", "h0", "intent-7"]
    third = api.get(f"/api/v1/intents?limit=3&cursor={second['next_cursor']}").json
    assert _ids(third) == [HASH] and third["next_cursor"] is None
    assert _ids(api.get("/api/v1/intents?limit=2").json) == ["new-2", "new-1"]


def test_list_filters(loaded, serve) -> None:  # type: ignore[no-untyped-def]
    api = serve(loaded)
    assert _ids(api.get("/api/v1/intents?account=alice.near").json) == [HASH]
    assert _ids(api.get("/api/v1/intents?account=app.near").json) == []  # a referral is not a party
    assert _ids(api.get("/api/v1/intents?account=dest.near").json) == ["h2"]  # it receives tokens
    assert _ids(api.get("/api/v1/intents?solver=solver-2.near").json) == ["intent-7"]
    assert len(api.get("/api/v1/intents?solver=solver-1.near").json["items"]) == 6
    assert _ids(api.get("/api/v1/intents?status=completed").json) == ["intent-7"]
    assert _ids(api.get("/api/v1/intents?contract=verifier.workshop.near").json) == ["intent-7"]
    assert _ids(api.get("/api/v1/intents?status=executed&account=carol.near&limit=2").json) == ["h4", "h3"]
    since, until = 1_700_000_000 + 120, 1_700_000_000 + 202
    assert _ids(api.get(f"/api/v1/intents?since={since}&until={until}").json) == ["h1", "h0", "intent-7"]
    assert _ids(api.get("/api/v1/intents?since=2023-11-14T22:16:43Z").json) == ["h4", "h3"]
    assert _ids(api.get("/api/v1/intents?account=nobody.near").json) == []


@pytest.mark.parametrize("query, words", [
    ("limit=0", "?limit="), ("limit=101", "from 1 to 100"), ("limit=ten", "?limit="),
    ("cursor=garbage", "cursor"), ("status=done", "?status="), ("account=Not_An_Account", "NEAR account id"),
    ("since=yesterday", "not a time"), ("acount=alice.near", "unknown parameter"),
    ("solver=" + "a" * 65, "NEAR account id"),
])
def test_list_rejects_bad_parameters(store, serve, query: str, words: str) -> None:  # type: ignore[no-untyped-def]
    api = serve(store)
    r = api.get(f"/api/v1/intents?{query}")
    assert r.status == 400, r
    assert r.headers["Content-Type"].startswith("application/problem+json")
    assert words in r.json["detail"]


def test_inputs_never_reach_sql_as_text(loaded, serve) -> None:  # type: ignore[no-untyped-def]
    api = serve(loaded)
    assert api.get("/api/v1/intents/x'%20OR%20'1'='1").status == 400
    r = api.get("/api/v1/intents/h1')%20OR%20('1")
    assert r.status == 400
    # a quote inside a valid-looking id is data, not SQL
    assert api.get("/api/v1/intents/h1:--").status == 404


def test_the_page_size_is_bounded_by_settings(loaded, serve) -> None:  # type: ignore[no-untyped-def]
    api = serve(loaded, api_max_page=2)
    assert api.get("/api/v1/intents?limit=3").status == 400
    assert len(api.get("/api/v1/intents").json["items"]) == 2


def test_a_failing_handler_answers_500_without_a_trace(store, serve, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from indexer.api import queries

    def boom(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("internal detail /srv/indexer/x.py line 3")

    monkeypatch.setattr(queries, "list_intents", boom)
    api = serve(store)
    r = api.get("/api/v1/intents")
    assert r.status == 500 and r.headers["Content-Type"].startswith("application/problem+json")
    assert "internal detail" not in r.raw.decode() and "Traceback" not in r.raw.decode()
    assert r.json["detail"] == "the request failed; the server logged why"


def test_a_store_that_fails_is_503(store, serve) -> None:  # type: ignore[no-untyped-def]
    api = serve(store)
    store.command(f"DROP DATABASE `{store.database}`")
    r = api.get("/api/v1/intents/some-id")
    assert r.status == 503 and r.headers["Content-Type"].startswith("application/problem+json")
    assert r.json["detail"] == "the store did not answer; try again shortly"
