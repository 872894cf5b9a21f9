"""Submitting a job, for every route that makes one (jobs, studies, attacks, samples, model and
dataset uploads): the spec validated against its kind, what it names authorised, its limits and
memory checked against the server's, the caller's quota, then the row, its audit entry and the
send to its queue. One place, so that no route skips a check.
"""

from __future__ import annotations

import logging

from fastapi import HTTPException, status
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from api.deps import Caller
from api.fit_checks import check_fits_what_it_names
from api.limits import announced_devices, check_limits, check_memory
from api.references import authorize
from core.contract.kinds import job_kind
from core.contract.names import FINISHED
from core.contract.specs import ModelSpec
from core.settings import Settings
from core.store import audit
from core.store import jobs as store_jobs
from core.store.db import write_lock
from core.store.orm import Job, User
from core.store.registry import get_model

log = logging.getLogger(__name__)
QUOTA_RETRY_SECONDS = 60  # what a 429 for the queued-job limit asks the client to wait


def validate_spec(kind: str, raw: dict) -> BaseModel:
    """The kind's spec model from `raw`; errors come back as 422 naming `spec.<field>`."""
    try:
        return job_kind(kind).spec.model_validate(raw)
    except ValidationError as e:
        raise RequestValidationError(
            [{**err, "loc": ("body", "spec", *err["loc"])} for err in e.errors(include_url=False)]
        ) from e


def registered_model_spec(session: Session, spec: BaseModel) -> ModelSpec | None:
    """The architecture of the registered classifier a spec acts on, if any (for memory admission)."""
    model_id = getattr(spec, "model_id", None)
    row = get_model(session, model_id=model_id) if model_id else None
    if row is None or row.kind != "classifier" or "model" not in (row.recipe or {}):
        return None
    try:
        return ModelSpec.model_validate(row.recipe["model"])
    except ValueError:
        return None


def check_quota(session: Session, settings: Settings, caller: Caller, new_jobs: int = 1) -> None:
    """429 (with Retry-After) when the caller's unfinished jobs would pass the per-user limit. Call
    it under the write lock, in the transaction that adds the jobs: the caller's user row is locked
    (on PostgreSQL; SQLite's writers are already in line) so that two submissions at once cannot
    both pass. The lock is FOR NO KEY UPDATE: the rows the transaction adds that name the user
    (an upload, the job) take a key-share lock on it, which FOR UPDATE would deadlock with."""
    session.execute(select(User.id).where(User.id == caller.user_id).with_for_update(key_share=True))
    waiting = session.scalar(
        select(func.count()).select_from(Job).where(Job.owner_id == caller.user_id, Job.status.not_in(FINISHED))
    )
    if waiting + new_jobs > settings.max_queued_jobs_per_user:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            f"{caller.name} has {waiting} unfinished job(s); the limit per user is "
            f"{settings.max_queued_jobs_per_user}: wait for some to finish, or cancel some",
            headers={"Retry-After": str(QUOTA_RETRY_SECONDS)},
        )


def submit(session: Session, queue, settings: Settings, *, kind: str, spec: BaseModel, caller: Caller) -> Job:
    """Store the job (owned by the caller), commit, then enqueue it (a lost send is re-enqueued by
    the workers)."""
    named = check_job(session, settings, caller, kind, spec)
    with write_lock(settings.database_url):
        check_quota(session, settings, caller)
        job = add_job(session, settings, kind=kind, spec=spec, caller=caller, named=named)
        session.commit()
    enqueue(queue, [job])
    return job


def check_job(session: Session, settings: Settings, caller: Caller, kind: str, spec: BaseModel) -> list:
    """The spec against the limits, the caller's rights to what it names, the memory admission
    and the model's classes (4xx naming what is wrong); returns the references it names."""
    check_limits(kind, spec, settings)
    named = authorize(session, settings, caller, kind, spec)
    model = registered_model_spec(session, spec)
    check_memory(kind, spec, settings, model=model)
    check_fits_what_it_names(session, settings, spec, model)
    return named


def add_job(
    session: Session,
    settings: Settings,
    *,
    kind: str,
    spec: BaseModel,
    caller: Caller,
    named: list,
    study_id: str | None = None,
) -> Job:
    """Add a checked job (`check_job` gave `named`) and its audit row to the session, uncommitted:
    the caller holds the write lock, has checked the quota, commits, then `enqueue`s."""
    job = store_jobs.create_job(
        session,
        kind=kind,
        spec=spec.model_dump(mode="json"),
        owner=caller.name,
        owner_id=caller.user_id,
        study_id=study_id,
    )
    largest = announced_devices(settings.redis_url).get(job.queue, 0)
    if largest and store_jobs.devices_asked(job) > largest:  # accepted: it waits for such a worker
        job.message = store_jobs.waiting_for_devices(store_jobs.devices_asked(job), largest)
    audit.record(
        session,
        user_id=caller.user_id,
        user_name=caller.name,
        action="submit",
        object_type="job",
        object_id=job.id,
        detail={"kind": kind, "study_id": study_id, "references": {r.path: r.value for r in named}},
    )
    return job


def enqueue(queue, jobs: list[Job]) -> None:
    """Send committed jobs to their queues (a lost send is re-enqueued by the workers)."""
    for job in jobs:
        try:
            queue.send(job.id, job.queue)
        except Exception:  # the broker is away: the job stays queued and the workers re-enqueue it
            log.warning("could not enqueue job %s now; the workers will re-enqueue it", job.id, exc_info=True)
