"""The interactive endpoints' bounded wait, the upload routes' answer, and artifact ids turned into URLs."""

from __future__ import annotations

import time
from collections.abc import Callable

from fastapi import HTTPException, Response, status
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.schemas import JobOut
from core.contract.kinds import job_kind
from core.contract.names import FINISHED
from core.contract.references import ids_named
from core.store import jobs as store_jobs
from core.store.db import session_scope
from core.store.orm import Artifact, Job

POLL_SECONDS = 0.005
INTERACTIVE_RESPONSES = {
    200: {"description": "finished within the wait"},
    202: {"model": JobOut, "description": "still running: the job"},
}


def wait_for(database_url: str, job_id: str, seconds: float) -> Job | None:
    """The job once finished, or None after `seconds`."""
    deadline = time.monotonic() + seconds
    while True:
        with session_scope(database_url) as s:
            job = store_jobs.get_job(s, job_id=job_id)
            if job.status in FINISHED:
                return job
        if time.monotonic() >= deadline:
            return None
        time.sleep(POLL_SECONDS)


def _url_key(key: str) -> str:
    """`adversarial_artifact_id` → `adversarial_url`, `x_t_artifact_ids` → `x_t_urls`."""
    for suffix, plural in (("_artifact_id", ""), ("_artifact_ids", "s"), ("_id", ""), ("_ids", "s")):
        if key.endswith(suffix):
            return f"{key.removesuffix(suffix)}_url{plural}"
    return f"{key}_url"


def with_urls(session: Session, job: Job) -> dict:
    """The job as JSON, with `/v1/artifacts/...` URLs beside every id in its result that is an
    artifact the job made or one its spec names (`core.contract.references`): the URL of an id is
    given because it is an artifact the caller may read through this job, not for its key's name."""
    body = JobOut.model_validate(job).model_dump(mode="json")
    result = body.get("result") or {}
    linkable = set(session.scalars(select(Artifact.id).where(Artifact.job_id == job.id)).all())
    linkable |= ids_named(job_kind(job.kind).spec, job.spec or {}, "artifact")
    for key, value in list(result.items()):
        if isinstance(value, str) and value in linkable:
            result[_url_key(key)] = f"/v1/artifacts/{value}"
        elif isinstance(value, list) and value and all(isinstance(v, str) and v in linkable for v in value):
            result[_url_key(key)] = [f"/v1/artifacts/{v}" for v in value]
    return body


def answer(session: Session, response: Response, database_url: str, job: Job, seconds: float) -> dict:
    """The finished job (200) if it finishes within `seconds`, else the job as it is (202)."""
    done = wait_for(database_url, job.id, seconds)
    if done is None:
        response.status_code = status.HTTP_202_ACCEPTED
        session.refresh(job)
        return with_urls(session, job)
    return with_urls(session, done)


REFUSALS = ("ValueError", "ArchiveError")  # what an upload's checks raise for bad input: said without their type


def upload_answer(
    session: Session, response: Response, database_url: str, job: Job, seconds: float, made: Callable[[Job], dict]
) -> dict:
    """The answer of an upload route: `made(job)` (what the upload registered) once its job has
    succeeded within `seconds`; the job as it is (202) while it runs; a 422 with the job's failure
    when its checks refused the upload (the message alone for a check's refusal, `Type: message`
    for anything else)."""
    done = wait_for(database_url, job.id, seconds)
    if done is None:
        response.status_code = status.HTTP_202_ACCEPTED
        session.refresh(job)
        return with_urls(session, job)
    if done.status != "succeeded":
        refused = done.error_type in REFUSALS and done.error
        why = done.error.removeprefix(f"{done.error_type}: ") if refused else (done.error or done.status)
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, why)
    return made(done)
