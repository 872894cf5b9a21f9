"""The interactive endpoints' bounded wait, and artifact ids turned into URLs."""

from __future__ import annotations

import time

from fastapi import Response, status
from sqlalchemy.orm import Session

from api.schemas import JobOut
from core.contract.names import FINISHED
from core.store import jobs as store_jobs
from core.store.db import session_scope
from core.store.orm import Job

POLL_SECONDS = 0.005
INTERACTIVE_RESPONSES = {200: {"description": "finished within the wait"}, 202: {"description": "still running"}}


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


def with_urls(job: Job) -> dict:
    """The job as JSON, with `/v1/artifacts/...` URLs beside every artifact id in its result."""
    body = JobOut.model_validate(job).model_dump(mode="json")
    result = body.get("result") or {}
    for key, value in list(result.items()):
        if key.endswith("_artifact_id"):
            result[key.removesuffix("_artifact_id") + "_url"] = f"/v1/artifacts/{value}"
        elif key.endswith("_artifact_ids"):
            result[key.removesuffix("_artifact_ids") + "_urls"] = [f"/v1/artifacts/{v}" for v in value]
    return body


def answer(session: Session, response: Response, database_url: str, job: Job, seconds: float) -> dict:
    """The finished job (200) if it finishes within `seconds`, else the job as it is (202)."""
    done = wait_for(database_url, job.id, seconds)
    if done is None:
        response.status_code = status.HTTP_202_ACCEPTED
        session.refresh(job)
        return with_urls(job)
    return with_urls(done)
