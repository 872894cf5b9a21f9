"""Property-based test of the whole API from its OpenAPI schema: whatever comes in, no 5xx.

Generated JSON bodies also carry NaN and infinities (which Python's and JavaScript's JSON writers
emit): a hook puts one in place of a number of the body. CI runs a fixed (derandomised) set of 25
cases per operation; FUZZ_EXAMPLES=300 runs a longer random search."""

import json
import math
import os

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from tests.api.conftest import make_app
from tests.redis_server import embedded_redis


@pytest.fixture(scope="module")
def app_and_key(tmp_path_factory):
    """The app as deployed: with a Redis of its own (the embedded one `make up` starts), so the
    paths that use Redis (key revocation, rate limits, /healthz) are fuzzed on every machine."""
    tmp = tmp_path_factory.mktemp("fuzz")
    app, key, _, _, settings = make_app(f"sqlite:///{tmp / 'store.db'}", tmp)
    with embedded_redis(tmp) as url:
        settings.redis_url = url
        yield app, key


@pytest.fixture(scope="module")
def api_schema(app_and_key):
    return schemathesis.openapi.from_asgi("/openapi.json", app_and_key[0])


schema = schemathesis.pytest.from_fixture("api_schema")
NON_FINITE = (float("nan"), float("inf"), float("-inf"))


def with_non_finite(body, value: float):
    """`body` with its first number (depth first) replaced by `value`; unchanged if it has none."""
    if isinstance(body, bool):
        return body
    if isinstance(body, int | float):
        return value
    if isinstance(body, dict):
        for key, item in body.items():
            changed = with_non_finite(item, value)
            if changed is not item:
                return {**body, key: changed}
    if isinstance(body, list):
        for i, item in enumerate(body):
            changed = with_non_finite(item, value)
            if changed is not item:
                return [*body[:i], changed, *body[i + 1 :]]
    return body


@schemathesis.hook
def flatmap_body(context, body):
    return st.one_of(st.just(body), st.sampled_from(NON_FINITE).map(lambda v: with_non_finite(body, v)))


@schema.parametrize()
@settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "25")),
    deadline=None,
    derandomize=not os.environ.get("FUZZ_EXAMPLES"),
    suppress_health_check=list(HealthCheck),
)
def test_no_server_errors(case, app_and_key):
    for headers in ({"Authorization": f"Bearer {app_and_key[1]}"}, {}):  # with a key and without
        if _has_non_finite(case.body):
            # requests refuses to write NaN; send the JSON text a Python or JavaScript client writes
            with TestClient(app_and_key[0]) as client:
                response = client.request(
                    case.method,
                    case.formatted_path,
                    params=case.query,
                    content=json.dumps(case.body),
                    headers={**headers, "Content-Type": "application/json"},
                )
        else:
            response = case.call(headers=headers)
        assert response.status_code < 500, (case.method, case.path, response.status_code, response.text[:300])


def _has_non_finite(body) -> bool:
    if isinstance(body, float):
        return not math.isfinite(body)
    if isinstance(body, dict):
        return any(_has_non_finite(v) for v in body.values())
    if isinstance(body, list):
        return any(_has_non_finite(v) for v in body)
    return False
