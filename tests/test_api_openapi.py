"""/api/v1/openapi.json: an OpenAPI 3.1 document whose schemas the real responses satisfy."""

from __future__ import annotations

import json
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from apiserver import fixed_clock, insert_updates, serve, update  # noqa: F401 - serve is a fixture


def _check(doc: dict[str, Any], path: str, method: str, response: Any) -> None:
    """The response's body against the schema the document gives for its path, method and status."""
    op = doc["paths"][path][method]
    spec = op["responses"][str(response.status)]
    content_type = response.headers["Content-Type"].split(";")[0]
    schema = spec["content"][content_type]["schema"]
    validator = Draft202012Validator({**schema, "components": doc["components"]})
    errors = sorted(validator.iter_errors(response.json), key=str)
    assert not errors, f"{method.upper()} {path} {response.status}: {errors[0]}"
    for header in spec.get("headers", {}):
        assert header in response.headers, f"{path} {response.status} lacks {header}"


@pytest.fixture
def api(store, serve):  # type: ignore[no-untyped-def]
    insert_updates(store, [
        update(1, "5mNh3nEm1Ngd6AUvYdDuhb2EF2ckRvDqk5H26pFh2zLC", "failed", failure="invalid signature",
               signer="alice.near", kinds=["token_diff"], tokens=["nep141:wrap.near"], amounts=["-5"],
               deadline="2026-01-01T00:10:00Z"),
        update(2, "intent-1", "pending", contract="verifier.workshop.near", action="swap", signer="bob.near"),
        update(3, "intent-1", "verified", contract="verifier.workshop.near", solver="solver.near"),
        update(4, "intent-1", "completed", contract="verifier.workshop.near"),
    ])
    return serve(store, now=fixed_clock())


def test_the_document_is_openapi_3_1_from_the_models(api) -> None:  # type: ignore[no-untyped-def]
    r = api.get("/api/v1/openapi.json")
    assert r.status == 200
    doc = r.json
    assert doc["openapi"] == "3.1.0"
    schemas = doc["components"]["schemas"]
    for name in ("Intent", "IntentPage", "Problem", "ValidationResult", "ValidateRequest", "TokenDiff",
                 "WorkshopIntent", "Status"):
        assert name in schemas
    assert schemas["Status"]["enum"] == ["pending", "verified", "executing", "executed", "completed", "failed",
                                         "expired"]
    # every schema is itself valid JSON Schema 2020-12, and every $ref resolves
    for name, schema in schemas.items():
        Draft202012Validator.check_schema(schema)
    text = json.dumps(doc)
    for ref in {part.split('"')[0] for part in text.split('"$ref": "')[1:]}:
        assert ref.removeprefix("#/components/schemas/") in schemas, ref


def test_real_responses_match_the_document(api) -> None:  # type: ignore[no-untyped-def]
    doc = api.get("/api/v1/openapi.json").json
    one = "/api/v1/intents/{intent_hash}"
    _check(doc, one, "get", api.get("/api/v1/intents/intent-1"))
    _check(doc, one, "get", api.get("/api/v1/intents/5mNh3nEm1Ngd6AUvYdDuhb2EF2ckRvDqk5H26pFh2zLC"))
    _check(doc, one, "get", api.get("/api/v1/intents/unknown-id"))
    _check(doc, one, "get", api.get("/api/v1/intents/bad%20id"))
    _check(doc, "/api/v1/intents", "get", api.get("/api/v1/intents?limit=1"))
    _check(doc, "/api/v1/intents", "get", api.get("/api/v1/intents?status=completed"))
    _check(doc, "/api/v1/intents", "get", api.get("/api/v1/intents?limit=-1"))
    validate = "/api/v1/intents/validate"
    _check(doc, validate, "post", api.post(validate, json={"type": "workshop", "intent": {}}))
    _check(doc, validate, "post", api.post(validate, data=b"nope"))
    _check(doc, "/healthz", "get", api.get("/healthz"))
    _check(doc, "/readyz", "get", api.get("/readyz"))


def test_valid_requests_by_the_document_are_valid_by_the_api(api) -> None:  # type: ignore[no-untyped-def]
    """The request schema and the validator agree on an example the document accepts."""
    doc = api.get("/api/v1/openapi.json").json
    body = {"type": "dip4", "messages": [{"signer_id": "alice.near", "deadline": "2026-01-01T00:10:00Z",
                                          "intents": [{"intent": "token_diff", "diff": {"nep141:wrap.near": "-1"}}]}]}
    Draft202012Validator({"$ref": "#/components/schemas/ValidateRequest", "components": doc["components"]}).validate(body)
    assert api.post("/api/v1/intents/validate", json=body).json == {"valid": True, "errors": []}
