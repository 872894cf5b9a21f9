"""A worker that survives its job: faults injected into a job's child process (SIGKILL, a segfault,
memory past the budget, a crash between registering the model and finishing) against execute_job
on SQLite; the worker (this process) lives on, the job is retried up to the cap and then failed
with every attempt's cause; a run past its time limit is failed and keeps its checkpoint; a re-run
registers nothing twice."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from core.contract.presets import train_preset
from core.settings import Settings
from core.store import jobs as store_jobs
from core.store.db import session_scope
from core.store.orm import Artifact, RegisteredModel
from tests.core.test_jobs import Lab

ROOT = Path(__file__).resolve().parents[2]

QUICK = train_preset("smoke").model_copy(update={"epochs": 2, "eval_subset": 32})


@pytest.fixture
def lab(tmp_path):
    lab = Lab(tmp_path)
    lab.settings = Settings(**{**lab.settings.model_dump(), "fault_dir": tmp_path / "faults", "max_attempts": 2})
    (tmp_path / "faults").mkdir()
    return lab


def fault(lab, job_id: str, text: str) -> None:
    (lab.settings.fault_dir / job_id).write_text(text)


def attempts(lab, job_id: str) -> list[dict]:
    with session_scope(lab.settings.database_url) as s:
        return store_jobs.get_job(s, job_id=job_id).attempt_log or []


@pytest.mark.parametrize(
    "what, words",
    [("sigkill@start", "killed by SIGKILL"), ("segfault@start", "killed by SIGSEGV (a crash in native code)")],
)
def test_a_job_that_crashes_its_process_is_retried_to_the_cap_then_failed_with_each_cause(lab, what, words):
    job_id = lab.create("adversarial_training", QUICK)
    fault(lab, job_id, what)
    assert lab.execute(job_id) == "queued"  # the worker lives on; the job goes back to the queue
    assert lab.job(job_id)["status"] == "queued"
    assert lab.execute(job_id) == "failed"
    job = lab.job(job_id)
    assert job["status"] == "failed" and job["error"].startswith("gave up after 2 abnormal ends")
    assert job["error"].count(words) == 2
    log = attempts(lab, job_id)
    assert [e["attempt"] for e in log] == [1, 2] and all(e["peak_rss_mb"] > 50 for e in log)


def test_a_job_past_the_memory_budget_is_killed_and_the_cause_says_so(lab):
    lab.settings = lab.settings.model_copy(update={"memory_budget_bytes": 1_500_000_000, "max_attempts": 1})
    job_id = lab.create("adversarial_training", QUICK)
    fault(lab, job_id, "allocate:2000000000@start")
    assert lab.execute(job_id) == "failed"
    error = lab.job(job_id)["error"]
    assert "past the worker's memory budget of 1.40 GiB" in error and "gave up after 1 abnormal ends" in error


def test_a_crash_once_then_a_resume_from_the_checkpoint(lab):
    job_id = lab.create("adversarial_training", QUICK)
    fault(lab, job_id, "sigkill@epoch:1 once")
    assert lab.execute(job_id) == "queued"
    assert lab.execute(job_id) == "succeeded"
    log = attempts(lab, job_id)
    assert "killed by SIGKILL" in log[0]["cause"] and log[1]["cause"] == "finished"
    assert log[0]["last_message"] == "epoch 1/2 done"  # the second attempt resumed from that checkpoint


def test_a_crash_between_registering_and_finishing_registers_nothing_twice(lab):
    job_id = lab.create("adversarial_training", QUICK)
    fault(lab, job_id, "sigkill@finish once")
    assert lab.execute(job_id) == "queued"  # the model is registered, the job is not finished
    with session_scope(lab.settings.database_url) as s:
        assert s.query(RegisteredModel).filter(RegisteredModel.job_id == job_id).count() == 1
    assert lab.execute(job_id) == "succeeded"
    job = lab.job(job_id)
    with session_scope(lab.settings.database_url) as s:
        models = s.query(RegisteredModel).filter(RegisteredModel.job_id == job_id).all()
        uris = [a.uri for a in s.query(Artifact).filter(Artifact.job_id == job_id).all()]
        assert [m.id for m in models] == [job["result"]["model_id"]]
        assert len(uris) == len(set(uris)) and f"jobs/{job_id}/checkpoint/model.safetensors" in uris


def test_a_job_past_its_time_limit_is_failed_and_its_checkpoint_is_kept(lab):
    """The job hangs once its first checkpoint is out (an event). Its limit is twice what a whole
    one-epoch job took just before on this machine, loaded or not: it always gets there first."""
    started = time.monotonic()
    assert lab.execute(lab.create("adversarial_training", QUICK.model_copy(update={"epochs": 1}))) == "succeeded"
    limit = round(max(20.0, 2 * (time.monotonic() - started)))
    lab.settings = lab.settings.model_copy(update={"job_time_limits": {"adversarial_training": float(limit)}})
    job_id = lab.create("adversarial_training", QUICK.model_copy(update={"epochs": 500}))
    fault(lab, job_id, "hang@epoch:1")
    assert lab.execute(job_id) == "failed"
    job = lab.job(job_id)
    assert job["error"].startswith(f"timed out after {limit} s (the limit for adversarial_training)")
    assert {"model.safetensors", "checkpoint.json"} <= set(job["artifacts"])  # downloadable


def test_a_job_ended_elsewhere_while_its_child_runs_stops_the_child_and_keeps_that_end(lab):
    """The job's lease passed (the store away longer than it) and another worker gave the job up:
    the supervisor stops the child instead of leaving it to run on beside whatever runs next, and
    the child's final write does not overwrite that end."""
    job_id = lab.create("adversarial_training", QUICK.model_copy(update={"epochs": 500}))
    fault(lab, job_id, "hang@epoch:1")
    outcome = {}
    worker = threading.Thread(target=lambda: outcome.setdefault("status", lab.execute(job_id)))
    worker.start()
    while not lab.job(job_id)["metrics"] and worker.is_alive():  # the first epoch is in: the child hangs
        time.sleep(0.1)
    with session_scope(lab.settings.database_url) as s:
        s.execute(
            store_jobs.update(store_jobs.Job)
            .where(store_jobs.Job.id == job_id)
            .values(status="failed", error="given up by another worker", lease_owner="other")
        )
    worker.join()
    assert outcome["status"] == "failed" and lab.job(job_id)["error"] == "given up by another worker"
    left = subprocess.run(["pgrep", "-f", f"core.jobs.child {job_id}"], capture_output=True, text=True).stdout
    assert left == "", "the child was stopped"


def test_workers_that_died_without_a_word_count_as_attempts(lab):
    job_id = lab.create("adversarial_training", QUICK)
    for _ in range(2):  # two deliveries whose workers vanished: claimed, never heard of again
        with session_scope(lab.settings.database_url) as s:
            store_jobs.claim_job(s, job_id=job_id, worker="gone", lease_seconds=0)
            s.execute(store_jobs.update(store_jobs.Job).values(status="queued"))
    assert lab.execute(job_id) == "failed"
    assert lab.job(job_id)["error"].count("the worker died without recording a cause") == 2


def test_memory_counts_pages_shared_with_a_forked_reader_once_past_the_budget():
    import multiprocessing

    from core.jobs.supervise import memory_used

    block = bytearray(200 * 2**20)
    block[::4096] = b"\1" * len(block[::4096])  # touch every page: resident
    before = memory_used([os.getpid()], budget=0)
    fork = multiprocessing.get_context("fork")
    ready, done = fork.Event(), fork.Event()
    reader = fork.Process(target=lambda: (ready.set(), done.wait(30)))
    reader.start()
    try:
        assert ready.wait(30)
        both = memory_used([os.getpid(), reader.pid], budget=before)
        resident = memory_used([os.getpid(), reader.pid], budget=2**62)  # under the budget: resident sizes
    finally:
        done.set()
        reader.join(10)
    assert before >= 200 * 2**20
    assert both < 1.3 * before, (before, both)  # the shared pages once
    assert resident > 1.5 * before, (before, resident)  # the cheap sum counts them twice


def _state(pid: int) -> str | None:
    """The process' state letter (`Z` for a zombie), None once it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
    except FileNotFoundError:
        return None


def test_a_child_started_through_the_lifetime_guard_dies_with_its_parent():
    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import subprocess, sys, time; from core.lifetime import guarded; "
            "c = subprocess.Popen(guarded(['sh', '-c', 'echo ready; exec sleep 120']), stdout=subprocess.PIPE, "
            "text=True); "
            "print(c.pid, c.stdout.readline().strip(), flush=True); time.sleep(120)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    pid, word = parent.stdout.readline().split()
    child = int(pid)
    assert word == "ready" and _state(child) not in (None, "Z")  # it runs, after the guard's exec
    parent.send_signal(signal.SIGKILL)
    parent.wait(10)
    deadline = time.monotonic() + 10
    while _state(child) not in (None, "Z"):
        assert time.monotonic() < deadline, "the child outlived its parent"
        time.sleep(0.05)


def test_the_lifetime_guard_runs_its_command_under_a_parent_that_is_pid_1():
    """In a container the worker is pid 1: its child must not take that for an orphaned start."""
    if shutil.which("unshare") is None or subprocess.run(["unshare", "-Urpf", "true"]).returncode != 0:
        pytest.skip("needs unshare with user and pid namespaces")
    as_pid_1 = "import subprocess, os; from core.lifetime import guarded; assert os.getpid() == 1; "
    as_pid_1 += "raise SystemExit(subprocess.run(guarded(['true'])).returncode)"
    done = subprocess.run(["unshare", "-Urpf", "--mount-proc", sys.executable, "-c", as_pid_1], cwd=ROOT)
    assert done.returncode == 0


def test_the_lifetime_guard_ends_a_child_whose_parent_died_before_it_asked():
    started_by_someone_else = [sys.executable, "-m", "core.lifetime", "999999999", "true"]
    assert subprocess.run(started_by_someone_else, cwd=ROOT).returncode == -signal.SIGKILL
