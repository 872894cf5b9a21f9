"""A real stack for the end-to-end tests: embedded Redis, real Celery worker processes, a real
uvicorn, SQLite in a temporary folder. Leases are short so that crash recovery is quick."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest

from scripts.stack import Stack, free_port

SERVICE_VARS = ("DATABASE_URL", "REDIS_URL", "ARTIFACT_URL", "ROBUSTLAB_WORK_DIR")


@contextmanager
def running_stack(folder, *, with_dashboard: bool = False, extra_env: dict | None = None) -> Iterator[Stack]:
    """A started stack with one train and one interactive worker, stopped on exit."""
    s = Stack(
        folder,
        api_port=free_port(),
        dashboard_port=free_port(),
        with_dashboard=with_dashboard,
        embedded_redis=True,
        extra_env={v: None for v in SERVICE_VARS} | (extra_env or {}),
    )
    try:
        s.start(train_workers=1)
        s.wait_for_workers(2)
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    extra = {
        "ROBUSTLAB_LEASE_SECONDS": "3",
        "ROBUSTLAB_MAX_EPOCHS": "500",
        "ROBUSTLAB_MAX_QUEUED_JOBS_PER_USER": "10",
        "ROBUSTLAB_INTERACTIVE_PER_MINUTE": "15",
    }
    with running_stack(tmp_path_factory.mktemp("stack"), extra_env=extra) as s:
        yield s


@pytest.fixture(scope="module")
def client(stack):
    with httpx.Client(base_url=stack.api_url, headers={"Authorization": f"Bearer {stack.key}"}, timeout=30) as c:
        yield c


# How long an event wait lasts before the test calls it a hang: a ceiling, never a measure of speed
# (the suite runs on machines three times slower than idle, its cores shared with other work).
HANG_SECONDS = 900


def wait_job(client, job_id: str, until=("succeeded", "failed", "cancelled"), timeout: float = HANG_SECONDS, seen=None):
    """Poll a job until its status is in `until`; `seen` collects (status, progress, n_metrics)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/v1/jobs/{job_id}").json()
        if seen is not None:
            seen.append((job["status"], job["progress"], len(client.get(f"/v1/jobs/{job_id}/metrics").json())))
        if job["status"] in until:
            return job
        time.sleep(0.2)
    raise TimeoutError(f"job {job_id} still {job['status']} after {timeout} s: {job}")


def answered(client, response) -> dict:
    """An interactive endpoint's job: its answer (200), or, when the job outlived the request's wait
    (202, a loaded machine), the job once it has finished."""
    assert response.status_code in (200, 202), response.text
    job = response.json()
    return job if response.status_code == 200 else wait_job(client, job["id"])  # GET gives the same URLs


def member(client, name: str) -> httpx.Client:
    """A client with a new member key of user `name`, made by the admin's client."""
    key = client.post("/v1/keys", json={"name": f"{name}-key", "user": name, "role": "member"}).json()["key"]
    return httpx.Client(base_url=str(client.base_url), headers={"Authorization": f"Bearer {key}"}, timeout=30)
