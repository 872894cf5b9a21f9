"""The job layer in one process: `execute_job` on SQLite and a local artifact folder, no Redis and
no Celery, for every job kind of the table (smoke-sized), plus a stop request and failures."""

from __future__ import annotations

import json
import threading
import time

import pytest
import torch
from safetensors.torch import load, save

from core.contract.attack_specs import ProtocolSpec
from core.contract.diffusion_specs import (
    DatasetGenerationSpec,
    DDPMForwardSpec,
    DDPMSampleSpec,
    DefendedModelSpec,
    PurifierSpec,
    SampleFilterSpec,
)
from core.contract.job_specs import DatasetUploadSpec, ImageAttackSpec, MinNormSpec, ModelUploadSpec
from core.contract.kinds import JOB_KINDS
from core.contract.presets import certification_preset, ddpm_preset, eval_preset, train_preset
from core.contract.recipe_specs import RecipeSpec
from core.contract.specs import DataSpec, GeneratedMixSpec, ModelSpec
from core.jobs.execute import execute_job
from core.jobs.model_cache import ModelCache
from core.settings import Settings
from core.store import jobs as store_jobs
from core.store.artifacts import ArtifactStore, record_artifact
from core.store.db import session_scope
from core.store.migrate import upgrade
from core.store.orm import Artifact, RegisteredModel
from core.store.registry import get_model


class Lab:
    """A store, an artifact folder and a model cache, and `run(kind, spec)` through `execute_job`."""

    def __init__(self, folder):
        self.settings = Settings(
            database_url=f"sqlite:///{folder / 'store.db'}",
            artifact_url=str(folder / "artifacts"),
            work_dir=folder / "work",
            lease_seconds=30,
        )
        upgrade(self.settings.database_url)
        self.models = ModelCache(4)
        self.store = ArtifactStore(self.settings.artifact_url)

    def create(self, kind: str, spec) -> str:
        with session_scope(self.settings.database_url) as s:
            return store_jobs.create_job(s, kind=kind, spec=spec.model_dump(mode="json")).id

    def execute(self, job_id: str) -> str:
        return execute_job(job_id, settings=self.settings, worker="test-worker", models=self.models)

    def job(self, job_id: str) -> dict:
        with session_scope(self.settings.database_url) as s:
            job = store_jobs.get_job(s, job_id=job_id)
            metrics = store_jobs.get_metrics(s, job_id=job_id)
            artifacts = s.query(Artifact).filter(Artifact.job_id == job_id).all()
            return {
                "status": job.status,
                "result": job.result,
                "error": job.error,
                "error_type": job.error_type,
                "progress": job.progress,
                "metrics": [(m.step, m.name) for m in metrics],
                "artifacts": {a.uri.rsplit("/", 1)[-1]: a.uri for a in artifacts},
            }

    def run(self, kind: str, spec) -> dict:
        job_id = self.create(kind, spec)
        status = self.execute(job_id)
        job = self.job(job_id)
        assert status == job["status"]
        return job


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    return Lab(tmp_path_factory.mktemp("jobs"))


@pytest.fixture(scope="module")
def classifier(lab):
    spec = train_preset("smoke").model_copy(update={"epochs": 2, "eval_subset": 64})
    job = lab.run("adversarial_training", spec)
    assert job["status"] == "succeeded", job["error"]
    return job


@pytest.fixture(scope="module")
def diffusion(lab, classifier):  # after the classifier: its quality check uses it
    job = lab.run("ddpm_training", ddpm_preset("smoke").model_copy(update={"epochs": 1}))
    assert job["status"] == "succeeded", job["error"]
    return job


def test_training_with_best_selection_registers_the_best_epochs_weights_and_says_which(lab):
    recipe = RecipeSpec(crop_pad=1, ema_decay=0.5, holdout=200, select="best")
    spec = train_preset("smoke").model_copy(update={"epochs": 2, "eval_subset": 64, "recipe": recipe})
    job = lab.run("adversarial_training", spec)
    assert job["status"] == "succeeded", job["error"]
    chosen = job["result"]["chosen"]
    history = job["result"]["final"]
    assert chosen["weights"] == "best" and chosen["averaged"] and chosen["epoch"] in (1, 2)
    with session_scope(lab.settings.database_url) as s:
        model = get_model(s, model_id=job["result"]["model_id"])
        uri, summary, registered_recipe = model.checkpoint_uri, model.summary, model.recipe
    assert registered_recipe["chosen"] == chosen and summary["chosen"] == chosen
    assert "200 training images held out" in summary["monitor"]
    robust = [row["robust_acc"] for row in summary["history"]]
    assert chosen["held_out"]["robust_acc"] == max(robust) and history == summary["history"][-1]
    weights = load(lab.store.get_bytes(job["artifacts"]["model.safetensors"]))
    sets = load(lab.store.get_bytes(f"{uri}/train_state.safetensors"))
    assert all(torch.equal(weights[k], sets[f"best/{k}"]) for k in weights)


def test_adversarial_training_registers_its_model_with_metrics_and_the_checkpoint(lab, classifier):
    result = classifier["result"]
    assert classifier["progress"] == 1.0 and 0 <= result["robust_acc"] <= result["clean_acc"] <= 1
    assert {(1, "robust_acc"), (2, "robust_acc"), (2, "train_loss")} <= set(classifier["metrics"])
    assert "model.safetensors" in classifier["artifacts"]
    with session_scope(lab.settings.database_url) as s:
        model = get_model(s, model_id=result["model_id"])
        assert model.kind == "classifier" and model.summary["sanity"]["eps0_equals_clean"]
        uri = model.checkpoint_uri
    assert lab.store.get_bytes(f"{uri}/checkpoint.json")


def test_attack_evaluation_of_the_registered_model(lab, classifier):
    base = eval_preset("smoke")
    spec = base.model_copy(
        update={
            "model_id": classifier["result"]["model_id"],
            "eps_grid": [0.0, 0.1],
            "data": base.data.model_copy(update={"test_subset": 64}),
            "min_norm": MinNormSpec(steps=20),
        }
    )
    job = lab.run("attack_evaluation", spec)
    assert job["status"] == "succeeded", job["error"]
    curve = job["result"]["curve"]
    assert [p["eps"] for p in curve] == [0.0, 0.1] and curve[1]["robust_acc"] <= curve[0]["robust_acc"]
    min_norm = job["result"]["min_norm"]  # FMN's curve at the same radii, compared with the ensemble's
    assert [p["eps"] for p in min_norm["curve"]] == [0.0, 0.1] and [g["eps"] for g in min_norm["gaps"]] == [0.1]
    assert "evaluation.json" in job["artifacts"]


def test_a_store_blip_while_recording_an_evaluation_does_not_cost_the_evaluation_again(lab, classifier, monkeypatch):
    from sqlalchemy.exc import OperationalError

    from core.jobs import classifier_runners
    from core.jobs.running import make_context

    base = eval_preset("smoke")
    spec = base.model_copy(
        update={"model_id": classifier["result"]["model_id"], "data": base.data.model_copy(update={"test_subset": 32})}
    )
    evaluations, record, attempts = [], classifier_runners.record_evaluation, []

    def counted(*args, **kwargs):
        evaluations.append(1)
        return evaluate(*args, **kwargs)

    def away_once(session, **kwargs):
        attempts.append(1)
        if len(attempts) == 1:
            raise OperationalError("UPDATE models", {}, Exception("the server closed the connection"))
        return record(session, **kwargs)

    evaluate = classifier_runners.evaluate
    monkeypatch.setattr(classifier_runners, "evaluate", counted)
    monkeypatch.setattr(classifier_runners, "record_evaluation", away_once)
    monkeypatch.setattr("core.jobs.outage.time.sleep", lambda s: None)
    job_id = lab.create("attack_evaluation", spec)
    # claimed, as a worker would, and finished after: a job left queued takes the next fair turn
    with session_scope(lab.settings.database_url) as s:
        store_jobs.claim_job(s, job_id=job_id, worker="test", lease_seconds=60)
    try:
        result = classifier_runners.run_attack_evaluation(spec, make_context(job_id, None, lab.settings, lab.models))
    finally:
        with session_scope(lab.settings.database_url) as s:
            store_jobs.finish_job(s, job_id=job_id, status="succeeded", result={})
    assert result.recorded_on_model and len(attempts) == 2 and len(evaluations) == 1


def test_certification_of_the_registered_model_is_listed_on_it(lab, classifier):
    model_id = classifier["result"]["model_id"]
    spec = certification_preset("smoke").model_copy(update={"model_id": model_id, "images": 8})
    job = lab.run("certification", spec)
    assert job["status"] == "succeeded", job["error"]
    result = job["result"]
    assert [p["radius"] for p in result["curve"]] == [0.0, 0.25, 0.5, 1.0] and "radii" not in result
    assert all(p["certified_acc"] <= 1 and p["empirical_acc"] is not None for p in result["curve"][1:])
    assert "certification.json" in job["artifacts"] and result["recorded_on_model"]
    with session_scope(lab.settings.database_url) as s:
        listed = get_model(s, model_id=model_id).summary["certifications"]
    assert len(listed) == 1 and listed[0]["sigma"] == 0.25 and listed[0]["curve"] == result["curve"]


def test_image_attack_of_a_test_image(lab, classifier):
    spec = ImageAttackSpec(model_id=classifier["result"]["model_id"], test_index=3)
    job = lab.run("image_attack", spec)
    assert job["status"] == "succeeded", job["error"]
    result = job["result"]
    assert result["linf"] <= spec.attack.eps + 1e-6 and len(result["clean"]["probabilities"]) == 10
    assert {"input.png", "adversarial.png", "perturbation.png"} <= set(job["artifacts"])


def test_ddpm_training_registers_a_diffusion_model_with_its_quality(lab, diffusion):
    result = diffusion["result"]
    assert result["quality"] is not None and result["quality"]["frechet_distance"] >= 0
    with session_scope(lab.settings.database_url) as s:
        assert get_model(s, model_id=result["model_id"]).kind == "diffusion"


def test_ddpm_sampling_and_the_forward_explorer(lab, diffusion):
    model_id = diffusion["result"]["model_id"]
    job = lab.run(
        "ddpm_sampling", DDPMSampleSpec(model_id=model_id, n=4, steps=5, trajectory=True, trajectory_frames=3)
    )
    assert job["status"] == "succeeded", job["error"]
    assert len(job["result"]["sample_artifact_ids"]) == 4 and len(job["result"]["trajectory_artifact_ids"]) == 3
    job = lab.run("ddpm_forward", DDPMForwardSpec(model_id=model_id, timesteps=[0, 999]))
    assert job["status"] == "succeeded", job["error"]
    alpha_bars = job["result"]["alpha_bars"]
    assert alpha_bars[0] > 0.99 > 0.01 > alpha_bars[1]


def test_a_generated_dataset_is_registered_and_mixed_into_training(lab, classifier, diffusion):
    conditional = lab.run(
        "ddpm_training", ddpm_preset("smoke").model_copy(update={"epochs": 1, "class_conditional": True})
    )
    assert conditional["status"] == "succeeded", conditional["error"]
    filter_ = SampleFilterSpec(classifier_id=classifier["result"]["model_id"], mode="relabel")
    spec = DatasetGenerationSpec(
        model_id=conditional["result"]["model_id"], per_class=3, steps=3, shard_size=10, filter=filter_
    )
    job = lab.run("dataset_generation", spec)
    assert job["status"] == "succeeded", job["error"]
    result = job["result"]
    assert result["shards"] == 3 and result["shards_resumed"] == 0 and result["test"] == 297
    assert result["train"] == sum(result["provenance"]["kept_per_class"]) <= 30
    assert {"shard_00000.safetensors", "test.safetensors", "dataset.json", "samples.png"} <= set(job["artifacts"])
    mixed = train_preset("smoke").model_copy(
        update={
            "epochs": 1,
            "eval_subset": 32,
            "generated": GeneratedMixSpec(data=DataSpec(name="uploaded", dataset_id=result["dataset_id"])),
        }
    )
    trained = lab.run("adversarial_training", mixed)
    assert trained["status"] == "succeeded", trained["error"]
    unconditional = spec.model_copy(update={"model_id": diffusion["result"]["model_id"], "filter": None})
    failed = lab.run("dataset_generation", unconditional)
    assert failed["status"] == "failed" and "not class-conditional" in failed["error"]


def test_a_defended_model_is_registered_and_evaluated_three_ways(lab, classifier, diffusion):
    spec = DefendedModelSpec(
        classifier_id=classifier["result"]["model_id"],
        diffusion_id=diffusion["result"]["model_id"],
        purifier=PurifierSpec(t_star=20, steps=2),
    )
    job = lab.run("defended_model", spec)
    assert job["status"] == "succeeded", job["error"]
    defended = job["result"]["model_id"]
    protocol = ProtocolSpec(ensemble="rand", images=16, steps=2, eot=2)
    spec = eval_preset("smoke").model_copy(update={"model_id": defended, "protocol": protocol})
    evaluation = lab.run("attack_evaluation", spec)
    assert evaluation["status"] == "succeeded", evaluation["error"]
    no_fmn = lab.run("attack_evaluation", spec.model_copy(update={"min_norm": MinNormSpec(steps=5)}))
    assert no_fmn["status"] == "failed" and "deterministic" in no_fmn["error"] and no_fmn["error_type"] == "ValueError"
    ways = evaluation["result"]["defense"]
    assert evaluation["result"]["robust_acc"] == min(
        ways[w]["robust_acc"] for w in ("non_adaptive", "bpda", "adaptive")
    )
    with session_scope(lab.settings.database_url) as s:
        row = get_model(s, model_id=defended)
        assert row.kind == "classifier" and row.architecture == "purified"
        assert row.summary["evaluations"][-1]["robust_acc_by"] == evaluation["result"]["robust_acc_by"]


def _upload(lab: Lab, data: bytes) -> str:
    with session_scope(lab.settings.database_url) as s:
        return record_artifact(
            s, lab.store, key=f"uploads/test/{time.time_ns()}.safetensors", data=data, type="upload"
        ).id


def _trained_weights(lab: Lab, classifier: dict) -> tuple[dict, ModelSpec]:
    with session_scope(lab.settings.database_url) as s:
        uri = get_model(s, model_id=classifier["result"]["model_id"]).checkpoint_uri
    model = ModelSpec.model_validate(json.loads(lab.store.get_bytes(f"{uri}/checkpoint.json"))["spec"]["model"])
    return load(lab.store.get_bytes(f"{uri}/model.safetensors")), model


def test_an_uploaded_classifier_is_checked_registered_and_evaluable(lab, classifier):
    weights, model = _trained_weights(lab, classifier)
    upload = _upload(lab, save(weights))
    job = lab.run(
        "model_upload",
        ModelUploadSpec(weights_artifact_id=upload, model=model, data=DataSpec(name="digits"), name="mine"),
    )
    assert job["status"] == "succeeded", job["error"]
    assert job["result"]["clean_acc"] == pytest.approx(classifier["result"]["clean_acc"], abs=0.1)
    with session_scope(lab.settings.database_url) as s:
        registered = get_model(s, model_id=job["result"]["model_id"])
        assert registered.name == "mine" and registered.summary["clean_images"] == 297
        assert s.get(Artifact, upload) is None  # the upload is gone: the weights live in the checkpoint
    evaluation = eval_preset("smoke").model_copy(update={"model_id": job["result"]["model_id"]})
    assert lab.run("attack_evaluation", evaluation)["status"] == "succeeded"
    with session_scope(lab.settings.database_url) as s:
        assert len(get_model(s, model_id=job["result"]["model_id"]).summary["evaluations"]) == 1


def test_a_store_outage_while_checking_an_upload_keeps_it_for_the_next_attempt(lab, classifier, monkeypatch):
    """The database away for a moment while the upload is checked is not the upload's fault: the
    runner runs again and registers it (before, the first attempt deleted the upload and the second
    failed: no such upload)."""
    from sqlalchemy.exc import OperationalError

    from core.jobs.context import JobContext

    weights, model = _trained_weights(lab, classifier)
    upload = _upload(lab, save(weights))
    load_data, calls = JobContext.load_data, []

    def away_once(self, spec):
        calls.append(spec)
        if len(calls) == 1:
            raise OperationalError("SELECT 1", {}, Exception("the server closed the connection"))
        return load_data(self, spec)

    monkeypatch.setattr(JobContext, "load_data", away_once)
    job = lab.run(
        "model_upload", ModelUploadSpec(weights_artifact_id=upload, model=model, data=DataSpec(name="digits"))
    )
    assert job["status"] == "succeeded" and len(calls) == 2, job["error"]


@pytest.mark.parametrize(
    "spoil, message",
    [
        (lambda w: {k: v for k, v in w.items() if not k.endswith("bias")}, "missing"),
        (lambda w: {**w, "extra.weight": torch.zeros(3)}, "unexpected extra.weight"),
        (lambda w: {k: (v[:1] if k.endswith("bias") else v) for k, v in w.items()}, "wrong shape"),
        (lambda w: {k: v.clone().fill_(float("nan")) if i == 0 else v for i, (k, v) in enumerate(w.items())}, "NaN"),
    ],
    ids=["missing", "unexpected", "shape", "nan"],
)
def test_a_bad_upload_fails_naming_the_problem_and_leaves_nothing(lab, classifier, spoil, message):
    weights, model = _trained_weights(lab, classifier)
    upload = _upload(lab, save(spoil(weights)))
    with session_scope(lab.settings.database_url) as s:
        before = s.query(RegisteredModel).count()
    job = lab.run(
        "model_upload", ModelUploadSpec(weights_artifact_id=upload, model=model, data=DataSpec(name="digits"))
    )
    assert job["status"] == "failed" and message in job["error"]
    with session_scope(lab.settings.database_url) as s:
        assert s.query(RegisteredModel).count() == before and s.get(Artifact, upload) is None


def test_an_upload_for_the_wrong_dataset_is_refused(lab, classifier):
    weights, model = _trained_weights(lab, classifier)
    upload = _upload(lab, save(weights))
    job = lab.run(
        "model_upload", ModelUploadSpec(weights_artifact_id=upload, model=model, data=DataSpec(name="fashion-mnist"))
    )
    assert job["status"] == "failed" and "model.image_size is 8 but dataset 'fashion-mnist' has 28" in job["error"]
    assert lab.run(
        "model_upload",
        ModelUploadSpec(
            weights_artifact_id=_upload(lab, b"not safetensors"), model=model, data=DataSpec(name="digits")
        ),
    )["error"].startswith("ValueError: weights: not a valid")


def test_an_uploaded_dataset_is_registered_and_trains_like_any_other(lab):
    from tests.api.test_datasets import class_folders_zip, png

    entries = {
        f"{c}/{i}.png": png(30 * i + (100 if c == "bright" else 0)) for c in ("dark", "bright") for i in range(5)
    }
    upload = _upload(lab, class_folders_zip(entries))
    job = lab.run("dataset_upload", DatasetUploadSpec(archive_artifact_id=upload, name="shades"))
    assert job["status"] == "succeeded", job["error"]
    result = job["result"]
    assert result["classes"] == ["bright", "dark"] and (result["train"], result["test"]) == (8, 2)
    with session_scope(lab.settings.database_url) as s:
        assert s.get(Artifact, upload) is None  # the archive is gone: the arrays are the dataset
    data = DataSpec(name="uploaded", dataset_id=result["dataset_id"])
    spec = train_preset("smoke").model_copy(
        update={
            "data": data,
            "epochs": 1,
            "eval_subset": 2,
            "model": train_preset("smoke").model.model_copy(update={"num_classes": 2}),
        }
    )
    spec = spec.model_copy(update={"protocol": ProtocolSpec(ensemble="pgd", images=2)})  # DLR needs 4 classes
    trained = lab.run("adversarial_training", spec)
    assert trained["status"] == "succeeded", trained["error"]
    with session_scope(lab.settings.database_url) as s:
        assert get_model(s, model_id=trained["result"]["model_id"]).dataset == f"uploaded:{result['dataset_id']}"


def test_a_hostile_archive_fails_the_job_and_leaves_nothing(lab):
    from tests.api.test_datasets import HOSTILE

    upload = _upload(lab, HOSTILE["fake image"][0])
    job = lab.run("dataset_upload", DatasetUploadSpec(archive_artifact_id=upload, name="bad"))
    assert job["status"] == "failed" and "not a readable image" in job["error"]
    with session_scope(lab.settings.database_url) as s:
        assert s.get(Artifact, upload) is None


def test_these_tests_cover_every_job_kind():
    covered = {
        "dataset_upload",
        "model_upload",
        "adversarial_training",
        "attack_evaluation",
        "certification",
        "image_attack",
        "ddpm_training",
        "ddpm_sampling",
        "ddpm_forward",
        "dataset_generation",
        "defended_model",
    }
    assert covered == set(JOB_KINDS), "a new job kind needs its in-process test here"


def test_a_stop_request_cancels_a_running_job_and_keeps_its_checkpoint(lab):
    spec = train_preset("smoke").model_copy(update={"epochs": 50, "eval_subset": 32, "seed": 7})
    job_id = lab.create("adversarial_training", spec)
    outcome = {}
    worker = threading.Thread(target=lambda: outcome.setdefault("status", lab.execute(job_id)))
    worker.start()
    deadline = time.monotonic() + 120
    while not lab.job(job_id)["metrics"] and time.monotonic() < deadline:  # until the first epoch ended
        time.sleep(0.1)
    with session_scope(lab.settings.database_url) as s:
        store_jobs.request_cancel(s, job_id=job_id)
    worker.join(timeout=60)
    assert not worker.is_alive() and outcome["status"] == "cancelled"
    job = lab.job(job_id)
    assert job["status"] == "cancelled" and job["result"] is None and job["error"] is None
    assert lab.store.get_bytes(f"jobs/{job_id}/checkpoint/checkpoint.json"), "the last epoch's checkpoint stays"


def test_an_interactive_job_past_its_time_limit_fails_naming_it(lab, classifier, monkeypatch):
    """The interactive kinds run in the worker's process, where no supervisor can kill them: the
    kind's limit stops them from within (the attack's forward passes check it)."""
    limits = {"job_time_limits": {"image_attack": 0.0, "model_upload": 0.0}}
    monkeypatch.setattr(lab, "settings", lab.settings.model_copy(update=limits))
    job = lab.run("image_attack", ImageAttackSpec(model_id=classifier["result"]["model_id"], test_index=0))
    assert job["status"] == "failed" and "timed out after 0 s (the limit for image_attack)" in job["error"]
    assert "adversarial.png" not in job["artifacts"]
    weights, model = _trained_weights(lab, classifier)
    upload = _upload(lab, save(weights))
    with session_scope(lab.settings.database_url) as s:
        before = s.query(RegisteredModel).count()
    job = lab.run(
        "model_upload", ModelUploadSpec(weights_artifact_id=upload, model=model, data=DataSpec(name="digits"))
    )
    assert job["status"] == "failed" and "the limit for model_upload" in job["error"]
    with session_scope(lab.settings.database_url) as s:  # not the upload's fault: it stays for the job's deletion
        assert s.get(Artifact, upload) is not None and s.query(RegisteredModel).count() == before


def test_a_failing_job_is_failed_with_the_reason_and_the_worker_goes_on(lab, classifier):
    spec = ImageAttackSpec(model_id=classifier["result"]["model_id"], test_index=0, label=57)
    job = lab.run("image_attack", spec)
    assert job["status"] == "failed" and "label 57 out of range" in job["error"]
    job = lab.run("image_attack", ImageAttackSpec(model_id="no-such-model", test_index=0))
    assert job["status"] == "failed" and "no classifier with id no-such-model" in job["error"]
    assert (
        lab.run("image_attack", ImageAttackSpec(model_id=classifier["result"]["model_id"], test_index=1))["status"]
        == "succeeded"
    )


def test_a_job_is_not_run_twice(lab, classifier):
    job_id = lab.create("image_attack", ImageAttackSpec(model_id=classifier["result"]["model_id"], test_index=2))
    assert lab.execute(job_id) == "succeeded"
    assert lab.execute(job_id) == "succeeded"  # a second delivery finds it finished and leaves it
    assert lab.job(job_id)["progress"] == 1.0
