"""Jobs: submit, list, read, metrics, artifacts, cancel, delete. Members see their own jobs and the
lab's finished ones; they cancel and delete their own (see `api.access`)."""

from __future__ import annotations

import logging
from functools import partial
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Response, status
from sqlalchemy import select

from api.access import delete_audited, jobs_visible_to, require_owner, visible_job
from api.deps import MAX_OFFSET, KeyDep, QueueDep, SessionDep, SettingsDep
from api.schemas import ArtifactOut, JobIn, JobList, JobOut, MetricOut
from api.submission import submit, validate_spec
from api.waiting import with_urls
from core.contract.kinds import job_kind, spec_from_preset
from core.store import audit
from core.store import jobs as store_jobs
from core.store.deletion import delete_job
from core.store.orm import Artifact, Job

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1/jobs", tags=["jobs"])


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
def read_job(job_id: str, session: SessionDep, caller: KeyDep) -> dict:
    """The job, with `/v1/artifacts/...` URLs beside the artifact ids of its result (as the
    interactive endpoints answer: a client that got a 202 reads the same links here)."""
    return with_urls(session, visible_job(session, caller, job_id))


@router.get("/{job_id}/metrics", response_model=list[MetricOut])
def read_metrics(job_id: str, session: SessionDep, caller: KeyDep) -> list:
    visible_job(session, caller, job_id)
    return store_jobs.get_metrics(session, job_id=job_id)


@router.get("/{job_id}/artifacts", response_model=list[ArtifactOut])
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
