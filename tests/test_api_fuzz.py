"""Every operation of /api/v1/openapi.json, fuzzed from the document itself: hypothesis draws each
parameter from its schema (and, half the time, from anything at all), the live API answers, and
no answer is a 5xx; every error is problem+json without a trace, and every answer the document
describes matches its schema.

The strategies are built from the document the server serves, so a new route or parameter is
fuzzed without touching this file."""

from __future__ import annotations

import json
import re
import urllib.parse
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from apiserver import fixed_clock, insert_updates, update

pytestmark = pytest.mark.timeout(900)

HASH = "5mNh3nEm1Ngd6AUvYdDuhb2EF2ckRvDqk5H26pFh2zLC"
ANYTHING = st.text(max_size=40) | st.sampled_from(["", "-1", "0", "1e9", "null", "%", "../", "alice.near", HASH,
                                                   "x" * 300, "2026-01-01T00:00:00Z", "\u0000", "' OR 1=1 --"])


@pytest.fixture(scope="module")
def fuzz_api(chdb_store_path):  # type: ignore[no-untyped-def]
    """One API (limits out of the way) over a store with a few intents of both contracts."""
    import uuid

    from apiserver import ApiServer, api_settings
    from indexer.store import migrations
    from indexer.store.client import Store

    store = Store(f"chdb://{chdb_store_path}", database=f"t_{uuid.uuid4().hex[:12]}")
    migrations.migrate(store)
    insert_updates(store, [
        update(1, HASH, "failed", failure="invalid signature", signer="alice.near", kinds=["token_diff"],
               tokens=["nep141:wrap.near"], amounts=["-5"], deadline="2026-01-01T00:10:00Z"),
        update(2, "intent-1", "pending", contract="verifier.workshop.near", action="swap", signer="bob.near"),
        update(3, "intent-1", "completed", contract="verifier.workshop.near", solver="solver.near"),
    ])
    server = ApiServer(api_settings(api_read_limit="1000000/minute", api_validate_limit="1000000/minute"), store,
                       fixed_clock("2026-01-01T00:00:00Z"))
    yield server
    server.close()


def _resolve(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def _valid(schema: dict[str, Any]) -> st.SearchStrategy[str]:
    """Values the schema accepts, as the text of a path or query parameter."""
    if "enum" in schema:
        return st.sampled_from([str(v) for v in schema["enum"]])
    if "anyOf" in schema or "oneOf" in schema:
        return st.one_of([_valid(s) for s in schema.get("anyOf", schema.get("oneOf", [])) if s.get("type") != "null"])
    kind = schema.get("type")
    if kind == "integer":
        lo, hi = schema.get("minimum", -(2**63)), schema.get("maximum", 2**63)
        return st.integers(lo, hi).map(str)
    if kind == "boolean":
        return st.sampled_from(["true", "false"])
    if "pattern" in schema:
        return st.from_regex(re.compile(schema["pattern"]), fullmatch=True).filter(lambda s: "\n" not in s)
    if schema.get("format") == "date-time":
        return st.datetimes().map(lambda t: t.isoformat() + "Z")
    return st.text(min_size=schema.get("minLength", 0), max_size=min(schema.get("maxLength", 64), 64))


def _parameter(doc: dict[str, Any], p: dict[str, Any]) -> st.SearchStrategy[str | None]:
    value = _valid(_resolve(doc, p.get("schema", {}))) | ANYTHING
    return value if p.get("in") == "path" or p.get("required") else st.none() | value


def _operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(path, method, op) for path, item in doc["paths"].items() for method, op in item.items()
            if method in ("get", "post")]


@st.composite
def _request(draw: st.DrawFn, doc: dict[str, Any]) -> tuple[str, str, str, bytes | None]:
    path, method, op = draw(st.sampled_from(_operations(doc)))
    url, query = path, {}
    for p in op.get("parameters", []):
        value = draw(_parameter(doc, p))
        if p["in"] == "path":
            url = url.replace("{" + p["name"] + "}", urllib.parse.quote(value or "x", safe=""))
        elif value is not None:
            query[p["name"]] = value
    if query:
        url += "?" + urllib.parse.urlencode(query)
    body = None
    if "requestBody" in op:
        body = json.dumps(draw(st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=20),
            lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
            max_leaves=15))).encode()
    return path, method, url, body


def _check(doc: dict[str, Any], path: str, method: str, url: str, response: Any) -> None:
    assert response.status < 500, f"{method.upper()} {url}: {response.status} {response.raw[:300]!r}"
    content_type = response.headers.get("Content-Type", "").split(";")[0]
    if response.status >= 400:
        assert content_type == "application/problem+json", (url, response.status, content_type)
        assert "Traceback" not in response.raw.decode(errors="replace")
    spec = doc["paths"][path][method]["responses"].get(str(response.status))
    assert spec is not None, f"{method.upper()} {url}: {response.status} is not in the document"
    schema = spec.get("content", {}).get(content_type, {}).get("schema")
    if schema is not None:
        errors = list(Draft202012Validator({**schema, "components": doc["components"]}).iter_errors(response.json))
        assert not errors, f"{method.upper()} {url} {response.status}: {errors[0].message}"


def test_the_document_lists_every_route(fuzz_api) -> None:  # type: ignore[no-untyped-def]
    doc = fuzz_api.get("/api/v1/openapi.json").json
    assert {p for p, _, _ in _operations(doc)} >= {
        "/api/v1/intents/{intent_hash}", "/api/v1/intents", "/api/v1/solvers", "/api/v1/solvers/{solver_id}",
        "/api/v1/stats/throughput", "/api/v1/stats/status", "/api/v1/intents/validate"}


def test_every_operation_fuzzed_from_the_document_never_5xx(fuzz_api) -> None:  # type: ignore[no-untyped-def]
    doc = fuzz_api.get("/api/v1/openapi.json").json
    seen: set[tuple[str, int]] = set()

    @settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    @given(request=_request(doc))
    def run(request: tuple[str, str, str, bytes | None]) -> None:
        path, method, url, body = request
        headers = {"Content-Type": "application/json"} if body is not None else {}
        response = fuzz_api.request(method.upper(), url, data=body, headers=headers)
        _check(doc, path, method, url, response)
        seen.add((path, response.status))

    run()
    # the fuzzing reached every operation, and both accepted and refused requests
    assert {p for p, _ in seen} == {p for p, _, _ in _operations(doc)}
    assert any(s == 200 for _, s in seen) and any(400 <= s < 500 for _, s in seen)
