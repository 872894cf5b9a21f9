"""Property-based test of the whole API from its OpenAPI schema: whatever comes in, no 5xx.

CI runs a fixed (derandomised) set of 25 cases per operation; FUZZ_EXAMPLES=300 runs a longer
random search."""

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from tests.api.conftest import make_app


@pytest.fixture(scope="module")
def app_and_key(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fuzz")
    app, key, *_ = make_app(f"sqlite:///{tmp / 'store.db'}", tmp)
    return app, key


@pytest.fixture(scope="module")
def api_schema(app_and_key):
    return schemathesis.openapi.from_asgi("/openapi.json", app_and_key[0])


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "25")),
    deadline=None,
    derandomize=not os.environ.get("FUZZ_EXAMPLES"),
    suppress_health_check=list(HealthCheck),
)
def test_no_server_errors(case, app_and_key):
    for headers in ({"Authorization": f"Bearer {app_and_key[1]}"}, {}):  # with a key and without
        response = case.call(headers=headers)
        assert response.status_code < 500, (case.method, case.path, response.status_code, response.text[:300])
