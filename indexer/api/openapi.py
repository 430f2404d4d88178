"""The OpenAPI 3.1 document, generated from the models that validate requests and build responses."""

from __future__ import annotations

from functools import cache
from typing import Any

from pydantic import TypeAdapter
from pydantic.json_schema import models_json_schema

from indexer import __version__
from indexer.api.models import (Health, Intent, IntentPage, OnChainIntent, OnChainSolver, Problem, Readiness,
                                 SolverWindow, Status, StatusStats, Throughput, ValidationResult)
from indexer.api.validate import ValidateRequest

REF = "#/components/schemas/{model}"
PROBLEM = "application/problem+json"


def _json(ref: str) -> dict[str, Any]:
    return {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}}


def _either(*refs: str) -> dict[str, Any]:
    return {"application/json": {"schema": {"anyOf": [{"$ref": f"#/components/schemas/{r}"} for r in refs]}}}


# Answers of the view-call fallback (--rpc-url) when the node fails.
_NODE = {"502": {"description": "the NEAR RPC node failed (unreachable, an error that is not the contract's)",
                 "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}},
         "504": {"description": "the NEAR RPC node did not answer in time",
                 "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}}


def _problem(description: str) -> dict[str, Any]:
    return {"description": description, "content": {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}}}


_LIMITED = {"429": _problem("rate limit exceeded: see Retry-After and RateLimit"),
            "503": _problem("the store is unreachable, or the rate limit cannot be checked (fail-closed)")}
_RATE_HEADERS = {
    "RateLimit-Policy": {"description": 'the limit that applies: "reads";q=100;w=60', "schema": {"type": "string"}},
    "RateLimit": {"description": 'what is left of it: "reads";r=57;t=42', "schema": {"type": "string"}},
}


def _query(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description, "schema": schema}


_ACCOUNT = {"type": "string", "minLength": 2, "maxLength": 64}
_TIME = {"type": "string", "description": "RFC 3339 time or Unix seconds"}
_WINDOW = {"name": "window", "in": "query", "required": False, "description": "the last 5m, 1h, 24h or 7d of block time",
           "schema": {"type": "string", "enum": ["5m", "1h", "24h", "7d"], "default": "24h"}}


@cache
def document() -> dict[str, Any]:
    _, defs = models_json_schema(
        [(m, "serialization") for m in (Intent, IntentPage, OnChainIntent, OnChainSolver, Problem, ValidationResult,
                                        Health, Readiness, SolverWindow, StatusStats, Throughput)],
        ref_template=REF)
    schemas: dict[str, Any] = dict(defs.get("$defs", {}))
    request = TypeAdapter(ValidateRequest).json_schema(ref_template=REF, mode="validation")
    schemas.update(request.pop("$defs", {}))
    schemas["ValidateRequest"] = request
    return {
        "openapi": "3.1.0",
        "info": {"title": "near-intents-indexer API", "version": __version__,
                 "description": "Intent status, history and pre-validation from the indexer's store."},
        "paths": {
            "/api/v1/intents/{intent_hash}": {"get": {
                "operationId": "getIntent", "summary": "The latest status and details of one intent",
                "parameters": [
                    {"name": "intent_hash", "in": "path", "required": True,
                     "description": "a dip4 intent hash (base58) or a workshop intent id",
                     "schema": {"type": "string", "pattern": r"^[A-Za-z0-9._:\-]{1,128}$"}},
                    _query("contract", "only this Verifier (when several hold the same workshop id)", _ACCOUNT)],
                "responses": {"200": {"description": "the intent from the store, or (source: rpc) a workshop "
                                                     "intent the store does not know yet, from the Verifier's "
                                                     "get_intent_status view (--rpc-url)",
                                      "headers": _RATE_HEADERS, "content": _either("Intent", "OnChainIntent")},
                              "400": _problem("malformed intent hash or parameter"),
                              "404": _problem("no such intent in the store (yet), nor on chain"), **_NODE,
                              **_LIMITED}}},
            "/api/v1/intents": {"get": {
                "operationId": "listIntents", "summary": "Intents, newest first, a page at a time",
                "parameters": [
                    _query("account", "intents whose signer, solver or referral is this account", _ACCOUNT),
                    _query("solver", "intents settled by this solver", _ACCOUNT),
                    _query("status", "intents in this status", {"$ref": "#/components/schemas/Status"}),
                    _query("contract", "intents of this Verifier", _ACCOUNT),
                    _query("since", "intents first seen at or after this time", _TIME),
                    _query("until", "intents first seen before this time", _TIME),
                    _query("limit", "page size", {"type": "integer", "minimum": 1, "default": 50}),
                    _query("cursor", "next_cursor of the previous page", {"type": "string"})],
                "responses": {"200": {"description": "a page", "headers": _RATE_HEADERS,
                                      "content": _json("IntentPage")},
                              "400": _problem("a parameter is malformed"), **_LIMITED}}},
            "/api/v1/intents/validate": {"post": {
                "operationId": "validateIntent", "summary": "Check an intent before it is signed",
                "requestBody": {"required": True, "content": _json("ValidateRequest")},
                "responses": {"200": {"description": "every problem found (valid: true when none)",
                                      "headers": _RATE_HEADERS, "content": _json("ValidationResult")},
                              "400": _problem("the body is not JSON"),
                              "413": _problem("the body is too large"), **_LIMITED}}},
            "/api/v1/solvers": {"get": {
                "operationId": "listSolvers", "summary": "Every solver's statistics over a window, from the rollups",
                "parameters": [_WINDOW, _query("contract", "only this Verifier", _ACCOUNT)],
                "responses": {"200": {"description": "solvers, busiest first, and the network row",
                                      "headers": _RATE_HEADERS, "content": _json("SolverWindow")},
                              "400": _problem("a parameter is malformed"), **_LIMITED}}},
            "/api/v1/solvers/{solver_id}": {"get": {
                "operationId": "getSolver", "summary": "One solver's statistics, with the network for comparison",
                "parameters": [{"name": "solver_id", "in": "path", "required": True, "schema": _ACCOUNT}, _WINDOW,
                               _query("contract", "only this Verifier", _ACCOUNT)],
                "responses": {"200": {"description": "the solver and the network row, or (source: rpc) a "
                                                     "workshop solver's get_solver_info view when the rollups have "
                                                     "nothing of it (--rpc-url)", "headers": _RATE_HEADERS,
                                      "content": _either("SolverWindow", "OnChainSolver")},
                              "400": _problem("a parameter is malformed"),
                              "404": _problem("no executions of this solver in the window"), **_NODE,
                              **_LIMITED}}},
            "/api/v1/stats/status": {"get": {
                "operationId": "statusStats", "summary": "Intents by status over a window, per contract",
                "parameters": [_WINDOW, _query("contract", "only this Verifier", _ACCOUNT)],
                "responses": {"200": {"description": "counts", "headers": _RATE_HEADERS,
                                      "content": _json("StatusStats")},
                              "400": _problem("a parameter is malformed"), **_LIMITED}}},
            "/api/v1/stats/throughput": {"get": {
                "operationId": "throughputStats", "summary": "Blocks, receipts and intent updates over a window",
                "parameters": [_WINDOW, _query("contract", "only this contract", _ACCOUNT)],
                "responses": {"200": {"description": "totals and rates", "headers": _RATE_HEADERS,
                                      "content": _json("Throughput")},
                              "400": _problem("a parameter is malformed"), **_LIMITED}}},
            "/api/v1/ws": {"get": {
                "operationId": "liveUpdates", "summary": "Live intent updates (WebSocket upgrade)",
                "description": 'Send {"type": "subscribe" | "unsubscribe", "intent_hash": H} or {..., "account": A} '
                               '(optionally "since_height": N to replay changes above N, or, as the first message '
                               'of a new connection, "session": S and "since_seq": N to resume a session after the '
                               'last seq received); receive subscribed and unsubscribed (with the session id), '
                               'error (code resume_failed for a resume that cannot be served) and intent_update '
                               'messages {type, intent_hash, status, details (an Intent), block_height, seq, '
                               'timestamp}, seq counting every message of the session. Close codes: 1008 policy (too many subscriptions or invalid messages), '
                               '1009 message too big, 1011 internal error, 1001 server shutting down.',
                "responses": {"101": {"description": "switching to the WebSocket protocol"},
                              "400": _problem("not a WebSocket upgrade"), **_LIMITED}}},
            "/healthz": {"get": {"operationId": "healthz", "summary": "Alive",
                                 "responses": {"200": {"description": "alive", "content": _json("Health")}}}},
            "/readyz": {"get": {"operationId": "readyz", "summary": "Store and Redis reachable",
                                "responses": {"200": {"description": "ready", "content": _json("Readiness")},
                                              "503": {"description": "not ready", "content": _json("Readiness")}}}},
        },
        "components": {"schemas": schemas},
    }


STATUSES = [s.value for s in Status]
