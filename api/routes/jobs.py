"""Jobs: submit, list, read, metrics, artifacts, cancel."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.deps import MAX_OFFSET, KeyDep, QueueDep, SessionDep, SettingsDep, not_found
from api.limits import check_limits
from api.schemas import JobIn, JobList, JobOut, MetricOut
from core.contract.kinds import job_kind
from core.settings import Settings
from core.store import jobs as store_jobs
from core.store.db import write_lock
from core.store.orm import Artifact, Job
from core.store.registry import get_model

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1/jobs", tags=["jobs"])


def validate_spec(kind: str, raw: dict) -> BaseModel:
    """The kind's spec model from `raw`; errors come back as 422 naming `spec.<field>`."""
    try:
        return job_kind(kind).spec.model_validate(raw)
    except ValidationError as e:
        raise RequestValidationError(
            [{**err, "loc": ("body", "spec", *err["loc"])} for err in e.errors(include_url=False)]
        ) from e


def check_references(session: Session, kind: str, spec: BaseModel) -> None:
    """The registered model a kind acts on exists and is of the kind's model kind (422 when none is
    named, 404 when it is not there); an uploaded input exists (404)."""
    acts_on = job_kind(kind).acts_on
    if acts_on is not None:
        model_id = spec.model_id
        if not model_id:
            raise HTTPException(
                status.HTTP_422_UNPROCESSABLE_CONTENT, f"spec.model_id: {kind} needs a registered {acts_on}"
            )
        model = get_model(session, model_id=model_id)
        if model is None or model.kind != acts_on:
            raise HTTPException(
                status.HTTP_404_NOT_FOUND, f"spec.model_id: no registered {acts_on} model with id {model_id!r}"
            )
    artifact_id = getattr(spec, "input_artifact_id", None)
    if artifact_id is not None and session.get(Artifact, artifact_id) is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"spec.input_artifact_id: no artifact {artifact_id!r}")


def submit(
    session: Session, queue, settings: Settings, *, kind: str, spec: BaseModel, owner: str, study_id: str | None = None
) -> Job:
    """Store the job, commit, then enqueue it (a lost send is re-enqueued by the workers)."""
    check_limits(spec, settings)
    check_references(session, kind, spec)
    with write_lock(settings.database_url):
        job = store_jobs.create_job(
            session, kind=kind, spec=spec.model_dump(mode="json"), owner=owner, study_id=study_id
        )
        session.commit()
    try:
        queue.send(job.id, job.queue)
    except Exception:  # the broker is away: the job stays queued and the workers re-enqueue it
        log.warning("could not enqueue job %s now; the workers will re-enqueue it", job.id, exc_info=True)
    return job


@router.post("", status_code=status.HTTP_202_ACCEPTED, response_model=JobOut)
def create_job(body: JobIn, session: SessionDep, queue: QueueDep, settings: SettingsDep, key: KeyDep) -> Job:
    """Submit a job; 202 with the queued job. The spec is validated against the kind's model."""
    return submit(session, queue, settings, kind=body.kind, spec=validate_spec(body.kind, body.spec), owner=key.name)


@router.get("", response_model=JobList)
def list_jobs(
    session: SessionDep,
    _: KeyDep,
    status_: Annotated[str | None, Query(alias="status")] = None,
    kind: str | None = None,
    study: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> dict:
    items, total = store_jobs.list_jobs(session, status=status_, kind=kind, study_id=study, limit=limit, offset=offset)
    return {"items": items, "total": total, "limit": limit, "offset": offset}


def _job(session: Session, job_id: str) -> Job:
    job = store_jobs.get_job(session, job_id=job_id)
    if job is None:
        raise not_found("job", job_id)
    return job


@router.get("/{job_id}", response_model=JobOut)
def read_job(job_id: str, session: SessionDep, _: KeyDep) -> Job:
    return _job(session, job_id)


@router.get("/{job_id}/metrics", response_model=list[MetricOut])
def read_metrics(job_id: str, session: SessionDep, _: KeyDep) -> list:
    _job(session, job_id)
    return store_jobs.get_metrics(session, job_id=job_id)


@router.get("/{job_id}/artifacts")
def read_artifacts(job_id: str, session: SessionDep, _: KeyDep) -> list[dict]:
    _job(session, job_id)
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
def cancel_job(job_id: str, session: SessionDep, _: KeyDep) -> Job:
    """Cancel: a queued job at once, a running one within a few batches."""
    job = store_jobs.request_cancel(session, job_id=job_id)
    if job is None:
        raise not_found("job", job_id)
    return job
