"""Jobs: submit, list, read, metrics, artifacts, cancel, delete. Members see their own jobs and the
lab's finished ones; they cancel and delete their own (see `api.access`)."""

from __future__ import annotations

import logging
from functools import partial
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Response, status
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from api.access import delete_audited, jobs_visible_to, require_owner, visible_job
from api.deps import MAX_OFFSET, Caller, KeyDep, QueueDep, SessionDep, SettingsDep
from api.limits import announced_devices, check_limits, check_memory
from api.references import authorize
from api.schemas import JobIn, JobList, JobOut, MetricOut
from core.contract.kinds import job_kind, spec_from_preset
from core.contract.names import FINISHED
from core.contract.specs import ModelSpec
from core.settings import Settings
from core.store import audit
from core.store import jobs as store_jobs
from core.store.db import write_lock
from core.store.deletion import delete_job
from core.store.orm import Artifact, Job
from core.store.registry import get_model

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1/jobs", tags=["jobs"])
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
    """429 (with Retry-After) when the caller's unfinished jobs would pass the per-user limit."""
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


def submit(
    session: Session,
    queue,
    settings: Settings,
    *,
    kind: str,
    spec: BaseModel,
    caller: Caller,
    study_id: str | None = None,
    quota_checked: bool = False,
) -> Job:
    """Store the job (owned by the caller), commit, then enqueue it (a lost send is re-enqueued by
    the workers)."""
    check_limits(kind, spec, settings)
    named = authorize(session, settings, caller, kind, spec)
    check_memory(kind, spec, settings, model=registered_model_spec(session, spec))
    if not quota_checked:
        check_quota(session, settings, caller)
    with write_lock(settings.database_url):
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
        session.commit()
    try:
        queue.send(job.id, job.queue)
    except Exception:  # the broker is away: the job stays queued and the workers re-enqueue it
        log.warning("could not enqueue job %s now; the workers will re-enqueue it", job.id, exc_info=True)
    return job


@router.post("", status_code=status.HTTP_202_ACCEPTED, response_model=JobOut)
def create_job(body: JobIn, session: SessionDep, queue: QueueDep, settings: SettingsDep, caller: KeyDep) -> Job:
    """Submit a job; 202 with the queued job. Give its `spec`, or a `preset` of the kind with
    `overrides` merged in. The spec is validated against the kind's model, and what it names is
    authorised (`api.references`). The upload kinds come through their routes only."""
    if not job_kind(body.kind).direct:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"kind: {body.kind} jobs are made by their upload route (POST /v1/models, POST /v1/datasets), "
            "which stores the upload and its job together",
        )
    raw = body.spec or {}
    if body.preset is not None:
        try:
            raw = spec_from_preset(body.kind, body.preset, body.overrides)
        except ValueError as e:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"preset: {e}") from e
    return submit(session, queue, settings, kind=body.kind, spec=validate_spec(body.kind, raw), caller=caller)


@router.get("", response_model=JobList)
def list_jobs(
    session: SessionDep,
    caller: KeyDep,
    status_: Annotated[str | None, Query(alias="status")] = None,
    kind: str | None = None,
    study: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> dict:
    """The jobs the caller may see, newest first: their own, and the lab's finished ones."""
    items, total = store_jobs.list_jobs(
        session, status=status_, kind=kind, study_id=study, limit=limit, offset=offset, where=jobs_visible_to(caller)
    )
    return {"items": items, "total": total, "limit": limit, "offset": offset}


@router.get("/{job_id}", response_model=JobOut)
def read_job(job_id: str, session: SessionDep, caller: KeyDep) -> Job:
    return visible_job(session, caller, job_id)


@router.get("/{job_id}/metrics", response_model=list[MetricOut])
def read_metrics(job_id: str, session: SessionDep, caller: KeyDep) -> list:
    visible_job(session, caller, job_id)
    return store_jobs.get_metrics(session, job_id=job_id)


@router.get("/{job_id}/artifacts")
def read_artifacts(job_id: str, session: SessionDep, caller: KeyDep) -> list[dict]:
    visible_job(session, caller, job_id)
    rows = session.scalars(select(Artifact).where(Artifact.job_id == job_id).order_by(Artifact.created_at)).all()
    return [
        {
            "id": a.id,
            "type": a.type,
            "name": a.uri.rsplit("/", 1)[-1],
            "size": a.size,
            "sha256": a.sha256,
            "content_type": a.content_type,
            "url": f"/v1/artifacts/{a.id}",
        }
        for a in rows
    ]


@router.post("/{job_id}/cancel", response_model=JobOut)
def cancel_job(job_id: str, session: SessionDep, caller: KeyDep) -> Job:
    """Cancel: a queued job at once, a running one within a few batches (its owner or an admin)."""
    require_owner(caller, visible_job(session, caller, job_id).owner_id, "job")
    job = store_jobs.request_cancel(session, job_id=job_id)
    audit.record(
        session, user_id=caller.user_id, user_name=caller.name, action="cancel", object_type="job", object_id=job_id
    )
    return job


@router.delete("/{job_id}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
def remove_job(job_id: str, session: SessionDep, settings: SettingsDep, caller: KeyDep) -> Response:
    """Delete a finished job with its metrics, artifacts and the models it registered (its owner or
    an admin); 409 while it, or a job using its model, has not finished."""
    require_owner(caller, visible_job(session, caller, job_id).owner_id, "job")
    return delete_audited(session, settings, caller, "job", job_id, partial(delete_job, job_id=job_id))
