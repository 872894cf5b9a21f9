"""A node's work folder after jobs ended, crashed or were deleted: what nothing will read again goes,
what a job may still resume from (or a job just claimed) stays."""

from __future__ import annotations

import os
import time

from core.jobs.sweep import sweep_work_dir
from core.store import jobs as store_jobs
from core.store.db import session_scope
from core.store.migrate import upgrade
from core.store.orm import DatasetRow

HOUR_AGO = time.time() - 2 * 3600


def _folder(path, old=True):
    path.mkdir(parents=True)
    (path / "checkpoint.json").write_text("{}")
    if old:
        os.utime(path, (HOUR_AGO, HOUR_AGO))
    return path


def test_the_sweep_removes_folders_of_ended_or_deleted_jobs_and_datasets_only(tmp_path):
    url, work = f"sqlite:///{tmp_path / 'store.db'}", tmp_path / "work"
    upgrade(url)
    with session_scope(url) as s:
        ended, queued, running, young = (
            store_jobs.create_job(s, kind="adversarial_training", spec={}).id for _ in "1234"
        )
        for job_id in (ended, young):
            store_jobs.finish_job(s, job_id=job_id, status="failed", error="x")
        store_jobs.claim_job(s, job_id=running, worker="w", lease_seconds=60)
        kept_data = DatasetRow(name="d", classes={}, channels=1, image_size=8, uri="datasets/d")
        s.add(kept_data)
        s.flush()
        kept_data = kept_data.id
    deleted_job, deleted_data = "0" * 32, "1" * 32
    folders = {name: _folder(work / name) for name in (ended, queued, running, deleted_job, "not-a-job")}
    folders[young] = _folder(work / young, old=False)
    lock = work / f".{ended}.lock"
    lock.write_text("")
    os.utime(lock, (HOUR_AGO, HOUR_AGO))
    data = {d: _folder(work / "datasets" / d) for d in (kept_data, deleted_data)}
    with session_scope(url) as s:
        removed = sweep_work_dir(s, work)
    assert set(removed) == {folders[ended], folders[deleted_job], lock, data[deleted_data]}
    assert all(not p.exists() for p in removed)
    for name in (queued, running, young, "not-a-job"):
        assert folders[name].exists(), name
    assert data[kept_data].exists()
