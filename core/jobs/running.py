"""Running one claimed job in this process: the context, the kind's runner, and the final write.
Used by the child process of a supervised job, and in process for the interactive queue.

The store may be away for a while (a database restart), for at most `outage_seconds`: progress and
metrics wait in the job (`JobContext.progress`), the heartbeat retries every second, a runner
whose own writes (its model, its artifacts) hit the outage is run again from its checkpoint once
the store is back (final writes are idempotent, keyed by the job), and the final write is retried.
"""

from __future__ import annotations

import logging
import threading
import time
from functools import partial

import core.training.distributed as ddp
from core.contract.kinds import job_kind
from core.contract.progress import Stopped
from core.contract.results import Result
from core.data.archive import ArchiveLimits
from core.device import resolve_device
from core.jobs.context import JobContext
from core.jobs.model_cache import ModelCache
from core.jobs.outage import STORE_AWAY, while_store_away
from core.jobs.tracking import Tracker
from core.settings import Settings, time_limit
from core.store import jobs as store_jobs
from core.store.artifacts import ArtifactStore
from core.store.db import session_scope
from core.store.jobs import Failure
from core.training.checkpoint import has_checkpoint

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
        outage_seconds=settings.outage_seconds,
    )


def heartbeat(job_id: str, settings: Settings, worker: str, done: threading.Event, lost: threading.Event) -> None:
    """Extend the job's lease every third of it until `done`; set `lost` (and stop) when another
    worker holds the lease. While the store is away nobody can claim the job; the heartbeat tries
    again every second, so that the lease is renewed as soon as the store is back (an outage
    shorter than the lease never lets another worker take the job)."""
    wait = settings.lease_seconds / 3
    while not done.wait(wait):
        try:
            with session_scope(settings.database_url) as s:
                if not store_jobs.heartbeat(s, job_id=job_id, worker=worker, lease_seconds=settings.lease_seconds):
                    log.warning("job %s: lease lost, stopping", job_id)
                    lost.set()
                    return
            wait = settings.lease_seconds / 3
        except Exception:
            log.warning("job %s: heartbeat failed (the store is away?); again in 1 s", job_id, exc_info=True)
            wait = min(1.0, settings.lease_seconds / 3)


def run_claimed(
    ctx: JobContext, kind: str, raw_spec: dict, tracking: Settings | None = None
) -> tuple[str, dict | None, Failure | None]:
    """Run the claimed job's runner: (status, result, failure). Never raises for the job's own
    failure: a failing job fails, the process lives on. With `tracking` settings that name an
    MLflow server, the job is logged there (`core.jobs.tracking`)."""
    ctx.tracker = start_tracking(ctx, kind, raw_spec, tracking)
    status, result, error = _run(ctx, kind, raw_spec)
    if ctx.tracker is not None:
        checkpoint = ctx.work_dir / ctx.job_id
        ctx.tracker.finish(status, result, checkpoint if has_checkpoint(checkpoint) else None)
    return status, result, error


def start_tracking(ctx: JobContext, kind: str, raw_spec: dict, settings: Settings | None) -> Tracker | None:
    """The job's MLflow run (None when tracking is off): its spec logged as parameters."""
    if settings is None or not settings.mlflow_tracking_uri:
        return None
    try:
        with ctx.session() as s:
            study_id = store_jobs.get_job(s, job_id=ctx.job_id).study_id
    except STORE_AWAY:
        study_id = None
    url = f"{settings.public_url.rstrip('/')}/v1/jobs/{ctx.job_id}" if settings.public_url else None
    tracker = Tracker(settings.mlflow_tracking_uri, job_id=ctx.job_id, kind=kind, study_id=study_id, job_url=url)
    tracker.log_spec(raw_spec)
    return tracker


def _run(ctx: JobContext, kind: str, raw_spec: dict) -> tuple[str, dict | None, Failure | None]:
    row, away_since = job_kind(kind), None
    while True:
        try:
            result = row.resolve_runner()(row.spec.model_validate(raw_spec), ctx)
            return "succeeded", (result.model_dump(mode="json") if isinstance(result, Result) else result), None
        except Stopped:
            if ctx.lease_lost.is_set():
                return "running", None, None
            if ctx.timed_out:
                return "failed", None, Failure(None, f"timed out after {ctx.time_limit:g} s (the limit for {kind})")
            return "cancelled", None, None
        except STORE_AWAY as e:
            if ddp.world()[1] > 1:  # ranks cannot run the runner again out of step: an abnormal end, resumed
                raise
            away_since = away_since or time.monotonic()
            if time.monotonic() - away_since > ctx.outage_seconds:
                log.exception("job %s: the store stayed away", ctx.job_id)
                away = f"the job store stayed away for over {ctx.outage_seconds:g} s: {e}"
                return "failed", None, Failure(None, away)
            log.warning("job %s: the store went away; running it again from its checkpoint", ctx.job_id)
            time.sleep(2.0)
        except Exception as e:
            log.exception("job %s failed", ctx.job_id)
            return "failed", None, Failure.of(e)


def finish(
    settings: Settings,
    job_id: str,
    status: str,
    result: dict | None,
    error: Failure | str | None,
    worker: str | None = None,
) -> None:
    """The job's final write, retried while the store is away (at most `outage_seconds`); with
    `worker`, only while that worker still holds the job (see `store_jobs.finish_job`)."""

    def write() -> None:
        with session_scope(settings.database_url) as s:
            if not store_jobs.finish_job(s, job_id=job_id, status=status, result=result, error=error, worker=worker):
                log.warning("job %s: no longer held by %s; its %s end is not written", job_id, worker, status)

    while_store_away(settings.outage_seconds, f"job {job_id}'s final write", write)


def run_in_process(
    job_id: str, kind: str, raw_spec: dict, owner_id: str | None, *, settings: Settings, worker: str, models: ModelCache
) -> str:
    """The in-process path (the interactive queue's bounded kinds): heartbeat, run, final write."""
    ctx = make_context(job_id, owner_id, settings, models)
    ctx.time_limit = time_limit(settings, kind)  # a train job's supervisor enforces its own
    done = threading.Event()
    threading.Thread(target=heartbeat, args=(job_id, settings, worker, done, ctx.lease_lost), daemon=True).start()
    try:
        status, result, error = run_claimed(ctx, kind, raw_spec, settings)
    finally:
        done.set()
    if status == "running":
        return status  # another worker holds the job now
    finish(settings, job_id, status, result, error, worker)
    return status
