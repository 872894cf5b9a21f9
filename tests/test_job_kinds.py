"""The table of job kinds is the one list: every kind in it is accepted by the API and routed to
its queue, has a runner, has presets, and appears in the command line's choices and the dashboard's
lists. (The integration tests check that a started stack has a worker on every queue.)"""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from core.contract.kinds import JOB_KINDS, JobKindName, preset_specs
from core.contract.names import QUEUES
from core.contract.references import declared
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


def with_references(kind: str, spec: dict, api) -> dict:
    """`spec` with each model or artifact it declares at the top level named (a registered model of
    the declared kind, the test's upload), and the nested ones set where the preset has them."""
    for path, ref in declared(JOB_KINDS[kind].spec):
        *parents, name = path.split(".")
        holder = spec
        for part in parents:
            holder = holder.get(part) if isinstance(holder, dict) else None
        if not isinstance(holder, dict) or (parents and name not in holder):
            continue
        if ref.target == "model":
            holder[name] = api.models[ref.model_kind]
        elif ref.target == "artifact" and holder.get(name) is not None:
            holder[name] = api.upload
    return spec


@pytest.mark.parametrize("kind", [k for k in KINDS if JOB_KINDS[k].direct])
def test_the_api_accepts_every_kind_and_sends_it_to_its_queue(api, kind):
    row = JOB_KINDS[kind]
    spec = with_references(kind, next(iter(preset_specs(kind).values())), api)
    r = api.post("/v1/jobs", json={"kind": kind, "spec": spec})
    assert r.status_code == 202, r.text
    assert r.json()["kind"] == kind and api.queue.sent[-1] == (r.json()["id"], row.queue)


@pytest.mark.parametrize("kind", [k for k in KINDS if not JOB_KINDS[k].direct])
def test_the_upload_kinds_come_only_through_their_routes(api, kind):
    spec = with_references(kind, next(iter(preset_specs(kind).values())), api)
    r = api.post("/v1/jobs", json={"kind": kind, "spec": spec})
    assert r.status_code == 422 and "upload route" in r.json()["detail"], r.text


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

    page = Path(__file__).resolve().parents[1] / "dashboard" / "views" / "jobs.py"
    at = AppTest.from_file(str(page), default_timeout=60)
    at.session_state["api"] = FakeApi()
    at.run()
    assert list(at.selectbox(key="jobs_kind").options) == ["all", *KINDS]


def id_fields(spec_type, prefix: str = "") -> list[str]:
    """The paths of every field named like an id (`*_id`, `*_ids`) in a spec and the specs in it."""
    from pydantic import BaseModel

    from core.contract.references import _nested_models

    out = []
    for name, info in spec_type.model_fields.items():
        if name.endswith(("_id", "_ids")):
            out.append(f"{prefix}{name}")
        for model in _nested_models(info.annotation):
            if issubclass(model, BaseModel):
                out += id_fields(model, f"{prefix}{name}.")
    return out


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_declares_its_references_limits_memory_and_time_limit(kind):
    from core.contract.specs import ModelSpec
    from core.settings import Settings, settings_from_env, time_limit

    row, settings = JOB_KINDS[kind], Settings()
    declared_paths = {path.replace("[]", "") for path, _ in declared(row.spec)}
    assert not set(id_fields(row.spec)) - declared_paths, "an id field that is not a declared reference"
    for spec in row.presets().values():
        limits = row.limits(spec)
        assert isinstance(limits, list) and all(hasattr(settings, limit.setting) for limit in limits)
        assert all(limit.value <= getattr(settings, limit.setting) for limit in limits), "a preset the server refuses"
        assert row.memory(spec, ModelSpec() if row.acts_on == "classifier" else None) > 2**20
    assert row.memory_fields and row.time_limit_hours > 0
    assert time_limit(settings, kind) == row.time_limit_hours * 3600
    overridden = settings_from_env({"ROBUSTLAB_JOB_TIME_LIMITS": f'{{"{kind}": 7}}'})
    assert time_limit(overridden, kind) == 7


@pytest.mark.parametrize(
    "kind, change, field",
    [
        ("dataset_generation", {"per_class": 100_000}, "per_class"),
        ("dataset_generation", {"steps": 4000}, "steps"),
        ("attack_evaluation", {"eps_grid": [0.01 * i for i in range(1, 33)]}, "eps_grid"),
    ],
)
def test_a_spec_past_a_server_limit_of_its_kind_is_422_naming_the_field(api, kind, change, field):
    spec = with_references(kind, {**next(iter(preset_specs(kind).values())), **change}, api)
    r = api.post("/v1/jobs", json={"kind": kind, "spec": spec})
    assert r.status_code == 422 and f"spec.{field} = " in r.json()["detail"], r.text
