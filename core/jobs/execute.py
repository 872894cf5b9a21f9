"""`execute_job(job_id)`: the whole life of one delivery of a job, for the worker task to call.

Claim the lease (a job never runs twice at once), keep it alive from a heartbeat thread, run the
kind's runner (from the table of job kinds), store the result. A crash leaves the lease to expire;
the job is then delivered again and resumes from its last checkpoint.
"""

from __future__ import annotations

import logging
import threading
from functools import partial

from core.contract.kinds import job_kind
from core.contract.progress import Stopped
from core.data.archive import ArchiveLimits
from core.device import resolve_device
from core.jobs.context import JobContext
from core.jobs.model_cache import ModelCache
from core.settings import Settings
from core.store import jobs as store_jobs
from core.store.artifacts import ArtifactStore
from core.store.db import session_scope

log = logging.getLogger(__name__)


def _heartbeat(ctx: JobContext, settings: Settings, worker: str, done: threading.Event) -> None:
    while not done.wait(settings.lease_seconds / 3):
        try:
            with ctx.session() as s:
                if not store_jobs.heartbeat(s, job_id=ctx.job_id, worker=worker, lease_seconds=settings.lease_seconds):
                    log.warning("job %s: lease lost, stopping", ctx.job_id)
                    ctx.lease_lost.set()
                    return
        except Exception:  # a database hiccup must not kill the job; the next beat retries
            log.exception("job %s: heartbeat failed", ctx.job_id)


def execute_job(job_id: str, *, settings: Settings, worker: str, models: ModelCache) -> str:
    """Run the job this delivery of `job_id` stands for: on the interactive queue that job; on the
    train queue the fairest queued one (see `claim_fairly`). Returns the status of the job run (or
    of `job_id` when nothing could be claimed)."""
    session = partial(session_scope, settings.database_url)
    with session() as s:
        delivered = store_jobs.get_job(s, job_id=job_id)
        if delivered is None:
            log.info("job %s not found", job_id)
            return "missing"
        if delivered.queue == "train":  # a delivery is a turn: the fairest queued train job runs
            job = store_jobs.claim_fairly(
                s,
                delivered=job_id,
                queue="train",
                worker=worker,
                lease_seconds=settings.lease_seconds,
                running_limit=settings.max_running_train_jobs_per_user,
            )
        else:
            job = store_jobs.claim_job(s, job_id=job_id, worker=worker, lease_seconds=settings.lease_seconds)
        if job is None:
            s.refresh(delivered)
            log.info("nothing claimed for delivery of job %s (status %s)", job_id, delivered.status)
            return delivered.status
        if job.id != job_id:
            log.info("delivery of job %s runs job %s (fair turn)", job_id, job.id)
        job_id = job.id
        kind, raw_spec, owner_id = job.kind, job.spec, job.owner_id
    ctx = JobContext(
        job_id=job_id,
        session=session,
        store=ArtifactStore(settings.artifact_url),
        work_dir=settings.work_dir,
        models=models,
        device=str(resolve_device("auto")),
        owner_id=owner_id,
        data_root=settings.data_root,
        archive_limits=ArchiveLimits(max_files=settings.max_dataset_files, max_pixels=settings.max_image_pixels),
    )
    done = threading.Event()
    beat = threading.Thread(target=_heartbeat, args=(ctx, settings, worker, done), daemon=True)
    beat.start()
    try:
        row = job_kind(kind)
        result = row.resolve_runner()(row.spec.model_validate(raw_spec), ctx)
        status, error = "succeeded", None
    except Stopped:
        if ctx.lease_lost.is_set():
            return "running"  # another worker holds the job now
        status, result, error = "cancelled", None, None
    except Exception as e:  # the job fails, the worker lives on
        log.exception("job %s failed", job_id)
        status, result, error = "failed", None, f"{type(e).__name__}: {e}"
    finally:
        done.set()
    with session() as s:
        store_jobs.finish_job(s, job_id=job_id, status=status, result=result, error=error)
    return status
