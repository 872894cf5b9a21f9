"""What a spec names is authorised at submission, and what is private stays private through the
jobs that read or make it: two members, alice and bob, against the HTTP layer on a real database.
(tests/integration/test_members.py makes the same attempts against the real stack.)"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from api.deps import Caller
from api.references import authorize
from core.contract.job_specs import ImageAttackSpec, ModelUploadSpec
from core.contract.presets import train_preset
from core.contract.specs import DataSpec, ModelSpec
from core.store import jobs as store_jobs
from core.store.artifacts import ArtifactStore, record_artifact
from core.store.db import session_scope
from core.store.keys import create_key, ensure_user
from core.store.orm import DatasetRow, Job
from core.store.registry import record_evaluation, register_model
from tests.api.conftest import make_app

SMOKE = train_preset("smoke")


def finished(s, kind: str, spec: dict, owner_id: str) -> Job:
    job = store_jobs.create_job(s, kind=kind, spec=spec, owner="someone", owner_id=owner_id)
    job.status = "succeeded"
    s.flush()
    return job


@pytest.fixture
def lab(tmp_path):
    """alice's objects: a raw upload, a finished dataset upload (arrays, dataset), a shared trained
    model with its checkpoint, and a private model trained on her dataset; clients for both."""
    url = f"sqlite:///{tmp_path / 'store.db'}"
    app, _, queue, _, settings = make_app(url, tmp_path)
    store = ArtifactStore(settings.artifact_url)
    ids = {}
    with session_scope(url) as s:
        for name in ("alice", "bob"):
            user = ensure_user(s, name=name, role="member")
            ids[f"{name}_id"], ids[f"{name}_key"] = user.id, create_key(s, name=name, user=user)[1]
        alice = ids["alice_id"]

        def art(key: str, kind: str, job: str | None = None, owner: str | None = alice) -> str:
            return record_artifact(s, store, key=key, data=b"b", type=kind, owner_id=owner, job_id=job).id

        ids["upload"] = art("uploads/a/1.safetensors", "upload")
        dataset_job = finished(s, "dataset_upload", {"archive_artifact_id": "gone", "name": "pets"}, alice)
        ids["dataset_job"] = dataset_job.id
        ids["arrays"] = art(f"jobs/{dataset_job.id}/dataset/dataset.safetensors", "dataset", dataset_job.id, None)
        row = DatasetRow(
            name="pets",
            owner_id=alice,
            classes={"names": ["a", "b"], "train": [1, 1], "test": [1, 1]},
            channels=1,
            image_size=8,
            uri=f"jobs/{dataset_job.id}/dataset",
            job_id=dataset_job.id,
        )
        s.add(row)
        s.flush()
        ids["dataset"] = row.id
        train_job = finished(s, "adversarial_training", SMOKE.model_dump(mode="json"), alice)
        ids["checkpoint"] = art(f"jobs/{train_job.id}/checkpoint/model.safetensors", "checkpoint", train_job.id, None)
        train_job.result = {"checkpoint_artifact_id": ids["checkpoint"], "model_id": "not-an-artifact"}
        ids["train_job"] = train_job.id
        fields = {
            "kind": "classifier",
            "dataset": "digits",
            "architecture": "small_cnn",
            "activation": "relu",
            "summary": {},
            "recipe": {"model": {"in_channels": 1, "image_size": 8}},
            "owner_id": alice,
        }
        shared = register_model(s, name="shared", job_id=train_job.id, checkpoint_uri="c/1", **fields)
        ids["shared_model"] = shared.id
        on_private = SMOKE.model_copy(update={"data": DataSpec(name="uploaded", dataset_id=row.id)})
        private_job = finished(s, "adversarial_training", on_private.model_dump(mode="json"), alice)
        private = register_model(s, name="private", job_id=private_job.id, checkpoint_uri="c/2", **fields)
        ids["private_job"], ids["private_model"] = private_job.id, private.id
    clients = {}
    for name in ("alice", "bob"):
        clients[name] = TestClient(app)
        clients[name].headers["Authorization"] = f"Bearer {ids[f'{name}_key']}"
    yield {**ids, **clients, "url": url, "queue": queue}
    for name in ("alice", "bob"):
        clients[name].close()


def caller(lab, name: str) -> Caller:
    return Caller(key_id="k", user_id=lab[f"{name}_id"], name=name, role="member")


def test_the_upload_kinds_are_refused_on_post_jobs(lab):
    spec = ModelUploadSpec(weights_artifact_id=lab["checkpoint"], model=ModelSpec(image_size=8), data=DataSpec())
    r = lab["bob"].post("/v1/jobs", json={"kind": "model_upload", "spec": spec.model_dump(mode="json")})
    assert r.status_code == 422 and "POST /v1/models" in r.json()["detail"]
    r = lab["bob"].post("/v1/jobs", json={"kind": "dataset_upload", "spec": {"archive_artifact_id": lab["arrays"]}})
    assert r.status_code == 422 and not lab["queue"].sent


@pytest.mark.parametrize(
    "who, artifact, code, why",
    [
        ("bob", "checkpoint", 403, "a job's checkpoint, not a raw upload"),  # readable by bob, never his to consume
        ("alice", "checkpoint", 403, "a job's checkpoint, not a raw upload"),  # not even by its owner
        ("bob", "upload", 404, "no artifact"),  # another's upload: as if it did not exist
    ],
)
def test_only_ones_own_raw_upload_may_be_consumed(lab, who, artifact, code, why):
    from fastapi import HTTPException

    spec = ModelUploadSpec(weights_artifact_id=lab[artifact], model=ModelSpec(image_size=8), data=DataSpec())
    with session_scope(lab["url"]) as s, pytest.raises(HTTPException) as e:
        authorize(s, make_settings(lab), caller(lab, who), "model_upload", spec)
    assert e.value.status_code == code and why in e.value.detail
    with session_scope(lab["url"]) as s:  # alice's own fresh upload is hers to consume
        own = spec.model_copy(update={"weights_artifact_id": lab["upload"]})
        authorize(s, make_settings(lab), caller(lab, "alice"), "model_upload", own)


def make_settings(lab):
    from core.settings import Settings

    return Settings(database_url=lab["url"])


def test_an_upload_another_job_names_is_not_consumable(lab):
    from fastapi import HTTPException

    with session_scope(lab["url"]) as s:
        spec = ImageAttackSpec(model_id=lab["shared_model"], input_artifact_id=lab["upload"])
        store_jobs.create_job(s, kind="image_attack", spec=spec.model_dump(mode="json"), owner_id=lab["alice_id"])
    spec = ModelUploadSpec(weights_artifact_id=lab["upload"], model=ModelSpec(image_size=8), data=DataSpec())
    with session_scope(lab["url"]) as s, pytest.raises(HTTPException) as e:
        authorize(s, make_settings(lab), caller(lab, "alice"), "model_upload", spec)
    assert e.value.status_code == 403 and "named by job(s)" in e.value.detail


def test_a_finished_dataset_upload_and_its_arrays_are_private(lab):
    for path in (
        f"/v1/jobs/{lab['dataset_job']}",
        f"/v1/jobs/{lab['dataset_job']}/artifacts",
        f"/v1/artifacts/{lab['arrays']}",
    ):
        assert lab["alice"].get(path).status_code == 200, path
        assert lab["bob"].get(path).status_code == 404, path
    listed = {j["id"] for j in lab["bob"].get("/v1/jobs", params={"limit": 200}).json()["items"]}
    assert lab["dataset_job"] not in listed and lab["private_job"] not in listed


def test_a_model_trained_on_private_data_is_private(lab):
    def names(who: str) -> set[str]:
        return {m["name"] for m in lab[who].get("/v1/models").json()["items"]}

    assert names("alice") >= {"shared", "private"} and "private" not in names("bob") and "shared" in names("bob")
    assert lab["bob"].get(f"/v1/models/{lab['private_model']}").status_code == 404
    spec = {"model_id": lab["private_model"], "test_index": 0}
    assert lab["bob"].post("/v1/jobs", json={"kind": "image_attack", "spec": spec}).status_code == 404
    assert lab["alice"].post("/v1/jobs", json={"kind": "image_attack", "spec": spec}).status_code == 202
    r = lab["bob"].post("/v1/attacks", data={"model_id": lab["private_model"], "test_index": "0"})
    assert r.status_code == 404


def test_a_spec_may_name_only_what_its_caller_may_read(lab):
    bob = lab["bob"]
    data = {"name": "uploaded", "dataset_id": lab["dataset"]}
    r = bob.post(
        "/v1/jobs", json={"kind": "attack_evaluation", "spec": {"model_id": lab["shared_model"], "data": data}}
    )
    assert r.status_code == 404
    r = bob.post(
        "/v1/jobs", json={"kind": "adversarial_training", "spec": {**SMOKE.model_dump(mode="json"), "data": data}}
    )
    assert r.status_code == 404
    spec = {"model_id": lab["shared_model"], "input_artifact_id": lab["upload"]}
    r = bob.post("/v1/jobs", json={"kind": "image_attack", "spec": spec})
    assert r.status_code == 404 and "spec.input_artifact_id" in r.json()["detail"]
    spec = {"model_id": lab["shared_model"], "input_artifact_id": lab["checkpoint"]}  # readable, but not an image
    r = lab["alice"].post("/v1/jobs", json={"kind": "image_attack", "spec": spec})
    assert r.status_code == 422 and "is a checkpoint" in r.json()["detail"]


def test_a_private_jobs_evaluation_is_not_written_into_a_shared_models_summary(lab):
    with session_scope(lab["url"]) as s:
        on_private = {"model_id": lab["shared_model"], "data": {"name": "uploaded", "dataset_id": lab["dataset"]}}
        private_eval = store_jobs.create_job(s, kind="attack_evaluation", spec=on_private, owner_id=lab["alice_id"])
        shared_eval = store_jobs.create_job(s, kind="attack_evaluation", spec={"model_id": lab["shared_model"]})
        assert private_eval.private and not shared_eval.private
        assert not record_evaluation(
            s, model_id=lab["shared_model"], entry={"job_id": private_eval.id, "robust_acc": 0.1}
        )
        assert record_evaluation(s, model_id=lab["shared_model"], entry={"job_id": shared_eval.id, "robust_acc": 0.2})
        assert record_evaluation(s, model_id=lab["private_model"], entry={"job_id": private_eval.id, "robust_acc": 0.3})
    evaluations = lab["bob"].get(f"/v1/models/{lab['shared_model']}").json()["summary"]["evaluations"]
    assert [e["robust_acc"] for e in evaluations] == [0.2]


def test_a_job_read_by_id_carries_the_urls_of_its_artifacts(lab):
    """GET /v1/jobs/{id} links the artifact ids of the result as the interactive answers do (a
    client that got a 202 finds the same URLs there); an id that is no artifact gets none."""
    result = lab["alice"].get(f"/v1/jobs/{lab['train_job']}").json()["result"]
    assert result["checkpoint_url"] == f"/v1/artifacts/{lab['checkpoint']}" and "model_url" not in result


def test_a_refused_deletion_names_only_what_the_caller_may_see(lab):
    """alice's shared model is held by bob's private defended model and bob's queued job: her 409
    counts them without naming them (their ids were in the message before)."""
    with session_scope(lab["url"]) as s:
        defense = {"defense": {"classifier_id": lab["shared_model"], "diffusion_id": "d"}}
        fields = {"kind": "classifier", "dataset": "digits", "activation": "relu", "summary": {}}
        held = register_model(
            s, name="d", architecture="purified", checkpoint_uri="c/3", recipe=defense, owner_id=lab["bob_id"], **fields
        )
        held.private = True
        spec = ImageAttackSpec(model_id=lab["shared_model"], test_index=0).model_dump(mode="json")
        queued = store_jobs.create_job(s, kind="image_attack", spec=spec, owner="bob", owner_id=lab["bob_id"])
        held_id, queued_id = held.id, queued.id
    r = lab["alice"].delete(f"/v1/models/{lab['shared_model']}")
    assert r.status_code == 409 and "1 you cannot see: cancel them first" in r.json()["detail"], r.text
    with session_scope(lab["url"]) as s:
        s.get(Job, queued_id).status = "cancelled"
    r = lab["alice"].delete(f"/v1/models/{lab['shared_model']}")
    assert r.status_code == 409 and "1 you cannot see: delete them first" in r.json()["detail"], r.text
    assert held_id not in r.text and queued_id not in r.text


def test_a_dataset_a_registered_model_was_trained_on_is_kept_until_the_model_goes(lab):
    """Its test images are what the model is evaluated and attacked on: deleting it first left
    every such job to fail in the worker."""
    with session_scope(lab["url"]) as s:
        fields = {"kind": "classifier", "architecture": "small_cnn", "activation": "relu", "summary": {}, "recipe": {}}
        on_it = register_model(
            s, name="m", dataset=f"uploaded:{lab['dataset']}", checkpoint_uri="c/9", owner_id=lab["alice_id"], **fields
        ).id
    r = lab["alice"].delete(f"/v1/datasets/{lab['dataset']}")
    assert r.status_code == 409 and f"is the data of registered model(s) {on_it}: delete them first" in r.text
    assert lab["alice"].delete(f"/v1/models/{on_it}").status_code == 204
    assert lab["alice"].delete(f"/v1/datasets/{lab['dataset']}").status_code == 204
