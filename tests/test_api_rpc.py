"""The on-chain fallback (--rpc-url): a workshop intent or solver the store does not know yet is asked
of the contract's view over NEAR JSON-RPC; a stand-in node on loopback answers in nearcore's shapes."""

from __future__ import annotations

from typing import Any

from apiserver import insert_updates, serve, update  # noqa: F401 - serve is a fixture
from rpcnode import Panic, RpcNode, rpc_node  # noqa: F401 - rpc_node is a fixture
from test_api_openapi import _check

CONTRACTS = ["intents.near:verifier", "v.near:workshop-verifier", "v2.near:workshop-verifier",
             "solver1.near:workshop-solver"]


def _api(store: Any, serve: Any, node: RpcNode | None, **overrides: Any) -> Any:
    settings: dict[str, Any] = {"contracts": CONTRACTS, "rpc_timeout": 0.5, **overrides}
    if node is not None:
        settings.setdefault("rpc_url", node.url)
    return serve(store, **settings)


def test_an_intent_the_store_does_not_know_comes_from_the_verifier_view(store, serve, rpc_node) -> None:  # type: ignore[no-untyped-def]
    rpc_node.views[("v.near", "get_intent_status")] = lambda args: None  # v.near: not there
    rpc_node.views[("v2.near", "get_intent_status")] = (
        lambda args: {"Failed": {"reason": "slippage exceeded"}} if args == {"intent_id": "w-1"} else None)
    api = _api(store, serve, rpc_node)
    r = api.get("/api/v1/intents/w-1")
    assert r.status == 200, r
    assert r.json == {"source": "rpc", "intent_hash": "w-1", "contract_id": "v2.near", "status": "failed",
                      "relay_status": "NOT_FOUND_OR_NOT_VALID", "terminal": True, "failure": "slippage exceeded",
                      "onchain": {"Failed": {"reason": "slippage exceeded"}}, "finality": "final"}
    _check(api.get("/api/v1/openapi.json").json, "/api/v1/intents/{intent_hash}", "get", r)
    assert rpc_node.calls() == [("v.near", "get_intent_status", {"intent_id": "w-1"}),
                                ("v2.near", "get_intent_status", {"intent_id": "w-1"})]
    assert all(q["params"]["finality"] == "final" for q in rpc_node.requests)
    # the answer is reused for a while: a second GET does not ask the node again
    assert api.get("/api/v1/intents/w-1").json["status"] == "failed"
    assert len(rpc_node.requests) == 2
    # ?contract= asks that Verifier only
    rpc_node.views[("v.near", "get_intent_status")] = lambda args: "Verified"
    r = api.get("/api/v1/intents/w-9?contract=v.near")
    assert r.json["status"] == "verified" and r.json["terminal"] is False and r.json["relay_status"] == "PENDING"
    assert rpc_node.calls()[2:] == [("v.near", "get_intent_status", {"intent_id": "w-9"})]


def test_not_found_on_chain_is_a_404_with_the_contracts_answer(store, serve, rpc_node) -> None:  # type: ignore[no-untyped-def]
    rpc_node.views[("v.near", "get_intent_status")] = lambda args: (_ for _ in ()).throw(Panic("Intent not found"))
    rpc_node.views[("v2.near", "get_intent_status")] = (
        lambda args: (_ for _ in ()).throw(Panic("Intent not found", legacy=True)))
    api = _api(store, serve, rpc_node)
    r = api.get("/api/v1/intents/w-404")
    assert r.status == 404 and r.headers["Content-Type"].startswith("application/problem+json")
    assert "no intent w-404 is in the store, and on chain" in r.json["detail"]
    assert r.json["detail"].count("panicked: Intent not found") == 2  # both nodes' shapes of a panic
    rpc_node.views[("v2.near", "get_intent_status")] = lambda args: None  # returned null (Option::None)
    r = api.get("/api/v1/intents/w-405")
    assert r.status == 404 and "v2.near.get_intent_status returned null" in r.json["detail"]


def test_a_store_hit_never_calls_the_node(store, serve, rpc_node) -> None:  # type: ignore[no-untyped-def]
    rpc_node.views[("v.near", "get_intent_status")] = lambda args: "Pending"
    insert_updates(store, [update(5, "w-stored", "completed", contract="v.near", signer="bob.near")])
    api = _api(store, serve, rpc_node)
    for _ in range(3):  # store, then the caches
        r = api.get("/api/v1/intents/w-stored")
        assert r.status == 200 and r.json["status"] == "completed" and "source" not in r.json
    assert rpc_node.requests == []


def test_without_rpc_url_or_a_workshop_verifier_it_stays_a_404(store, serve, rpc_node) -> None:  # type: ignore[no-untyped-def]
    rpc_node.views[("v.near", "get_intent_status")] = lambda args: "Pending"
    plain = _api(store, serve, None)
    r = plain.get("/api/v1/intents/w-1")
    assert r.status == 404 and r.json["detail"] == "no intent w-1 is in the store: it is unknown, or not indexed yet"
    dip4_only = _api(store, serve, rpc_node, contracts=["intents.near:verifier"])
    assert dip4_only.get("/api/v1/intents/w-1").status == 404
    assert _api(store, serve, rpc_node).get("/api/v1/intents/w-1?contract=intents.near").status == 404
    assert rpc_node.requests == []


def test_a_node_that_is_down_is_a_502_after_bounded_retries(store, serve, rpc_node) -> None:  # type: ignore[no-untyped-def]
    from clitools import free_port

    api = _api(store, serve, None, rpc_url=f"http://127.0.0.1:{free_port()}/")  # nothing listens there
    r = api.get("/api/v1/intents/w-1")
    assert r.status == 502 and r.headers["Content-Type"].startswith("application/problem+json")
    assert r.json["title"] == "Bad Gateway" and "unreachable" in r.json["detail"]
    _check(api.get("/api/v1/openapi.json").json, "/api/v1/intents/{intent_hash}", "get", r)
    # a node answering 503 is retried rpc_attempts times, then a 502
    rpc_node.fail_with = [503] * 10
    api = _api(store, serve, rpc_node, rpc_attempts=3)
    r = api.get("/api/v1/intents/w-1")
    assert r.status == 502 and "HTTP 503" in r.json["detail"] and len(rpc_node.requests) == 3
    # one 503, then the answer: the retry hides it
    rpc_node.requests.clear()
    rpc_node.fail_with = [503]
    rpc_node.views[("v.near", "get_intent_status")] = lambda args: "Executing"
    r = api.get("/api/v1/intents/w-2?contract=v.near")
    assert r.status == 200 and r.json["status"] == "executing" and len(rpc_node.requests) == 2


def test_a_node_error_that_is_not_the_contracts_is_a_502_without_retry(store, serve, rpc_node) -> None:  # type: ignore[no-untyped-def]
    api = _api(store, serve, rpc_node, rpc_attempts=3)  # v.near has no view: the node says UNKNOWN_ACCOUNT
    r = api.get("/api/v1/intents/w-1?contract=v.near")
    assert r.status == 502 and "knows no account v.near" in r.json["detail"] and len(rpc_node.requests) == 1


def test_a_node_that_hangs_is_a_504(store, serve, rpc_node) -> None:  # type: ignore[no-untyped-def]
    rpc_node.hang = True
    api = _api(store, serve, rpc_node, rpc_timeout=0.2, rpc_attempts=2)
    r = api.get("/api/v1/intents/w-1?contract=v.near")
    assert r.status == 504 and r.headers["Content-Type"].startswith("application/problem+json")
    assert r.json["title"] == "Gateway Timeout" and "within 0.2 s" in r.json["detail"]
    assert len(rpc_node.requests) == 2
    _check(api.get("/api/v1/openapi.json").json, "/api/v1/intents/{intent_hash}", "get", r)


def test_an_unknown_workshop_solver_comes_from_its_get_solver_info(store, serve, rpc_node) -> None:  # type: ignore[no-untyped-def]
    info = {"owner_id": "ops.near", "fee": "30", "supported_tokens": ["usdc.near", "wrap.near"]}
    rpc_node.views[("solver1.near", "get_solver_info")] = lambda args: info
    api = _api(store, serve, rpc_node)
    r = api.get("/api/v1/solvers/solver1.near?window=1h")
    assert r.status == 200, r
    assert r.json == {"source": "rpc", "solver_id": "solver1.near", "window": "1h", "info": info,
                      "finality": "final"}
    _check(api.get("/api/v1/openapi.json").json, "/api/v1/solvers/{solver_id}", "get", r)
    assert rpc_node.calls() == [("solver1.near", "get_solver_info", {})]
    # a solver that is not a tracked workshop solver is not asked
    assert api.get("/api/v1/solvers/other.near").status == 404
    assert len(rpc_node.requests) == 1


def test_rpc_settings_as_flags_and_environment(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import pytest

    from clitools import cli
    from indexer.config import ConfigError, load_settings, redacted

    assert load_settings().rpc_url is None  # the default: no fallback
    monkeypatch.setenv("INDEXER_RPC_URL", "https://key:secret@rpc.testnet.example/")
    settings = load_settings()
    assert settings.rpc_url == "https://key:secret@rpc.testnet.example/"
    assert "secret" not in str(redacted(settings)["rpc_url"])
    assert load_settings(rpc_url="http://127.0.0.1:3030").rpc_url == "http://127.0.0.1:3030"  # a flag wins
    with pytest.raises(ConfigError, match="--rpc-url"):
        load_settings(rpc_url="ftp://rpc.example")
    for command in ("serve", "run"):
        shown = cli(command, "--help").stdout
        assert "--rpc-url" in shown and "INDEXER_RPC_URL" in shown and "--rpc-timeout" in shown
    assert "--contract" in cli("serve", "--help").stdout
