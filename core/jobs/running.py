"""Running one claimed job in this process: the context, the kind's runner, and the final write.
Used by the child process of a supervised job, and in process for the interactive queue.

The store may be away for a while (a database restart): progress writes are skipped meanwhile
(`JobContext.progress`), and the final write is retried until it lands or `outage_seconds` pass.
"""

from __future__ import annotations

import logging
import threading
import time
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


def make_context(job_id: str, owner_id: str | None, settings: Settings, models: ModelCache) -> JobContext:
    return JobContext(
        job_id=job_id,
        session=partial(session_scope, settings.database_url),
        store=ArtifactStore(settings.artifact_url),
        work_dir=settings.work_dir,
        models=models,
        device=str(resolve_device("auto")),
        owner_id=owner_id,
        data_root=settings.data_root,
        archive_limits=ArchiveLimits(max_files=settings.max_dataset_files, max_pixels=settings.max_image_pixels),
    )


def heartbeat(job_id: str, settings: Settings, worker: str, done: threading.Event, lost: threading.Event) -> None:
    """Extend the job's lease every third of it until `done`; set `lost` (and stop) when another
    worker holds the lease. A database hiccup is logged and the next beat tries again."""
    while not done.wait(settings.lease_seconds / 3):
        try:
            with session_scope(settings.database_url) as s:
                if not store_jobs.heartbeat(s, job_id=job_id, worker=worker, lease_seconds=settings.lease_seconds):
                    log.warning("job %s: lease lost, stopping", job_id)
                    lost.set()
                    return
        except Exception:  # the store is away for a moment: the lease is long enough to wait
            log.exception("job %s: heartbeat failed", job_id)


def run_claimed(ctx: JobContext, kind: str, raw_spec: dict) -> tuple[str, dict | None, str | None]:
    """Run the claimed job's runner: (status, result, error). Never raises for the job's own
    failure: a failing job fails, the process lives on."""
    try:
        row = job_kind(kind)
        result = row.resolve_runner()(row.spec.model_validate(raw_spec), ctx)
        return "succeeded", result, None
    except Stopped:
        return ("running" if ctx.lease_lost.is_set() else "cancelled"), None, None
    except Exception as e:
        log.exception("job %s failed", ctx.job_id)
        return "failed", None, f"{type(e).__name__}: {e}"


def finish(settings: Settings, job_id: str, status: str, result: dict | None, error: str | None) -> None:
    """The job's final write, retried while the store is away (at most `outage_seconds`)."""
    deadline, wait = time.monotonic() + settings.outage_seconds, 1.0
    while True:
        try:
            with session_scope(settings.database_url) as s:
                store_jobs.finish_job(s, job_id=job_id, status=status, result=result, error=error)
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            log.warning("job %s: the store is away; retrying its final write in %.0f s", job_id, wait, exc_info=True)
            time.sleep(wait)
            wait = min(2 * wait, 15.0)


def run_in_process(
    job_id: str, kind: str, raw_spec: dict, owner_id: str | None, *, settings: Settings, worker: str, models: ModelCache
) -> str:
    """The in-process path (the interactive queue's bounded kinds): heartbeat, run, final write."""
    ctx = make_context(job_id, owner_id, settings, models)
    done = threading.Event()
    threading.Thread(target=heartbeat, args=(job_id, settings, worker, done, ctx.lease_lost), daemon=True).start()
    try:
        status, result, error = run_claimed(ctx, kind, raw_spec)
    finally:
        done.set()
    if status == "running":
        return status  # another worker holds the job now
    finish(settings, job_id, status, result, error)
    return status
