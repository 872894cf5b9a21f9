"""Samples on demand from a diffusion model, answered within the request when they are quick."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from api.deps import KeyDep, QueueDep, SessionDep, SettingsDep, not_found
from api.routes.jobs import submit
from api.waiting import wait_for, with_urls
from core.specs import DDPMSampleSpec
from core.store import jobs as store_jobs
from core.store.registry import get_model

router = APIRouter(prefix="/v1/samples", tags=["samples"])


@router.post(
    "",
    responses={
        200: {"description": "finished within the wait"},
        202: {"description": "still running"},
    },
)
def create_samples(spec: DDPMSampleSpec, session: SessionDep, queue: QueueDep, settings: SettingsDep, key: KeyDep,
                   response: Response, wait: Annotated[float | None, Query(ge=0, le=60)] = None) -> dict:  # fmt: skip
    """Sample `n` images (sampler, steps, seed, η, guidance) on the interactive queue; the answer
    holds the grid's and each image's URL, and the trajectory's frames when asked."""
    model = get_model(session, model_id=spec.model_id) if spec.model_id else None
    if model is None or model.kind != "diffusion":
        raise not_found("diffusion model", str(spec.model_id))
    job = submit(session, queue, settings, kind="ddpm_sampling", spec=spec, owner=key.name)
    done = wait_for(
        settings.database_url, job.id, settings.interactive_wait_seconds if wait is None else wait
    )
    if done is None:
        response.status_code = status.HTTP_202_ACCEPTED
        return with_urls(store_jobs.get_job(session, job_id=job.id))
    return with_urls(done)
