"""`execute_job(job_id)`: the whole life of one delivery of a job, for the worker task to call.

Claim the lease (a job never runs twice at once); a job that has already ended abnormally
`max_attempts` times is failed with each attempt's cause instead of run again. A train job then
runs in a supervised child process (`core.jobs.supervise`): whatever it does to its process, the
worker lives on. The interactive queue's kinds run in process, where the worker keeps recent
models loaded: they are bounded (one image, at most `max_samples_per_request` samples, bounded
attack steps), so their memory is small and predictable. A worker that dies leaves the lease to
expire; the job is then delivered again and resumes from its last checkpoint.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import redis

from core.device import owned_devices
from core.jobs.model_cache import ModelCache
from core.jobs.running import finish, run_in_process
from core.jobs.supervise import poison_message, supervise
from core.settings import Settings
from core.store import jobs as store_jobs
from core.store.announcements import largest
from core.store.db import session_scope

log = logging.getLogger(__name__)


def most_devices(redis_url: str) -> int:
    """The most devices a live train worker announced (0 when Redis does not answer)."""
    try:
        with redis.Redis.from_url(redis_url, socket_timeout=2, socket_connect_timeout=2) as client:
            return largest(client)[1].get("train", 0)
    except redis.RedisError:
        return 0


def execute_job(
    job_id: str, *, settings: Settings, worker: str, models: ModelCache, resend: Callable[[str], None] | None = None
) -> str:
    """Run the job this delivery of `job_id` stands for: on the interactive queue that job; on the
    train queue the fairest queued one (see `claim_fairly`), in a child process. `resend(job_id)`
    puts a job back on its queue after an abnormal end (else the re-enqueue loop does, later).
    Returns the status of the job run (or of `job_id` when nothing could be claimed)."""
    with session_scope(settings.database_url) as s:
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
                devices=owned_devices(settings.devices),
                largest=most_devices(settings.redis_url),
            )
        else:
            job = store_jobs.claim_job(s, job_id=job_id, worker=worker, lease_seconds=settings.lease_seconds)
        if job is None:
            s.refresh(delivered)
            log.info("nothing claimed for delivery of job %s (status %s)", job_id, delivered.status)
            return delivered.status
        if job.id != job_id:
            log.info("delivery of job %s runs job %s (fair turn)", job_id, job.id)
        job_id, kind, raw_spec, owner_id, attempt, queue = (
            job.id,
            job.kind,
            job.spec,
            job.owner_id,
            job.attempts,
            job.queue,
        )
        gpus = store_jobs.devices_asked(job)
        poisoned = poison_message(job, ended=attempt - 1) if attempt > settings.max_attempts else None
    if poisoned is not None:  # earlier attempts took their workers down without a word
        finish(settings, job_id, "failed", None, poisoned, worker)
        return "failed"
    if queue == "train":
        return supervise(job_id, kind, attempt, settings=settings, worker=worker, resend=resend, gpus=gpus)
    return run_in_process(job_id, kind, raw_spec, owner_id, settings=settings, worker=worker, models=models)
