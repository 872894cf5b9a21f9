"""Input that could only crash a parser gets a 4xx on every route, never a 5xx: JSON nested 500 to
100,000 deep, lone UTF-16 surrogates in values and keys (of JSON bodies, form fields, query
strings), deep JSON inside form fields, a safetensors header nested 100,000 deep. The routes are
read from the app, so a new route is covered without being named here."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient

from tests.api.conftest import make_app
from tests.dbs import database_url

SURROGATE = '"\\ud800"'  # valid JSON, no UTF-8 string
DEPTHS = (500, 950, 100_000)


def deep(n: int) -> str:
    return '{"a":' * n + "1" + "}" * n


def hostile_json() -> dict[str, bytes]:
    bodies = {f"nested {n}": deep(n) for n in DEPTHS}
    bodies |= {f"array {n}": "[" * n + "]" * n for n in DEPTHS}
    bodies |= {
        "surrogate value": '{"name": ' + SURROGATE + ', "kind": ' + SURROGATE + "}",
        "surrogate key": '{"kind": "adversarial_training", "spec": {' + SURROGATE + ": 1}}",
        "surrogate user": '{"name": "k", "user": ' + SURROGATE + "}",
        "surrogate in a list": '{"activations": [' + SURROGATE + "]}",
        "NUL value": '{"name": "a\\u0000b", "kind": "adversarial_training", "user": "a\\u0000"}',
        "NUL key": '{"kind": "adversarial_training", "spec": {"a\\u0000": 1}}',
        "invalid utf-8": b'{"name": "\xed\xa0\x80"}',
    }
    return {k: v if isinstance(v, bytes) else v.encode() for k, v in bodies.items()}


@dataclass
class Operation:
    """One route and method of the OpenAPI document, with what its request carries."""

    method: str
    path: str
    queries: list[str]
    form_text: list[str]
    form_files: list[str]


def operations(app, model_id: str) -> list[Operation]:
    schema = app.openapi()
    out = []
    for path, methods in schema["paths"].items():
        filled = re.sub(r"\{(\w+)\}", lambda m: model_id if "model" in m.group(1) else "x", path)
        for method, op in methods.items():
            queries = [p["name"] for p in op.get("parameters", []) if p["in"] == "query"]
            form = (op.get("requestBody") or {}).get("content", {}).get("multipart/form-data", {}).get("schema", {})
            if "$ref" in form:
                form = schema["components"]["schemas"][form["$ref"].rsplit("/", 1)[-1]]
            props = form.get("properties", {})
            files = [k for k, v in props.items() if "binary" in str(v) or v.get("contentMediaType")]
            out.append(Operation(method.upper(), filled, queries, [k for k in props if k not in files], files))
    return out


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def client(request, tmp_path_factory):
    """PostgreSQL too: it refuses a NUL character in text, where SQLite stores it."""
    tmp = tmp_path_factory.mktemp("hostile")
    url, cleanup = database_url(request.param, tmp)
    app, key, _, model_id, _ = make_app(url, tmp)
    with TestClient(app, raise_server_exceptions=False) as c:
        c.headers["Authorization"] = f"Bearer {key}"
        c.operations = operations(app, model_id)
        yield c
    cleanup()


def test_hostile_json_bodies_get_a_4xx_on_every_route(client):
    seen = 0
    for op in client.operations:
        if op.method == "GET":
            continue
        for name, body in hostile_json().items():
            r = client.request(op.method, op.path, content=body, headers={"content-type": "application/json"})
            assert r.status_code < 500, (op.method, op.path, name, r.status_code, r.text[:200])
            seen += 1
    assert seen > 100


def test_hostile_form_fields_and_queries_get_a_4xx_on_every_route(client):
    surrogate_bytes = "\ud800".encode("utf-8", "surrogatepass")
    forms = [op for op in client.operations if op.form_text or op.form_files]
    assert {"/v1/models", "/v1/datasets", "/v1/attacks"} <= {op.path for op in forms}
    for op in forms:
        files = {k: ("f.bin", b"\x00" * 16, "application/octet-stream") for k in op.form_files}
        for value in ("\\ud800", "\ud800", "a\x00b", '{"a\\u0000": 1}', deep(500), deep(5_000)):  # text or JSON
            data = {k: value.encode("utf-8", "surrogatepass") for k in op.form_text}
            r = client.request(op.method, op.path, files=[*[(k, (None, v)) for k, v in data.items()], *files.items()])
            assert r.status_code < 500, (op.path, value[:20], r.status_code, r.text[:200])
    for op in client.operations:
        for value in (surrogate_bytes.decode("latin-1"), "a\x00b"):
            r = client.request(op.method, op.path, params={q: value for q in op.queries})
            assert r.status_code < 500, (op.method, op.path, "query", r.status_code, r.text[:200])


def test_a_nul_in_an_id_of_the_url_is_a_4xx_on_every_route(client):
    with_ids = [op for op in client.operations if op.path.count("/") > 2]
    assert len(with_ids) > 10
    for op in with_ids:
        path = re.sub(r"/x(?=/|$)", "/a%00b", op.path)
        if path == op.path:
            path = op.path.rstrip("/") + "%00"
        r = client.request(op.method, path)
        assert r.status_code < 500, (op.method, path, r.status_code, r.text[:200])


def test_a_huge_id_in_the_url_is_not_echoed_back_whole(client):
    r = client.get("/v1/jobs/" + "a" * 60_000)
    assert r.status_code == 404 and len(r.text) < 300, r.text[:200]


def test_a_safetensors_header_nested_100000_deep_is_a_422(client):
    header = deep(100_000).encode()
    data = len(header).to_bytes(8, "little") + header
    r = client.post(
        "/v1/models",
        files={"weights": ("m.safetensors", data, "application/octet-stream")},
        data={"spec": "{}", "dataset": "digits"},
    )
    assert r.status_code == 422 and "nested deeper than" in r.json()["detail"]


def test_a_body_past_the_limit_is_413_and_a_normal_one_passes(client):
    from api.json_guard import MAX_JSON_BYTES

    r = client.post("/v1/keys", content=b'{"name": "' + b"x" * MAX_JSON_BYTES + b'"}')
    assert r.status_code == 413
    r = client.post("/v1/keys", json={"name": "fine"})
    assert r.status_code == 201, r.text


def test_a_second_content_type_cannot_carry_a_body_past_the_guard(client):
    """The guard and the route must read the same Content-Type: a request declaring two is refused
    before its body is read, whatever it holds (past the size limit, a lone surrogate)."""
    from api.json_guard import MAX_JSON_BYTES

    two = [("content-type", "application/json"), ("content-type", "multipart/form-data; boundary=x")]
    big = b'{"name": "' + b"x" * (2 * MAX_JSON_BYTES) + b'"}'
    for body in (big, b'{"kind": "adversarial_training", "spec": {"data": {"name": "\\ud800"}}}'):
        for path in ("/v1/keys", "/v1/jobs"):
            r = client.post(path, content=body, headers=two)
            assert r.status_code == 400 and "more than one Content-Type" in r.json()["detail"], r.text[:200]


def test_a_lone_surrogate_echoed_in_a_422_is_written_escaped():
    """Defence behind the guard: the 422 body that echoes a lone surrogate still encodes."""
    from api.json_safety import FiniteJSONResponse

    body = FiniteJSONResponse(content={"detail": [{"input": "\ud800", "name": "é"}]}).body
    assert body == b'{"detail":[{"input":"\\ud800","name":"\\u00e9"}]}'


def test_a_value_the_database_refuses_past_validation_is_a_422():
    from fastapi.testclient import TestClient as Client
    from sqlalchemy.exc import DataError

    from api.main import create_app

    app = create_app()

    @app.get("/refused")
    def refused():
        raise DataError("INSERT ...", {}, Exception('invalid byte sequence for encoding "UTF8": 0x00'))

    r = Client(app, raise_server_exceptions=False).get("/refused")
    assert r.status_code == 422 and "the database refused a value: invalid byte sequence" in r.json()["detail"]
