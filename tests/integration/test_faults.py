"""Jobs that take their process down, jobs too big for any worker, and Redis or the database away
for 30 s in the middle of a training, against the real stack: Celery workers supervising their
jobs' child processes, embedded Redis, and PostgreSQL behind a proxy the test can cut (SQLite when
no PostgreSQL is reachable; the database outage is then skipped)."""

from __future__ import annotations

import time

import pytest

from core.contract.field_presets import FIELD_PRESETS
from core.contract.presets import ddpm_presets, train_preset, training_presets
from tests.dbs import fresh_postgres_url, postgres_reachable
from tests.integration.conftest import HANG_SECONDS, running_stack, wait_job
from tests.tcp_proxy import TcpProxy

pytestmark = pytest.mark.integration
OUTAGE_SECONDS = 30


@pytest.fixture(scope="module")
def proxy():
    """PostgreSQL behind a proxy (None when no PostgreSQL is reachable)."""
    if not postgres_reachable():
        yield None
        return
    url, drop = fresh_postgres_url()
    host_port, _, name = url.rpartition("@")[2].partition("/")
    host, port = host_port.split(":")
    p = TcpProxy((host, int(port))).start()
    p.url = url.replace(host_port, f"127.0.0.1:{p.port}")
    yield p
    p.cut()
    drop()


@pytest.fixture(scope="module")
def faults(tmp_path_factory):
    return tmp_path_factory.mktemp("faults")


@pytest.fixture(scope="module")
def stack(tmp_path_factory, faults, proxy):  # this module's stack; conftest's `client` talks to it
    env = {
        "ROBUSTLAB_FAULT_DIR": str(faults),
        "ROBUSTLAB_MAX_ATTEMPTS": "2",
        "ROBUSTLAB_LEASE_SECONDS": "60",  # longer than the outages
        "ROBUSTLAB_MAX_EPOCHS": "500",
        "ROBUSTLAB_MAX_QUEUED_JOBS_PER_USER": "20",
    }
    if proxy is not None:
        env["DATABASE_URL"] = proxy.url
    with running_stack(tmp_path_factory.mktemp("stack"), extra_env=env) as s:
        yield s


def submit(client, epochs: int, seed: int = 0) -> str:
    spec = train_preset("smoke", seed=seed).model_copy(update={"epochs": epochs}).model_dump(mode="json")
    r = client.post("/v1/jobs", json={"kind": "adversarial_training", "spec": spec})
    assert r.status_code == 202, r.text
    return r.json()["id"]


def steps(client, job_id: str) -> list[int]:
    """The epochs whose train_loss the store holds, in order."""
    return sorted(m["step"] for m in client.get(f"/v1/jobs/{job_id}/metrics").json() if m["name"] == "train_loss")


def wait_for_epoch(client, job_id: str, epoch: int, timeout: float = HANG_SECONDS) -> None:
    deadline = time.monotonic() + timeout
    while not any(s >= epoch for s in steps(client, job_id)):
        assert time.monotonic() < deadline, f"job {job_id} did not reach epoch {epoch}"
        assert client.get(f"/v1/jobs/{job_id}").json()["status"] in ("queued", "running")
        time.sleep(0.2)


def test_a_job_that_kills_its_process_every_time_is_failed_at_the_cap_and_the_worker_lives_on(stack, client, faults):
    worker = stack.procs["worker-train0"]
    job_id = submit(client, epochs=2)
    (faults / job_id).write_text("sigkill@finish")  # after its model is registered, before its end is written
    job = wait_job(client, job_id)
    assert job["status"] == "failed"
    assert job["error"].startswith("gave up after 2 abnormal ends"), job["error"]
    assert [a["signal"] for a in job["attempt_log"]] == ["SIGKILL", "SIGKILL"]
    assert all("peak memory" in a["cause"] for a in job["attempt_log"])
    models = [m for m in client.get("/v1/models", params={"limit": 200}).json()["items"] if m["job_id"] == job_id]
    assert len(models) == 1  # both attempts registered it; once is what the registry holds
    assert worker.poll() is None  # the worker that ran both attempts is alive
    after = wait_job(client, submit(client, epochs=1))
    assert after["status"] == "succeeded", after["error"]


def test_a_segfault_once_then_the_retry_succeeds_from_the_checkpoint(stack, client, faults):
    job_id = submit(client, epochs=3, seed=1)
    (faults / job_id).write_text("segfault@epoch:1\nonce")
    job = wait_job(client, job_id)
    assert job["status"] == "succeeded", job["error"]
    assert job["attempts"] == 2
    assert job["attempt_log"][0]["signal"] == "SIGSEGV" and "a crash in native code" in job["attempt_log"][0]["cause"]
    assert steps(client, job_id) == [1, 2, 3]


def test_memory_admission_refuses_what_no_worker_holds_and_accepts_the_presets(client):
    huge = train_preset("gpu").model_dump(mode="json")
    huge["model"]["width"], huge["batch_size"] = 512, 8192
    r = client.post("/v1/jobs", json={"kind": "adversarial_training", "spec": huge})
    assert r.status_code == 422, r.text
    assert "GiB of memory" in r.text and "batch_size, model.width or model.arch" in r.text
    accepted = []
    for kind, presets in (("adversarial_training", training_presets()), ("ddpm_training", ddpm_presets())):
        for name, spec in presets.items():
            r = client.post("/v1/jobs", json={"kind": kind, "spec": spec.model_dump(mode="json")})
            if name in FIELD_PRESETS:  # for GPU nodes: refused here only for memory or a missing data folder
                assert r.status_code == 202 or ("GiB of memory" in r.text or "data root" in r.text), (name, r.text)
            else:
                assert r.status_code == 202, (kind, name, r.text)
            if r.status_code == 202:
                accepted.append(r.json()["id"])
    for job_id in accepted:  # admitted is what this test is about: none of them needs to run
        client.post(f"/v1/jobs/{job_id}/cancel")
    for job_id in accepted:
        assert wait_job(client, job_id)["status"] in ("cancelled", "succeeded")


def stop_and_check(client, job_id: str, after: int) -> None:
    """Once the job has trained past epoch `after`, cancel it: it ran once, and the store holds
    every epoch's metrics up to where it stopped, each once."""
    wait_for_epoch(client, job_id, after)
    client.post(f"/v1/jobs/{job_id}/cancel")
    job = wait_job(client, job_id)
    assert job["status"] == "cancelled", job["error"]
    assert job["attempts"] == 1  # never handed to a second worker
    written = steps(client, job_id)
    assert written == list(range(1, len(written) + 1)), written


def test_redis_away_for_30_s_mid_training(stack, client):
    job_id = submit(client, epochs=500, seed=2)
    wait_for_epoch(client, job_id, 2)
    stack.kill("redis")
    before = max(steps(client, job_id))
    time.sleep(OUTAGE_SECONDS)
    during = max(steps(client, job_id)) - before  # the API and the job need no Redis to go on
    stack.start_redis()
    assert during >= 1, "no epoch was written while Redis was away"
    stop_and_check(client, job_id, after=before + during + 3)


def test_the_database_away_for_30_s_mid_training(stack, client, proxy):
    if proxy is None:
        pytest.skip("needs PostgreSQL (SQLite cannot be taken away from a running stack)")
    job_id = submit(client, epochs=500, seed=3)
    wait_for_epoch(client, job_id, 2)
    before = max(steps(client, job_id))
    proxy.cut()
    time.sleep(OUTAGE_SECONDS)
    proxy.restore()
    time.sleep(3)  # the job's next progress report writes what it trained meanwhile
    assert max(steps(client, job_id)) > before, "no epoch trained while the database was away was written"
    stop_and_check(client, job_id, after=max(steps(client, job_id)) + 3)
