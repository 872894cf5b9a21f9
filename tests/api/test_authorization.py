"""The authorisation matrix, generated from the app's route list: every /v1 route × {no key, wrong
key, revoked key, expired key, the owner, another member, an admin} → the expected status. A route
with no rule here fails the test: a new route must say who may call it."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from core.contract.presets import train_preset
from core.store import jobs as store_jobs
from core.store.artifacts import ArtifactStore, record_artifact
from core.store.db import session_scope
from core.store.keys import create_key, ensure_user
from core.store.orm import DatasetRow, Study, utcnow
from core.store.registry import register_model
from tests.api.conftest import make_app
from tests.api.test_datasets import class_folders_zip
from tests.api.test_model_upload import GOOD, SPEC

SMOKE = train_preset("smoke").model_dump(mode="json")
NOT_FOUND, FORBIDDEN, OK = 404, 403, None  # OK: the route's success status


@dataclass
class Rule:
    """What the owner, another member and an admin get; `make` names the owner's object the path
    needs (made fresh for each call), `body`/`files`/`form` what the request sends."""

    ok: int
    owner: int | None = OK
    other: int | None = OK
    admin: int | None = OK
    make: str | None = None
    body: dict | None = None
    form: dict | None = None
    files: dict | None = field(default=None, repr=False)


UPLOAD = {"weights": ("m.safetensors", GOOD, "application/octet-stream")}
ARCHIVE = {"archive": ("d.zip", class_folders_zip(), "application/zip")}
RULES = {
    ("GET", "/v1/me"): Rule(200),
    ("POST", "/v1/keys"): Rule(201, body={"name": "laptop"}),
    ("GET", "/v1/keys"): Rule(200),
    ("DELETE", "/v1/keys/{key_id}"): Rule(204, other=NOT_FOUND, make="key"),
    ("GET", "/v1/audit"): Rule(200, owner=FORBIDDEN, other=FORBIDDEN),
    ("POST", "/v1/jobs"): Rule(202, body={"kind": "adversarial_training", "spec": SMOKE}),
    ("GET", "/v1/jobs"): Rule(200),
    ("GET", "/v1/jobs/{job_id}"): Rule(200, other=NOT_FOUND, make="private_job"),
    ("GET", "/v1/jobs/{job_id}/metrics"): Rule(200, other=NOT_FOUND, make="private_job"),
    ("GET", "/v1/jobs/{job_id}/artifacts"): Rule(200, other=NOT_FOUND, make="private_job"),
    ("POST", "/v1/jobs/{job_id}/cancel"): Rule(200, other=NOT_FOUND, make="private_job"),
    ("DELETE", "/v1/jobs/{job_id}"): Rule(204, other=FORBIDDEN, make="finished_job"),
    ("POST", "/v1/studies"): Rule(
        202, body={"train_preset": "smoke", "seeds": 1, "activations": ["relu"], "probes": []}
    ),
    ("GET", "/v1/studies"): Rule(200),
    ("GET", "/v1/studies/{study_id}"): Rule(200, make="study"),
    ("DELETE", "/v1/studies/{study_id}"): Rule(204, other=FORBIDDEN, make="study"),
    ("GET", "/v1/models"): Rule(200),
    ("GET", "/v1/models/{model_id}"): Rule(200, make="model"),
    ("POST", "/v1/models"): Rule(202, form={"spec": SPEC, "dataset": "digits", "wait": "0"}, files=UPLOAD),
    ("DELETE", "/v1/models/{model_id}"): Rule(204, other=FORBIDDEN, make="model"),
    ("POST", "/v1/attacks"): Rule(202, make="model", form={"test_index": "0", "wait": "0"}),
    ("POST", "/v1/samples"): Rule(202, make="diffusion", body={"n": 2}),
    ("POST", "/v1/samples/forward"): Rule(202, make="diffusion", body={}),
    ("GET", "/v1/presets"): Rule(200),
    ("GET", "/v1/datasets"): Rule(200),
    ("GET", "/v1/datasets/{dataset_id}"): Rule(200, other=NOT_FOUND, make="dataset"),
    ("POST", "/v1/datasets"): Rule(202, form={"name": "mine", "wait": "0"}, files=ARCHIVE),
    ("DELETE", "/v1/datasets/{dataset_id}"): Rule(204, other=NOT_FOUND, make="dataset"),
    ("GET", "/v1/artifacts/{artifact_id}"): Rule(200, other=NOT_FOUND, make="upload"),
}
# More cases of the same routes: the lab's shared objects, and actions refused by state.
EXTRA = [
    (("GET", "/v1/jobs/{job_id}"), Rule(200, make="finished_job")),
    (("POST", "/v1/jobs/{job_id}/cancel"), Rule(200, other=FORBIDDEN, make="finished_job")),
    (("DELETE", "/v1/jobs/{job_id}"), Rule(409, other=NOT_FOUND, make="private_job")),
    (("GET", "/v1/artifacts/{artifact_id}"), Rule(200, make="job_artifact")),
]


class World:
    """An app with an admin, an owner and another member, and the owner's objects on demand."""

    def __init__(self, tmp_path):
        self.url = f"sqlite:///{tmp_path / 'store.db'}"
        self.app, self.admin_key, self.queue, _, self.settings = make_app(self.url, tmp_path)
        self.store = ArtifactStore(self.settings.artifact_url)
        with session_scope(self.url) as s:
            owner, other = ensure_user(s, name="owner"), ensure_user(s, name="other")
            self.owner_id = owner.id
            self.owner_key = create_key(s, name="owner-laptop", user=owner)[1]
            self.other_key = create_key(s, name="other-laptop", user=other)[1]
            revoked, self.revoked_key = create_key(s, name="old", user=owner)
            revoked.revoked = True
            self.expired_key = create_key(s, name="gone", user=owner, expires_at=utcnow() - timedelta(seconds=1))[1]
        self.client = TestClient(self.app)

    def make(self, what: str) -> dict:
        """A fresh object of the owner's; the path parameters that name it."""
        with session_scope(self.url) as s:
            own = {"owner": "owner", "owner_id": self.owner_id}
            if what == "key":
                return {"key_id": create_key(s, name="spare", user=ensure_user(s, name="owner"))[0].id}
            if what in ("private_job", "finished_job", "job_artifact"):
                job = store_jobs.create_job(s, kind="adversarial_training", spec=SMOKE, **own)
                if what != "private_job":
                    store_jobs.finish_job(s, job_id=job.id, status="succeeded", result={})
                if what == "job_artifact":
                    art = record_artifact(
                        s, self.store, key=f"jobs/{job.id}/a.json", data=b"{}", type="report", job_id=job.id
                    )
                    return {"artifact_id": art.id}
                return {"job_id": job.id}
            if what == "study":
                study = Study(name="s", preset="sat", spec={}, **own)
                s.add(study)
                s.flush()
                return {"study_id": study.id}
            if what in ("model", "diffusion"):
                kind = "classifier" if what == "model" else "diffusion"
                m = register_model(
                    s,
                    kind=kind,
                    name="m",
                    dataset="digits",
                    architecture="small_cnn",
                    activation="relu",
                    checkpoint_uri=f"jobs/none/{what}",
                    summary={},
                    owner_id=self.owner_id,
                    recipe={"model": {"in_channels": 1, "image_size": 8}},
                )
                return {"model_id": m.id}
            if what == "dataset":
                row = DatasetRow(
                    name="d",
                    owner_id=self.owner_id,
                    classes={"names": ["a", "b"], "train": [1, 1], "test": [1, 1]},
                    channels=1,
                    image_size=8,
                    uri="jobs/none/dataset",
                )
                s.add(row)
                s.flush()
                return {"dataset_id": row.id}
            if what == "upload":
                art = record_artifact(
                    s, self.store, key="uploads/o/x.png", data=b"png", type="upload", owner_id=self.owner_id
                )
                return {"artifact_id": art.id}
        raise ValueError(what)

    def call(self, method: str, path: str, rule: Rule, key: str | None):
        params = self.make(rule.make) if rule.make else {}
        path_params = {k: v for k, v in params.items() if "{" + k + "}" in path}
        form = dict(rule.form or {})
        body = dict(rule.body) if rule.body is not None else None
        if rule.make in ("model", "diffusion") and not path_params:  # the model is named in the request
            if form is not None and rule.form is not None:
                form["model_id"] = params["model_id"]
            if body is not None:
                body["model_id"] = params["model_id"]
        files = {k: (n, io.BytesIO(d), t) for k, (n, d, t) in (rule.files or {}).items()} or None
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        kwargs = {"json": body} if body is not None else {"data": form, "files": files} if rule.form else {}
        return self.client.request(method, path.format(**path_params), headers=headers, **kwargs)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return World(tmp_path_factory.mktemp("authz"))


def v1_routes(app) -> set[tuple[str, str]]:
    """Every (method, path) of /v1, from the app's own OpenAPI document (its route list)."""
    paths = app.openapi()["paths"]
    return {(method.upper(), path) for path, ops in paths.items() if path.startswith("/v1") for method in ops}


def test_every_route_has_a_rule(world):
    missing = v1_routes(world.app) - set(RULES)
    assert not missing, f"routes without an authorisation rule: {sorted(missing)}"
    assert not set(RULES) - v1_routes(world.app), "rules for routes that no longer exist"


CASES = [(route, rule) for route, rule in RULES.items()] + EXTRA


@pytest.mark.parametrize("route, rule", CASES, ids=[f"{m} {p} [{r.make}]" for (m, p), r in CASES])
def test_the_matrix(world, route, rule):
    method, path = route
    outcomes = {}
    for who, key in (
        ("no key", None),
        ("wrong key", "rl_" + "x" * 43),
        ("revoked key", world.revoked_key),
        ("expired key", world.expired_key),
    ):
        outcomes[who] = world.call(method, path, rule, key).status_code
    for who, key in (("owner", world.owner_key), ("another member", world.other_key), ("admin", world.admin_key)):
        outcomes[who] = world.call(method, path, rule, key).status_code
    expected = {
        "no key": 401,
        "wrong key": 401,
        "revoked key": 401,
        "expired key": 401,
        "owner": rule.owner or rule.ok,
        "another member": rule.other or rule.ok,
        "admin": rule.admin or rule.ok,
    }
    assert outcomes == expected


def test_members_list_their_own_jobs_and_the_labs_finished_ones(world):
    private = world.make("private_job")["job_id"]
    finished = world.make("finished_job")["job_id"]

    def seen(key: str) -> set[str]:
        page = world.client.get("/v1/jobs", params={"limit": 200}, headers={"Authorization": f"Bearer {key}"})
        return {j["id"] for j in page.json()["items"]}

    assert {private, finished} <= seen(world.owner_key)
    assert finished in seen(world.other_key) and private not in seen(world.other_key)
    assert {private, finished} <= seen(world.admin_key)


def test_a_member_cannot_make_admin_keys_or_keys_for_others(world):
    headers = {"Authorization": f"Bearer {world.other_key}"}
    assert world.client.post("/v1/keys", json={"name": "x", "role": "admin"}, headers=headers).status_code == 403
    assert world.client.post("/v1/keys", json={"name": "x", "user": "owner"}, headers=headers).status_code == 403
    made = world.client.post("/v1/keys", json={"name": "x"}, headers=headers).json()
    assert made["user"] == "other" and made["role"] == "member"
    admin = {"Authorization": f"Bearer {world.admin_key}"}
    made = world.client.post("/v1/keys", json={"name": "ops", "user": "carol", "role": "admin"}, headers=admin).json()
    me = world.client.get("/v1/me", headers={"Authorization": f"Bearer {made['key']}"}).json()
    assert me["name"] == "carol" and me["role"] == "admin"


def test_a_member_key_that_expires_makes_none_that_outlives_it(world):
    admin = {"Authorization": f"Bearer {world.admin_key}"}
    week = world.client.post("/v1/keys", json={"name": "week", "user": "other", "expires_in_days": 7}, headers=admin)
    headers, until = (
        {"Authorization": f"Bearer {week.json()['key']}"},
        datetime.fromisoformat(week.json()["expires_at"]),
    )
    for asked in ({"name": "for ever"}, {"name": "a year", "expires_in_days": 365}):
        made = world.client.post("/v1/keys", json=asked, headers=headers).json()
        assert made["expires_at"] is not None and datetime.fromisoformat(made["expires_at"]) == until, made
    shorter = world.client.post("/v1/keys", json={"name": "a day", "expires_in_days": 1}, headers=headers).json()
    assert datetime.fromisoformat(shorter["expires_at"]) < until


def test_a_study_counts_for_each_member_only_the_jobs_they_may_see(world):
    owner, other = ({"Authorization": f"Bearer {k}"} for k in (world.owner_key, world.other_key))
    body = {"name": "counts", "train_preset": "smoke", "activations": ["relu"], "probes": [], "seeds": 2}
    study = world.client.post("/v1/studies", json=body, headers=owner).json()
    assert study["jobs"] == {"queued": 2}
    assert world.client.get(f"/v1/studies/{study['id']}", headers=other).json()["jobs"] == {}
    for job in world.client.get("/v1/jobs", params={"study": study["id"]}, headers=owner).json()["items"]:
        assert world.client.post(f"/v1/jobs/{job['id']}/cancel", headers=owner).status_code == 200
    assert world.client.delete(f"/v1/studies/{study['id']}", headers=owner).status_code == 204  # the world as it was


def test_a_revoked_key_stops_at_once_even_after_it_was_cached(world):
    key = world.client.post("/v1/keys", json={"name": "temp"}, headers={"Authorization": f"Bearer {world.owner_key}"})
    key = key.json()
    headers = {"Authorization": f"Bearer {key['key']}"}
    assert world.client.get("/v1/me", headers=headers).status_code == 200  # now in the process' cache
    assert world.client.delete(f"/v1/keys/{key['id']}", headers=headers).status_code == 204
    assert world.client.get("/v1/me", headers=headers).status_code == 401


def test_every_action_is_in_the_audit_log(world):
    admin = {"Authorization": f"Bearer {world.admin_key}"}
    job_id = world.client.post(
        "/v1/jobs",
        json={"kind": "adversarial_training", "spec": SMOKE},
        headers={"Authorization": f"Bearer {world.owner_key}"},
    ).json()["id"]
    world.client.post(f"/v1/jobs/{job_id}/cancel", headers=admin)
    world.client.delete(f"/v1/jobs/{job_id}", headers=admin)
    log = world.client.get("/v1/audit", params={"limit": 1000}, headers=admin).json()
    mine = [(e["user_name"], e["action"]) for e in log if e["object_id"] == job_id]
    assert mine == [("tester", "delete"), ("tester", "cancel"), ("owner", "submit")]
    assert json.dumps(log)  # plain JSON


def test_specs_inside_specs_are_checked_like_the_top_level(world):
    """A generated dataset mixed into training is the caller's to use, like the main data; models
    named inside a spec (a filter's classifier, a defense's parts) must exist and be of their kind."""
    dataset = world.make("dataset")["dataset_id"]
    classifier, diffusion = world.make("model")["model_id"], world.make("diffusion")["model_id"]
    mix = {"data": {"name": "digits"}, "model": {"image_size": 8}}
    mix["generated"] = {"data": {"name": "uploaded", "dataset_id": dataset}, "fraction": 0.7}

    def submit(key: str, kind: str, spec: dict):
        headers = {"Authorization": f"Bearer {key}"}
        return world.client.post("/v1/jobs", json={"kind": kind, "spec": spec}, headers=headers)

    assert submit(world.owner_key, "adversarial_training", mix).status_code == 202
    refused = submit(world.other_key, "adversarial_training", mix)
    assert refused.status_code == 404 and dataset in refused.text
    assert (
        submit(
            world.owner_key, "adversarial_training", {**mix, "generated": {**mix["generated"], "fraction": 1}}
        ).status_code
        == 422
    )
    generate = {"model_id": diffusion, "per_class": 5, "filter": {"classifier_id": diffusion}}
    r = submit(world.owner_key, "dataset_generation", generate)
    assert r.status_code == 404 and "spec.filter.classifier_id" in r.text
    generate["filter"]["classifier_id"] = classifier
    assert submit(world.owner_key, "dataset_generation", generate).status_code == 202
    assert submit(world.owner_key, "dataset_generation", {**generate, "per_class": 0}).status_code == 422
    defense = {"classifier_id": diffusion, "diffusion_id": classifier}
    r = submit(world.owner_key, "defended_model", defense)
    assert r.status_code == 404 and "spec.classifier_id" in r.text
    defense = {"classifier_id": classifier, "diffusion_id": diffusion, "purifier": {"t_star": 5, "steps": 10}}
    assert submit(world.owner_key, "defended_model", defense).status_code == 422
    defense["purifier"]["steps"] = 5
    assert submit(world.owner_key, "defended_model", defense).status_code == 202
