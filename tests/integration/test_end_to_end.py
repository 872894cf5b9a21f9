"""Submit, watch, evaluate, attack, cancel and crash, against the real stack."""

from __future__ import annotations

import io
import json
import re

import numpy as np
import pytest
import redis
from PIL import Image
from safetensors.torch import load
from sklearn.datasets import load_digits

from core.contract.presets import train_preset
from core.training import train
from tests.integration.conftest import HANG_SECONDS, answered, wait_job

pytestmark = pytest.mark.integration


def smoke_spec(epochs: int = 3, seed: int = 0) -> dict:
    return train_preset("smoke", seed=seed).model_copy(update={"epochs": epochs}).model_dump(mode="json")


@pytest.fixture(scope="module")
def trained(client):
    r = client.post("/v1/jobs", json={"kind": "adversarial_training", "spec": smoke_spec()})
    assert r.status_code == 202
    seen = []
    job = wait_job(client, r.json()["id"], seen=seen)
    return job, seen


def test_training_reports_progress_and_metrics_then_registers_the_model(client, trained):
    job, seen = trained
    assert job["status"] == "succeeded", job["error"]
    running = [s for s in seen if s[0] == "running"]
    assert running, "never saw the job running"
    progress = [p for _, p, _ in seen]
    assert progress == sorted(progress) and progress[-1] == 1.0
    assert any(n > 0 for status, _, n in running), "no metrics arrived while the job ran"
    metrics = client.get(f"/v1/jobs/{job['id']}/metrics").json()
    assert {m["step"] for m in metrics if m["name"] == "robust_acc"} == {1, 2, 3}
    model = client.get(f"/v1/models/{job['result']['model_id']}").json()
    assert model["dataset"] == "digits" and model["activation"] == "relu" and model["job_id"] == job["id"]
    curve = model["summary"]["curve"]
    assert [round(p["eps"], 3) for p in curve] == [0.0, 0.05, 0.1, 0.15, 0.2, 0.3]
    assert curve[0]["robust_acc"] == model["summary"]["clean_acc"] > 0.3
    assert model["summary"]["sanity"]["eps0_equals_clean"]
    assert client.get("/v1/models", params={"dataset": "digits"}).json()["total"] >= 1


def test_evaluation_job(client, trained):
    model_id = trained[0]["result"]["model_id"]
    spec = {
        "model_id": model_id,
        "data": {"name": "digits", "test_subset": 100},
        "protocol": {"ensemble": "custom", "attacks": [{"name": "apgd-ce", "steps": 5}], "images": 100},
        "eps_grid": [0.0, 0.1],
    }
    r = client.post("/v1/jobs", json={"kind": "attack_evaluation", "spec": spec})
    job = wait_job(client, r.json()["id"])
    assert job["status"] == "succeeded", job["error"]
    result = job["result"]
    assert [p["eps"] for p in result["curve"]] == [0.0, 0.1]
    assert result["curve"][1]["robust_acc"] == result["robust_acc"] <= result["clean_acc"]
    assert result["breakdown"][0]["attack"] == "apgd-ce5-linf" and len(result["broken_by"]) == 100
    report = client.get(result and f"/v1/artifacts/{result['report_artifact_id']}")
    assert report.status_code == 200 and report.json()["clean_acc"] == result["clean_acc"]


def test_attack_an_uploaded_png(client, trained):
    model_id = trained[0]["result"]["model_id"]
    digit = (load_digits().images[0] / 16 * 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(digit).resize((32, 32)).convert("RGB").save(buf, format="PNG")
    r = client.post(
        "/v1/attacks",
        files={"image": ("zero.png", buf.getvalue(), "image/png")},
        data={"model_id": model_id, "label": "0", "wait": "60"},
    )
    assert r.status_code == 200, r.text
    result = r.json()["result"]
    assert result["label"] == 0 and len(result["clean"]["probabilities"]) == 10
    assert abs(sum(result["adversarial"]["probabilities"]) - 1) < 1e-4
    assert 0 < result["linf"] <= 0.1 + 1e-6 and result["l2"] > 0
    for name in ("adversarial_url", "perturbation_url", "input_url"):
        img = Image.open(io.BytesIO(client.get(result[name]).content))
        assert img.format == "PNG"
    assert Image.open(io.BytesIO(client.get(result["adversarial_url"]).content)).size == (8, 8)


def test_attack_a_test_image_by_index(client, trained):
    from core.contract.specs import DataSpec
    from core.data import load_dataset

    model_id = trained[0]["result"]["model_id"]
    r = client.post("/v1/attacks", data={"model_id": model_id, "test_index": "7", "wait": "60"})
    assert r.status_code == 200, r.text
    result = r.json()["result"]
    ds = load_dataset(DataSpec(name="digits"))
    assert result["test_index"] == 7 and result["label"] == int(ds.y_test[7])
    assert result["classes"] == [str(i) for i in range(10)]
    shown = np.asarray(Image.open(io.BytesIO(client.get(result["input_url"]).content)), dtype=np.float32)
    assert np.abs(shown / 255 - ds.x_test[7, 0].numpy()).max() <= 1 / 255  # the very test image
    both = client.post(
        "/v1/attacks", files={"image": ("a.png", b"x", "image/png")}, data={"model_id": model_id, "test_index": "1"}
    )
    assert both.status_code == 422 and "exactly one" in both.text
    assert client.post("/v1/attacks", data={"model_id": model_id}).status_code == 422


def test_ddpm_training_then_samples_on_demand(client, trained):
    from core.contract.presets import ddpm_preset

    spec = ddpm_preset("smoke").model_copy(update={"epochs": 2}).model_dump(mode="json")
    job = wait_job(client, client.post("/v1/jobs", json={"kind": "ddpm_training", "spec": spec}).json()["id"])
    assert job["status"] == "succeeded", job["error"]
    model = client.get(f"/v1/models/{job['result']['model_id']}").json()
    assert model["kind"] == "diffusion" and len(model["summary"]["history"]) == 2
    quality = model["summary"]["quality"]  # the digits classifier trained above serves as the feature space
    assert quality["classifier_id"] == trained[0]["result"]["model_id"] and quality["frechet_distance"] >= 0
    assert sum(quality["class_histogram"].values()) == quality["samples"]
    body = {
        "model_id": model["id"],
        "n": 16,
        "sampler": "ddim",
        "steps": 10,
        "seed": 3,
        "trajectory": True,
        "trajectory_frames": 4,
    }
    result = answered(client, client.post("/v1/samples", json=body, params={"wait": 60}))["result"]
    assert len(result["sample_urls"]) == 16 and len(result["trajectory_urls"]) == 4
    grid = Image.open(io.BytesIO(client.get(result["grid_url"]).content))
    assert grid.format == "PNG" and grid.size[0] > 8 * 4
    again = answered(client, client.post("/v1/samples", json=body, params={"wait": 60}))["result"]
    first = client.get(result["sample_urls"][0]).content
    assert client.get(again["sample_urls"][0]).content == first  # same seed, same images
    assert client.post("/v1/samples", json={**body, "model_id": trained[0]["result"]["model_id"]}).status_code == 404
    assert client.post("/v1/samples", json={**body, "n": 10_000}).status_code == 422

    forward = {"model_id": model["id"], "test_index": 3, "timesteps": [0, 500, 999], "seed": 1}
    r = client.post("/v1/samples/forward", json=forward, params={"wait": 60})
    assert r.status_code == 200, r.text
    result = r.json()["result"]
    assert result["timesteps"] == [0, 500, 999] and len(result["x0_pred_urls"]) == 3
    alpha_bars = result["alpha_bars"]
    assert alpha_bars[0] > 0.99 > alpha_bars[1] > alpha_bars[2] > 0  # ᾱ_t falls with t
    pixels = [
        np.asarray(Image.open(io.BytesIO(client.get(u).content)), dtype=np.float32) / 255
        for u in [result["image_url"], *result["x_t_urls"]]
    ]
    assert np.abs(pixels[1] - pixels[0]).mean() < np.abs(pixels[3] - pixels[0]).mean()  # x_0 ≈ image, x_T noise
    bad = client.post("/v1/samples/forward", json={**forward, "timesteps": [5000]})
    assert bad.status_code == 422


def test_cancel_a_running_job(client):
    r = client.post("/v1/jobs", json={"kind": "adversarial_training", "spec": smoke_spec(epochs=400)})
    job_id = r.json()["id"]
    wait_job(client, job_id, until=("running",))
    assert client.post(f"/v1/jobs/{job_id}/cancel").json()["cancel_requested"]
    job = wait_job(client, job_id)
    assert job["status"] == "cancelled" and job["progress"] < 0.5


def test_sigkill_mid_training_resumes_from_checkpoint(stack, client, tmp_path):
    spec = smoke_spec(epochs=6, seed=1)
    job_id = client.post("/v1/jobs", json={"kind": "adversarial_training", "spec": spec}).json()["id"]
    wait_job(client, job_id, until=("running",))
    while not any(m["step"] >= 2 for m in client.get(f"/v1/jobs/{job_id}/metrics").json()):
        assert client.get(f"/v1/jobs/{job_id}").json()["status"] == "running"
    stack.kill("worker-train0")
    assert client.get(f"/v1/jobs/{job_id}").json()["status"] == "running"  # the store does not know yet
    stack.start_worker("train1", "train")
    job = wait_job(client, job_id)
    assert job["status"] == "succeeded", job["error"]
    assert job["attempts"] == 2
    # the same spec, uninterrupted, in this process: the same weights
    from core.contract.specs import TrainSpec

    train(TrainSpec.model_validate(spec), tmp_path / "reference")
    served = load(client.get(f"/v1/artifacts/{job['result']['checkpoint_artifact_id']}").content)
    reference = load((tmp_path / "reference" / "model.safetensors").read_bytes())
    assert served.keys() == reference.keys()
    assert all((served[k] == reference[k]).all() for k in served)


def test_jobs_redis_lost_are_enqueued_again(stack, client):
    stack.kill("worker-train1")
    job_id = client.post("/v1/jobs", json={"kind": "adversarial_training", "spec": smoke_spec(epochs=1)}).json()["id"]
    redis.Redis.from_url(stack.env["REDIS_URL"]).flushall()  # Redis restarted empty
    assert client.get(f"/v1/jobs/{job_id}").json()["status"] == "queued"
    stack.start_worker("train2", "train")
    job = wait_job(client, job_id)
    assert job["status"] == "succeeded", job["error"]


def test_command_line_client(stack, capsys):
    from core.cli.main import main

    args = ["--api", stack.api_url, "--key", stack.key]
    assert main(["keys", "create", "ci", *args]) == 0
    new_key = capsys.readouterr().out.strip()
    assert new_key.startswith("rl_")
    assert main(["submit", "adversarial_training", "--preset", "smoke", "--api", stack.api_url, "--key", new_key]) == 0
    job_id = capsys.readouterr().out.strip()
    assert main(["cancel", job_id, *args]) == 0
    assert "cancel requested: True" in capsys.readouterr().out
    assert main(["jobs", "--limit", "50", *args]) == 0
    assert job_id in capsys.readouterr().out
    assert main(["watch", job_id, "--interval", "0.2", *args]) == 1  # it was cancelled
    table = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert table[:2] == [["id", job_id], ["status", "cancelled"]]  # a table for a person
    assert main(["watch", job_id, "--json", *args]) == 1
    printed = json.loads(capsys.readouterr().out)
    assert set(printed) == {"id", "status", "result", "error"} and printed["status"] == "cancelled"
    assert main(["jobs", "--api", stack.api_url, "--key", "rl_wrong"]) == 2
    assert "401" in capsys.readouterr().err


def test_every_queue_of_the_job_table_has_a_worker(client):
    from core.contract.kinds import JOB_KINDS

    workers = client.get("/healthz").json()["workers"]
    consumed = {q for w in workers.values() for q in w["queues"]}
    assert {kind.queue for kind in JOB_KINDS.values()} <= consumed


def test_the_python_client_as_a_notebook_uses_it(stack, trained):
    from core.contract.client import Lab, LabError

    with Lab(stack.api_url, stack.key) as lab:
        job = lab.submit(
            "attack_evaluation",
            {
                "model_id": trained[0]["result"]["model_id"],
                "eps_grid": [0.1],
                "data": {"name": "digits", "test_subset": 32},
                "protocol": {"steps": 10, "queries": 100},
            },
        )
        reports = []
        assert job.wait(timeout=HANG_SECONDS, interval=0.2, progress=reports.append) is job
        assert job.status == "succeeded" and job.result["curve"][-1]["eps"] == 0.1
        assert reports[-1].fraction == 1.0 and any(r.fraction < 1 for r in reports)
        assert [a["name"] for a in job.artifacts()] == ["evaluation.json"]
        assert lab.job(trained[0]["id"]).metrics()
        with pytest.raises(LabError, match="spec.epochs") as bad:
            lab.submit("adversarial_training", {"epochs": 0})
        assert bad.value.status == 422
        with pytest.raises(LabError, match="no registered classifier model"):
            lab.submit("image_attack", {"model_id": "nope", "test_index": 0})
        overrides = {"model_id": trained[0]["result"]["model_id"], "test_index": 5}
        attack = lab.submit("image_attack", preset="default", overrides=overrides).wait(timeout=HANG_SECONDS)
        assert attack.status == "succeeded" and attack.data["spec"]["test_index"] == 5


def test_the_command_line_submits_every_kind_that_acts_on_a_model(stack, trained, capsys):
    from core.cli.main import main

    assert main(["watch", trained[0]["id"], "--api", stack.api_url, "--key", stack.key]) == 0
    table = capsys.readouterr().out.splitlines()  # the training's headline, with the model's breakdown and warnings
    labels = [re.split(r"\s{2,}", line)[0] for line in table if not line.startswith(" ")]
    assert labels == [
        "id",
        "status",
        "clean",
        "robust",
        "protocol",
        "breakdown",
        "warnings",
        "model id",
        "checkpoint",
    ] + ["per-epoch check"]
    assert sum(" broken)" in line for line in table) == 4  # APGD-CE, APGD-T, FAB-T, Square
    args = ["--api", stack.api_url, "--key", stack.key, "--model-id", trained[0]["result"]["model_id"]]
    assert main(["submit", "image_attack", "--watch", "--json", *args]) == 0
    out = capsys.readouterr().out
    assert '"status": "succeeded"' in out and '"adversarial_artifact_id"' in out
    assert main(["submit", "ddpm_sampling", "--api", stack.api_url, "--key", stack.key]) == 2
    assert "pass --model-id" in capsys.readouterr().err


def test_upload_your_own_model_then_evaluate_it(client, trained):
    import json

    job = trained[0]
    weights = client.get(f"/v1/artifacts/{job['result']['checkpoint_artifact_id']}").content
    spec = client.get(f"/v1/models/{job['result']['model_id']}").json()["recipe"]["model"]
    files = {"weights": ("mine.safetensors", weights, "application/octet-stream")}
    r = client.post("/v1/models", files=files, data={"spec": json.dumps(spec), "dataset": "digits", "name": "mine"})
    assert r.status_code == 201, r.text
    model = r.json()
    assert model["name"] == "mine" and model["recipe"]["method"] == "uploaded"
    assert model["summary"]["clean_acc"] > 0.3 and model["summary"]["clean_images"] == 297
    r = client.post("/v1/models", files=files, data={"spec": json.dumps({**spec, "width": 32}), "dataset": "digits"})
    assert r.status_code == 422 and "wrong shape" in r.json()["detail"]
    names = [m["name"] for m in client.get("/v1/models", params={"limit": 200}).json()["items"]]
    assert names.count("mine") == 1  # the refused upload registered nothing
    protocol = {"eps": 0.1, "images": 64, "steps": 5, "queries": 50}
    r = client.post(
        "/v1/jobs",
        json={
            "kind": "attack_evaluation",
            "spec": {"model_id": model["id"], "protocol": protocol, "data": {"name": "digits"}},
        },
    )
    result = wait_job(client, r.json()["id"])["result"]
    assert result["protocol"]["images"] == 64 and [b["attack"] for b in result["breakdown"]][0] == "apgd-ce5-linf"
    evaluations = client.get(f"/v1/models/{model['id']}").json()["summary"]["evaluations"]
    assert [e["robust_acc"] for e in evaluations] == [result["robust_acc"]]


def test_train_jobs_of_different_users_interleave(client):
    from tests.integration.conftest import member

    one = smoke_spec(epochs=1)
    with member(client, "alice") as alice, member(client, "bob") as bob:
        study = [
            alice.post("/v1/jobs", json={"kind": "adversarial_training", "spec": one}).json()["id"] for _ in range(4)
        ]
        late = bob.post("/v1/jobs", json={"kind": "adversarial_training", "spec": one}).json()["id"]
        jobs = [wait_job(alice, j) for j in study] + [wait_job(bob, late)]
    assert all(j["status"] == "succeeded" for j in jobs), [j["error"] for j in jobs]
    order = [j["id"] for j in sorted(jobs, key=lambda j: j["started_at"])]
    assert order.index(late) <= 1, "bob's job waited behind alice's whole study"


def test_the_queued_job_limit_answers_429_and_the_rate_limit_holds_across_api_processes(client, trained):
    from tests.integration.conftest import member

    with member(client, "carol") as carol:
        ids = []
        for _ in range(10):
            r = carol.post("/v1/jobs", json={"kind": "adversarial_training", "spec": smoke_spec(epochs=50)})
            assert r.status_code == 202
            ids.append(r.json()["id"])
        r = carol.post("/v1/jobs", json={"kind": "adversarial_training", "spec": smoke_spec()})
        assert (
            r.status_code == 429 and r.headers["Retry-After"] == "60" and "limit per user is 10" in r.json()["detail"]
        )
        for job_id in ids:
            carol.post(f"/v1/jobs/{job_id}/cancel")
        form = {"model_id": trained[0]["result"]["model_id"], "test_index": "0", "wait": "0"}
        codes = [carol.post("/v1/attacks", data=form).status_code for _ in range(31)]  # 15 a minute: a 429 by the 31st
        assert 429 in codes and set(codes) <= {200, 202, 429}
        limited = carol.post("/v1/attacks", data=form)
        if limited.status_code == 429:
            assert 1 <= int(limited.headers["Retry-After"]) <= 60
        assert client.post("/v1/attacks", data=form).status_code in (200, 202)  # a quota is per user


def test_a_dataset_upload_through_the_stack_then_a_hostile_one_and_the_worker_lives_on(client):
    from tests.api.test_datasets import HOSTILE, class_folders_zip

    def upload(data: bytes, name: str):
        return client.post(
            "/v1/datasets", files={"archive": ("d.zip", data, "application/zip")}, data={"name": name, "wait": "60"}
        )

    r = upload(HOSTILE["fake image"][0], "bad")  # passes the directory checks, fails decoding in the worker
    assert r.status_code == 422 and "not a readable image" in r.json()["detail"]
    r = upload(class_folders_zip(), "good")
    assert r.status_code == 201, r.text
    dataset = r.json()
    assert dataset["classes"] == ["cat", "dog"] and sum(dataset["train"]) == 8 and dataset["image_size"] == 8
    assert dataset["id"] in {d["id"] for d in client.get("/v1/datasets").json()["uploaded"]}
    assert client.delete(f"/v1/datasets/{dataset['id']}").status_code == 204
