"""`gpus` jobs against the real stack, on the CPU with gloo: a train worker announcing two devices
runs a two-process job to its registered model; a job asking for more devices than any worker has
waits with a message that says why; a SIGKILL of one rank ends that attempt (no hung job) and the
job resumes from rank 0's checkpoint; an error of rank 1 alone fails the job with that error."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from core.contract.attack_specs import ProtocolSpec
from core.contract.presets import train_preset
from tests.integration.conftest import running_stack, wait_job

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def faults(tmp_path_factory):
    return tmp_path_factory.mktemp("faults")


@pytest.fixture(scope="module")
def stack(tmp_path_factory, faults):
    extra = {
        "ROBUSTLAB_DEVICES": "2",
        "ROBUSTLAB_LEASE_SECONDS": "5",
        "OMP_NUM_THREADS": "1",
        "ROBUSTLAB_FAULT_DIR": str(faults),
    }
    with running_stack(tmp_path_factory.mktemp("stack"), extra_env=extra) as s:
        yield s


def two_process_spec(**update) -> dict:
    quick = {"protocol": ProtocolSpec(ensemble="pgd", images=50), "eval_subset": 50, "gpus": 2, **update}
    return train_preset("smoke").model_copy(update=quick).model_dump(mode="json")


def submit(client, kind: str, spec: dict) -> str:
    r = client.post("/v1/jobs", json={"kind": kind, "spec": spec})
    assert r.status_code == 202, r.text
    return r.json()["id"]


def rank_pids(job_id: str) -> dict[int, int]:
    """{rank: pid} of the job's child processes under torchrun."""
    found = subprocess.run(["pgrep", "-f", f"core.jobs.child {job_id}"], capture_output=True, text=True).stdout
    ranks = {}
    for pid in map(int, found.split()):
        try:
            env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        rank = next((int(v[5:]) for v in env if v.startswith(b"RANK=")), None)
        if rank is not None:
            ranks[rank] = pid
    return ranks


def test_a_two_process_job_trains_and_registers_its_model(client):
    job = wait_job(client, submit(client, "adversarial_training", two_process_spec()))
    assert job["status"] == "succeeded", job["error"]
    model = client.get(f"/v1/models/{job['result']['model_id']}").json()
    assert len(model["summary"]["history"]) == 3  # every epoch reported once, by rank 0
    metrics = client.get(f"/v1/jobs/{job['id']}/metrics").json()
    assert sorted({m["step"] for m in metrics}) == [1, 2, 3]


def test_a_job_asking_for_more_devices_than_any_worker_waits_and_says_why(client):
    workers = client.get("/healthz").json()["workers"]
    assert [w["devices"] for w in workers.values() if "train" in w["queues"]] == [2]  # what the worker announces
    job_id = submit(client, "adversarial_training", two_process_spec(gpus=4))
    time.sleep(3)
    job = client.get(f"/v1/jobs/{job_id}").json()
    assert job["status"] == "queued"
    assert "waiting for a train worker with 4 devices" in job["message"] and "has 2" in job["message"]
    client.post(f"/v1/jobs/{job_id}/cancel")


def test_a_killed_rank_ends_the_attempt_and_the_job_resumes(client):
    job_id = submit(client, "adversarial_training", two_process_spec(epochs=6))
    deadline = time.monotonic() + 240
    while not client.get(f"/v1/jobs/{job_id}/metrics").json():  # an epoch checkpointed
        assert time.monotonic() < deadline
        time.sleep(0.3)
    ranks = rank_pids(job_id)
    assert set(ranks) == {0, 1}
    os.kill(ranks[1], signal.SIGKILL)
    job = wait_job(client, job_id)
    assert job["status"] == "succeeded", job["error"]
    first = job["attempt_log"][0]
    assert first["exit_code"] not in (0, None) or first["signal"], first  # the attempt ended abnormally
    assert job["attempts"] == 2
    history = client.get(f"/v1/models/{job['result']['model_id']}").json()["summary"]["history"]
    assert [h["epoch"] for h in history] == list(range(1, 7))


def test_a_cancel_stops_every_rank(client):
    job_id = submit(client, "adversarial_training", two_process_spec(epochs=50))
    deadline = time.monotonic() + 240
    while set(rank_pids(job_id)) != {0, 1}:
        assert time.monotonic() < deadline
        time.sleep(0.3)
    client.post(f"/v1/jobs/{job_id}/cancel")
    job = wait_job(client, job_id)
    assert job["status"] == "cancelled"
    deadline = time.monotonic() + 30
    while rank_pids(job_id):  # no rank left behind in an all-reduce
        assert time.monotonic() < deadline, rank_pids(job_id)
        time.sleep(0.3)


def test_an_error_every_rank_meets_fails_the_job_with_that_error(client):
    spec = two_process_spec()
    spec["model"]["image_size"] = 16  # digits are 8×8: every rank refuses the spec
    job = wait_job(client, submit(client, "adversarial_training", spec))
    assert job["status"] == "failed" and "model expects" in job["error"], job["error"]
    assert job["attempts"] == 1  # failed once, with its reason, not retried as a crash


def test_an_error_of_a_follower_rank_alone_fails_the_job_with_that_error(client, faults):
    job_id = submit(client, "adversarial_training", two_process_spec())
    (faults / job_id).write_text("error@follower")  # read when rank 1 starts training, seconds from now
    job = wait_job(client, job_id)
    assert job["status"] == "failed", job
    assert job["error"].startswith("rank 1: RuntimeError: injected error at follower"), job["error"]
    assert job["attempts"] == 1  # not retried as a crash: it would meet the same error
