"""Every answer of the API is typed: each route that answers JSON declares a named response model in
the OpenAPI document (no bare `object`), and the interactive results carry a URL field beside each
artifact id that `with_urls` links."""

from __future__ import annotations

import pytest

from api.main import create_app
from api.waiting import _url_key
from core.contract.results import ForwardResult, ImageAttackResult, SamplesResult

NOT_JSON = {("get", "/metrics"), ("get", "/v1/artifacts/{artifact_id}")}  # Prometheus text, artifact bytes


def _named(schema: dict | None) -> bool:
    """A reference to a component, a list of them, or a choice between them."""
    if not schema:
        return False
    if "$ref" in schema:
        return True
    if schema.get("type") == "array":
        return _named(schema.get("items"))
    if "anyOf" in schema:
        return all(_named(s) for s in schema["anyOf"])
    return False


def _operations():
    document = create_app().openapi()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            yield method, path, operation


def test_every_json_answer_declares_a_named_model():
    untyped = []
    for method, path, operation in _operations():
        if (method, path) in NOT_JSON:
            continue
        for code, response in operation["responses"].items():
            if not code.startswith("2") or code == "204":
                continue
            schema = response.get("content", {}).get("application/json", {}).get("schema")
            if not _named(schema):
                untyped.append(f"{method.upper()} {path} {code}: {schema}")
    assert not untyped, "\n".join(untyped)


def test_the_routes_that_may_answer_before_the_work_is_done_declare_the_job_for_202():
    answering_202 = {(m, p) for m, p, op in _operations() if "202" in op["responses"]}
    assert {("post", "/v1/attacks"), ("post", "/v1/samples"), ("post", "/v1/models")} <= answering_202
    for method, path, operation in _operations():
        if (method, path) in answering_202 and method == "post" and path != "/v1/jobs" and path != "/v1/studies":
            schema = operation["responses"]["202"]["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/JobOut"}, (method, path, schema)


@pytest.mark.parametrize("model", [ImageAttackResult, SamplesResult, ForwardResult])
def test_each_artifact_id_of_a_result_has_its_url_field(model):
    fields = model.model_fields
    ids = [name for name in fields if name.endswith(("_artifact_id", "_artifact_ids"))]
    assert ids
    assert all(_url_key(name) in fields for name in ids), [_url_key(n) for n in ids if _url_key(n) not in fields]
