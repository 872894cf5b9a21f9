"""Member against member on the real stack (embedded Redis, Celery workers, uvicorn): bob tries
what a curious or hostile colleague would with alice's model, dataset and uploaded image. Each
attempt is refused, nothing of alice's is deleted or leaked, and her model still serves an attack."""

from __future__ import annotations

import io
import json

import pytest
import torch
from PIL import Image
from safetensors.torch import save

from core.contract.specs import ModelSpec
from core.models import build_model
from tests.api.test_datasets import class_folders_zip
from tests.integration.conftest import member, running_stack, wait_job

pytestmark = pytest.mark.integration
MODEL = ModelSpec(arch="small_cnn", image_size=8, width=8)


def png_bytes() -> bytes:
    buf = io.BytesIO()
    Image.new("L", (8, 8), 120).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """The stack, alice's and bob's clients, and what alice made: a model upload, a dataset
    upload and an attack on an uploaded image (each job finished)."""
    with running_stack(tmp_path_factory.mktemp("members")) as stack:
        import httpx

        with httpx.Client(
            base_url=stack.api_url, headers={"Authorization": f"Bearer {stack.key}"}, timeout=60
        ) as admin:
            alice, bob = member(admin, "alice"), member(admin, "bob")
        torch.manual_seed(0)
        weights = save(build_model(MODEL).state_dict())
        files = {"weights": ("m.safetensors", weights, "application/octet-stream")}
        r = alice.post("/v1/models", files=files, data={"spec": MODEL.model_dump_json(), "dataset": "digits"})
        assert r.status_code == 201, r.text
        model = r.json()
        upload_job = wait_job(alice, model["job_id"])
        r = alice.post("/v1/datasets", files={"archive": ("d.zip", class_folders_zip())}, data={"name": "pets"})
        assert r.status_code == 201, r.text
        dataset = r.json()
        r = alice.post(
            "/v1/attacks",
            files={"image": ("x.png", png_bytes(), "image/png")},
            data={"model_id": model["id"], "wait": "60", "attack": json.dumps({"steps": 3})},
        )
        assert r.status_code == 200, r.text
        yield {
            "alice": alice,
            "bob": bob,
            "model": model,
            "upload_job": upload_job,
            "dataset": dataset,
            "attack": r.json(),
        }
        alice.close()
        bob.close()


def dataset_job(lab) -> dict:
    jobs = lab["alice"].get("/v1/jobs", params={"kind": "dataset_upload"}).json()["items"]
    return next(j for j in jobs if j["result"]["dataset_id"] == lab["dataset"]["id"])


def test_bob_cannot_make_a_job_consume_alices_model_or_dataset(lab):
    alice, bob = lab["alice"], lab["bob"]
    checkpoint = lab["upload_job"]["result"]["checkpoint_artifact_id"]
    assert bob.get(f"/v1/artifacts/{checkpoint}").status_code == 200  # a shared model's weights: readable
    spec = {"weights_artifact_id": checkpoint, "model": MODEL.model_dump(mode="json"), "data": {"name": "digits"}}
    r = bob.post("/v1/jobs", json={"kind": "model_upload", "spec": spec})
    assert r.status_code == 422 and "upload route" in r.json()["detail"]
    arrays = [a["id"] for a in alice.get(f"/v1/jobs/{dataset_job(lab)['id']}/artifacts").json()]
    r = bob.post("/v1/jobs", json={"kind": "dataset_upload", "spec": {"archive_artifact_id": arrays[0], "name": "x"}})
    assert r.status_code == 422
    assert bob.get(f"/v1/artifacts/{checkpoint}").status_code == 200  # nothing was deleted
    assert all(alice.get(f"/v1/artifacts/{a}").status_code == 200 for a in arrays)


def test_alices_private_data_does_not_leak_through_her_finished_jobs(lab):
    alice, bob = lab["alice"], lab["bob"]
    job = dataset_job(lab)
    arrays = [a["id"] for a in alice.get(f"/v1/jobs/{job['id']}/artifacts").json()]
    assert len(arrays) == 2
    assert bob.get(f"/v1/jobs/{job['id']}").status_code == 404
    assert bob.get(f"/v1/jobs/{job['id']}/artifacts").status_code == 404
    assert bob.get(f"/v1/jobs/{job['id']}/metrics").status_code == 404
    assert all(bob.get(f"/v1/artifacts/{a}").status_code == 404 for a in arrays)
    attack = lab["attack"]
    assert alice.get(attack["result"]["adversarial_url"]).status_code == 200
    for url in (attack["result"]["adversarial_url"], attack["result"]["input_url"], f"/v1/jobs/{attack['id']}"):
        assert bob.get(url).status_code == 404, url
    listed = {j["id"] for j in bob.get("/v1/jobs", params={"limit": 200}).json()["items"]}
    assert job["id"] not in listed and attack["id"] not in listed
    assert lab["upload_job"]["id"] in listed  # a registered model's job is the lab's


def test_bob_cannot_name_alices_private_objects_in_a_spec(lab):
    bob, model = lab["bob"], lab["model"]
    data = {"name": "uploaded", "dataset_id": lab["dataset"]["id"]}
    r = bob.post("/v1/jobs", json={"kind": "attack_evaluation", "spec": {"model_id": model["id"], "data": data}})
    assert r.status_code == 404, r.text
    attack = lab["attack"]["result"]
    for artifact in (attack["input_artifact_id"], attack["adversarial_artifact_id"]):
        spec = {"model_id": model["id"], "input_artifact_id": artifact}
        r = bob.post("/v1/jobs", json={"kind": "image_attack", "spec": spec})
        assert r.status_code == 404 and "input_artifact_id" in r.json()["detail"], r.text


def test_alices_model_still_serves_an_attack_afterwards(lab):
    r = lab["alice"].post("/v1/attacks", data={"model_id": lab["model"]["id"], "test_index": "3", "wait": "60"})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "succeeded" and r.json()["result"]["linf"] <= 0.1 + 1e-6
    r = lab["bob"].post("/v1/attacks", data={"model_id": lab["model"]["id"], "test_index": "3", "wait": "60"})
    assert r.status_code == 200 and r.json()["status"] == "succeeded"  # the registry is shared
