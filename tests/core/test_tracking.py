"""Experiment tracking against a real MLflow server started here: a training job logs its spec,
its metrics per epoch, its result and checkpoint, in the experiment of its kind with a link back
to the job; with the server away the job succeeds all the same."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

import core.jobs.tracking as tracking
from core.contract.presets import train_preset
from core.jobs.tracking import Tracker, flatten
from tests.core.test_jobs import Lab

pytest.importorskip("mlflow")


@pytest.fixture(autouse=True)
def no_server_marked_away(monkeypatch):
    monkeypatch.setattr(tracking, "_away_until", {})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def mlflow_url(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mlflow")
    port = free_port()
    cmd = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port)]
    cmd += ["--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}", "--artifacts-destination", str(folder / "art")]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=(folder / "server.log").open("w"))
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while True:
        try:
            if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        assert proc.poll() is None, (folder / "server.log").read_text()[-2000:]
        assert time.monotonic() < deadline, "the MLflow server did not start"
        time.sleep(0.5)
    yield url
    proc.terminate()
    proc.wait(30)


def smoke_training():
    return train_preset("smoke").model_copy(update={"epochs": 2, "eval_subset": 64})


def test_flatten_names_nested_fields_by_path():
    assert flatten({"model": {"width": 16, "activation": {"name": "silu"}}, "seed": 0, "grid": [0.1]}) == {
        "model.width": "16",
        "model.activation.name": "silu",
        "seed": "0",
        "grid": "[0.1]",
    }


def test_a_job_logs_its_spec_metrics_result_and_checkpoint(tmp_path, mlflow_url):
    from mlflow.tracking import MlflowClient

    lab = Lab(tmp_path)
    lab.settings = lab.settings.model_copy(update={"mlflow_tracking_uri": mlflow_url})
    job_id = lab.create("adversarial_training", smoke_training())
    assert lab.execute(job_id) == "succeeded"

    client = MlflowClient(tracking_uri=mlflow_url)
    experiment = client.get_experiment_by_name("robustlab/adversarial_training")
    (run,) = client.search_runs([experiment.experiment_id], filter_string=f"tags.`robustlab.job_id` = '{job_id}'")
    assert run.info.status == "FINISHED" and run.info.run_name == job_id
    assert run.data.tags["robustlab.job_url"].endswith(f"/v1/jobs/{job_id}")
    assert run.data.params["method"] == "pgd" and run.data.params["model.arch"] == "small_cnn"
    assert [m.step for m in client.get_metric_history(run.info.run_id, "train_loss")] == [1, 2]
    assert {"robust_acc", "clean_acc"} <= set(run.data.metrics)
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert "result.json" in artifacts and "checkpoint" in artifacts
    saved = {a.path for a in client.list_artifacts(run.info.run_id, "checkpoint")}
    assert "checkpoint/model.safetensors" in saved
    result = client.download_artifacts(run.info.run_id, "result.json", str(tmp_path))
    assert lab.job(job_id)["result"]["model_id"] in Path(result).read_text()


def test_a_job_succeeds_when_the_tracking_server_is_away(tmp_path):
    lab = Lab(tmp_path)
    lab.settings = lab.settings.model_copy(update={"mlflow_tracking_uri": f"http://127.0.0.1:{free_port()}"})
    job = lab.run("adversarial_training", smoke_training())
    assert job["status"] == "succeeded", job["error"]


@pytest.mark.parametrize("uri", ["http://127.0.0.1:9", "foo://not-a-tracking-store"])
def test_a_tracker_that_cannot_reach_its_server_turns_itself_off_without_raising(tmp_path, uri):
    tracker = Tracker(uri, job_id="j1", kind="adversarial_training", study_id=None, job_url=None)
    tracker.log_spec({"seed": 0})
    tracker.log_metrics({"train_loss": 1.0}, 1)
    tracker.finish("succeeded", {"ok": True}, tmp_path)
    assert tracker.client is None


def test_a_server_that_hangs_is_not_waited_for_by_the_next_jobs_of_the_process(mlflow_url):
    with socket.socket() as hanging:  # accepts connections, never answers
        hanging.bind(("127.0.0.1", 0))
        hanging.listen()
        uri = f"http://127.0.0.1:{hanging.getsockname()[1]}"
        t0 = time.monotonic()
        Tracker(uri, job_id="j1", kind="image_attack", study_id=None, job_url=None)
        first = time.monotonic() - t0
        t0 = time.monotonic()
        later = Tracker(uri, job_id="j2", kind="image_attack", study_id=None, job_url=None)
        assert first > 1 and later.client is None and time.monotonic() - t0 < 0.5  # off for a minute
    other = Tracker(mlflow_url, job_id="j3", kind="image_attack", study_id=None, job_url=None)
    assert other.client is not None  # another server is tried as usual
