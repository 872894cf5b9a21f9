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

from api.access import (
    artifact_visible,
    data_root_folders,
    delete_audited,
    jobs_visible_to,
    require_owner,
    visible_dataset,
    visible_job,
)
from api.deps import MAX_OFFSET, Caller, KeyDep, QueueDep, SessionDep, SettingsDep
from api.limits import announced_devices, check_limits, check_memory
from api.schemas import JobIn, JobList, JobOut, MetricOut
from core.contract.kinds import job_kind
from core.contract.names import FINISHED
from core.contract.specs import DataSpec, ModelSpec
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


def check_data(session: Session, settings: Settings, caller: Caller, field: str, data: DataSpec) -> None:
    """A spec's dataset comes from the catalogue: no path (422), a data-root folder that exists, an
    uploaded dataset the caller may use (404 otherwise)."""
    if data.root is not None:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"spec.{field}.root: the service takes no paths; name a dataset (GET /v1/datasets)",
        )
    if data.name == "folder" and not data.folder:
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            f"spec.{field}.folder: name a folder of the data root (GET /v1/datasets)",
        )
    if data.name == "folder" and data.folder not in data_root_folders(settings):
        raise HTTPException(
            status.HTTP_404_NOT_FOUND, f"spec.{field}.folder: no folder {data.folder!r} in the data root"
        )
    if data.name == "uploaded":
        visible_dataset(session, caller, data.dataset_id)


MODEL_REFERENCES = {"classifier_id": "classifier", "diffusion_id": "diffusion"}  # spec fields naming models


def nested_specs(spec: BaseModel, path: str = ""):
    """`(path, spec)` for `spec` (path "") and every spec inside it, depth first (`generated.data`)."""
    yield path, spec
    for field in type(spec).model_fields:
        if isinstance(value := getattr(spec, field), BaseModel):
            yield from nested_specs(value, f"{path}.{field}" if path else field)


def check_model(session: Session, field: str, model_id: str, kind: str) -> None:
    """404 unless `model_id` is a registered model of `kind` (models are the lab's: all may read)."""
    model = get_model(session, model_id=model_id)
    if model is None or model.kind != kind:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"{field}: no registered {kind} model with id {model_id!r}")


def check_references(session: Session, settings: Settings, caller: Caller, kind: str, spec: BaseModel) -> None:
    """The registered model a kind acts on exists and is of the kind's model kind (422 when none is
    named, 404 when it is not there); every artifact the spec names exists and is the caller's to
    use (404 otherwise: another member's upload is private); its datasets come from the catalogue."""
    for field, value in nested_specs(spec):
        if isinstance(value, DataSpec):
            check_data(session, settings, caller, field, value)
        for name, model_kind in MODEL_REFERENCES.items():
            if (model_id := getattr(value, name, None)) is not None:
                check_model(session, ".".join(["spec", *filter(None, [field]), name]), model_id, model_kind)
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
    for field in type(spec).model_fields:
        artifact_id = getattr(spec, field) if field.endswith("_artifact_id") else None
        if artifact_id is None:
            continue
        artifact = session.get(Artifact, artifact_id)
        if artifact is None or not artifact_visible(session, caller, artifact):
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"spec.{field}: no artifact {artifact_id!r}")


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
    check_limits(spec, settings)
    check_references(session, settings, caller, kind, spec)
    check_memory(spec, job_kind(kind).queue, settings, model=registered_model_spec(session, spec))
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
            detail={"kind": kind, "study_id": study_id},
        )
        session.commit()
    try:
        queue.send(job.id, job.queue)
    except Exception:  # the broker is away: the job stays queued and the workers re-enqueue it
        log.warning("could not enqueue job %s now; the workers will re-enqueue it", job.id, exc_info=True)
    return job


@router.post("", status_code=status.HTTP_202_ACCEPTED, response_model=JobOut)
def create_job(body: JobIn, session: SessionDep, queue: QueueDep, settings: SettingsDep, caller: KeyDep) -> Job:
    """Submit a job; 202 with the queued job. The spec is validated against the kind's model."""
    return submit(session, queue, settings, kind=body.kind, spec=validate_spec(body.kind, body.spec), caller=caller)


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
