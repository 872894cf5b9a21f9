"""The table of job kinds is the one list: every kind in it is accepted by the API and routed to
its queue, has a runner, has presets, and appears in the command line's choices and the dashboard's
lists. (The integration tests check that a started stack has a worker on every queue.)"""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.routes.jobs import MODEL_REFERENCES
from core.contract.kinds import JOB_KINDS, JobKindName, preset_specs
from core.contract.names import QUEUES
from core.store.artifacts import ArtifactStore, record_artifact
from core.store.db import session_scope
from core.store.registry import register_model
from tests.api.conftest import make_app

KINDS = list(JOB_KINDS)


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("kinds")
    url = f"sqlite:///{tmp / 'store.db'}"
    app, key, queue, classifier_id, _ = make_app(url, tmp)
    with session_scope(url) as s:
        fields = {"dataset": "digits", "architecture": "unet2d", "activation": "silu", "summary": {}, "recipe": {}}
        diffusion = register_model(s, kind="diffusion", name="d", checkpoint_uri="jobs/y/checkpoint", **fields)
        models = {"classifier": classifier_id, "diffusion": diffusion.id}
        upload = record_artifact(
            s, ArtifactStore(str(tmp / "artifacts")), key="uploads/w.safetensors", data=b"w", type="upload"
        ).id
    with TestClient(app) as client:
        client.headers["Authorization"] = f"Bearer {key}"
        client.queue, client.models, client.upload = queue, models, upload
        yield client


@pytest.mark.parametrize("kind", KINDS)
def test_the_api_accepts_every_kind_and_sends_it_to_its_queue(api, kind):
    row = JOB_KINDS[kind]
    spec = next(iter(preset_specs(kind).values()))
    if row.acts_on:
        spec["model_id"] = api.models[row.acts_on]
    for field, model_kind in MODEL_REFERENCES.items():  # the models a spec names besides model_id
        if field in spec:
            spec[field] = api.models[model_kind]
    for field in [f for f in spec if f.endswith("_artifact_id") and spec[f] is not None]:
        spec[field] = api.upload
    r = api.post("/v1/jobs", json={"kind": kind, "spec": spec})
    assert r.status_code == 202, r.text
    assert r.json()["kind"] == kind and api.queue.sent[-1] == (r.json()["id"], row.queue)


@pytest.mark.parametrize("kind", [k for k in KINDS if JOB_KINDS[k].acts_on])
def test_a_kind_that_acts_on_a_model_wants_one_of_its_model_kind(api, kind):
    row = JOB_KINDS[kind]
    spec = next(iter(preset_specs(kind).values()))
    wrong = api.models["diffusion" if row.acts_on == "classifier" else "classifier"]
    r = api.post("/v1/jobs", json={"kind": kind, "spec": {**spec, "model_id": wrong}})
    assert r.status_code == 404 and f"no registered {row.acts_on} model" in r.json()["detail"]


def test_the_presets_endpoint_and_the_request_schema_cover_every_kind(api):
    assert list(api.get("/v1/presets").json()) == KINDS
    schema = api.get("/openapi.json").json()["components"]["schemas"]["JobIn"]["properties"]["kind"]
    assert schema["enum"] == KINDS
    assert set(JobKindName.__args__) == set(KINDS)


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_has_a_runner_presets_and_a_known_queue(kind):
    row = JOB_KINDS[kind]
    runner = row.resolve_runner()
    assert callable(runner) and list(inspect.signature(runner).parameters) == ["spec", "ctx"]
    assert row.queue in QUEUES
    presets = row.presets()
    assert presets and all(isinstance(p, row.spec) for p in presets.values())


def test_the_command_line_offers_every_kind():
    from core.cli.main import build_parser

    parser = build_parser()
    commands = next(a for a in parser._subparsers._group_actions if a.dest == "command").choices
    kind_arg = next(a for a in commands["submit"]._actions if a.dest == "kind")
    assert list(kind_arg.choices) == KINDS


def test_the_dashboard_lists_every_kind():
    from streamlit.testing.v1 import AppTest

    from tests.dashboard.fake_api import FakeApi

    page = Path(__file__).resolve().parents[1] / "dashboard" / "pages" / "jobs.py"
    at = AppTest.from_file(str(page), default_timeout=60)
    at.session_state["api"] = FakeApi()
    at.run()
    assert list(at.selectbox(key="jobs_kind").options) == ["all", *KINDS]
