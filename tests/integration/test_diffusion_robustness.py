"""Diffusion for robustness against the real stack: a generated dataset (filtered, resumed after a
SIGKILL to the same images), training that mixes it in, a purification defense registered, its
three robust accuracies, and its parts protected from deletion."""

from __future__ import annotations

import pytest

from core.contract.attack_specs import ProtocolSpec
from core.contract.presets import ddpm_preset, train_preset
from tests.integration.conftest import HANG_SECONDS, running_stack, wait_job

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def faults(tmp_path_factory):
    return tmp_path_factory.mktemp("faults")


@pytest.fixture(scope="module")
def stack(tmp_path_factory, faults):  # this module's stack (conftest's `client` talks to it): faults injected
    extra = {"ROBUSTLAB_FAULT_DIR": str(faults), "ROBUSTLAB_INTERACTIVE_PER_MINUTE": "30"}
    with running_stack(tmp_path_factory.mktemp("stack"), extra_env=extra) as s:
        yield s


def submit(client, kind: str, spec: dict, timeout: float = HANG_SECONDS) -> dict:
    r = client.post("/v1/jobs", json={"kind": kind, "spec": spec})
    assert r.status_code == 202, r.text
    job = wait_job(client, r.json()["id"], timeout=timeout)
    assert job["status"] == "succeeded", job["error"]
    return job


@pytest.fixture(scope="module")
def models(client):
    quick = {"epochs": 1, "protocol": ProtocolSpec(ensemble="pgd", images=50), "eval_subset": 50}
    classifier = submit(
        client, "adversarial_training", train_preset("smoke").model_copy(update=quick).model_dump(mode="json")
    )
    ddpm = ddpm_preset("smoke").model_copy(update={"class_conditional": True, "epochs": 1}).model_dump(mode="json")
    diffusion = submit(client, "ddpm_training", ddpm)
    return classifier["result"]["model_id"], diffusion["result"]["model_id"]


def generation(diffusion_id: str, **update) -> dict:
    return {"model_id": diffusion_id, "per_class": 6, "steps": 4, "shard_size": 25, "seed": 1, **update}


def shard_hashes(client, job_id: str) -> dict:
    return {a["name"]: a["sha256"] for a in client.get(f"/v1/jobs/{job_id}/artifacts").json() if "shard" in a["name"]}


def test_generated_dataset_is_registered_with_its_provenance_and_trains(client, models):
    classifier_id, diffusion_id = models
    spec = generation(diffusion_id, filter={"classifier_id": classifier_id, "mode": "agree"})
    job = submit(client, "dataset_generation", spec)
    dataset = client.get(f"/v1/datasets/{job['result']['dataset_id']}").json()
    provenance = dataset["provenance"]
    assert provenance["diffusion_model_id"] == diffusion_id and provenance["filter"]["classifier_id"] == classifier_id
    assert provenance["drawn_per_class"] == [6] * 10
    assert provenance["kept_per_class"] == dataset["train"] and 0 < sum(dataset["train"]) <= 60
    assert sum(dataset["test"]) == 297  # the real test split of digits
    assert len(shard_hashes(client, job["id"])) == 3

    mixed = train_preset("smoke").model_copy(update={"epochs": 1}).model_dump(mode="json")
    mixed["generated"] = {"data": {"name": "uploaded", "dataset_id": dataset["id"]}, "fraction": 0.5}
    trained = submit(client, "adversarial_training", mixed)
    model = client.get(f"/v1/models/{trained['result']['model_id']}").json()
    assert model["recipe"]["generated"]["data"]["dataset_id"] == dataset["id"]

    other = {"name": "uploaded", "dataset_id": "nope"}
    r = client.post("/v1/jobs", json={"kind": "adversarial_training", "spec": {**mixed, "generated": {"data": other}}})
    assert r.status_code == 404 and "dataset" in r.text
    r = client.post("/v1/jobs", json={"kind": "dataset_generation", "spec": generation(classifier_id)})
    assert r.status_code == 404  # a classifier is no diffusion model
    bad_filter = generation(diffusion_id, filter={"classifier_id": diffusion_id})
    r = client.post("/v1/jobs", json={"kind": "dataset_generation", "spec": bad_filter})
    assert r.status_code == 404 and "spec.filter.classifier_id" in r.text


def test_generation_killed_mid_way_resumes_to_the_same_images(client, models, faults):
    _, diffusion_id = models
    spec = generation(diffusion_id, per_class=5, shard_size=10)
    job_id = client.post("/v1/jobs", json={"kind": "dataset_generation", "spec": spec}).json()["id"]
    (faults / job_id).write_text("sigkill@epoch:3\nonce")  # the child dies once its third shard is stored
    job = wait_job(client, job_id)
    assert job["status"] == "succeeded", job["error"]
    assert job["attempts"] == 2 and job["result"]["shards_resumed"] == 3 and job["result"]["shards"] == 5
    reference = submit(client, "dataset_generation", spec)
    assert reference["result"]["shards_resumed"] == 0
    quality = reference["result"]["provenance"]["quality"]  # every image, in the smoke classifier's features
    assert quality["samples"] == quality["reference"] == 50 and quality["frechet_distance"] > 0
    assert sum(quality["class_histogram"].values()) == 50 and quality["sampler"] == "ddpm-4"
    resumed, uninterrupted = shard_hashes(client, job_id), shard_hashes(client, reference["id"])
    assert len(resumed) == 5 and resumed == uninterrupted


def test_purification_defense_reports_three_numbers(client, models):
    classifier_id, diffusion_id = models
    spec = {"classifier_id": classifier_id, "diffusion_id": diffusion_id, "purifier": {"t_star": 40, "steps": 4}}
    job = submit(client, "defended_model", spec)
    defended = client.get(f"/v1/models/{job['result']['model_id']}").json()
    assert defended["kind"] == "classifier" and defended["architecture"] == "purified"
    assert 0 < defended["summary"]["clean_acc"] <= 1

    protocol = {"ensemble": "rand", "eps": 0.1, "images": 24, "steps": 3, "eot": 2}
    evaluation = submit(
        client, "attack_evaluation", {"model_id": defended["id"], "data": {"name": "digits"}, "protocol": protocol}
    )
    result = evaluation["result"]
    ways = result["defense"]
    assert {"non_adaptive", "bpda", "adaptive"} <= set(ways)
    assert result["robust_acc"] == min(ways[w]["robust_acc"] for w in ("non_adaptive", "bpda", "adaptive"))
    assert result["checks"]["randomized"]
    entry = client.get(f"/v1/models/{defended['id']}").json()["summary"]["evaluations"][-1]
    assert entry["robust_acc"] == result["robust_acc"] and entry["defense"]["adaptive"] == ways["adaptive"]

    r = client.post("/v1/attacks", data={"model_id": defended["id"], "test_index": 0, "wait": 60})
    assert r.status_code == 200, r.text
    nested = client.post("/v1/jobs", json={"kind": "defended_model", "spec": {**spec, "classifier_id": defended["id"]}})
    assert nested.status_code == 422 and "already a defended model" in nested.json()["detail"]  # at submission
    assert client.delete(f"/v1/models/{classifier_id}").status_code == 409  # part of the defense
    assert client.delete(f"/v1/models/{defended['id']}").status_code == 204
