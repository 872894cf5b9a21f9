"""What is private, and how it stays private through the jobs that read or make it. The rule
(docs/security.md), enforced here and nowhere else:

- Private objects: a member's raw uploads (images, weights, archives), the datasets in the
  catalogue (uploaded or generated), and everything a private job makes.
- A job is private when it reads a private object (a reference of its spec, see
  `core.contract.references`) or its kind makes private data (`makes_private` on its row). The
  raw upload a registration consumes does not count: registering one's own weights in the lab's
  registry is publishing them (a dataset's registration makes private data anyway).
- What a private job makes is private: its artifacts (they follow the job), its metrics, and the
  models it registers; its evaluation of a shared model is not written into that model's
  shared summary.
- Private means: its owner and the admins see it; to anyone else it does not exist (404).

A job consumes (deletes) an object only when it is a raw upload of the job's owner that no
other job names: `consume_upload` checks it again before deleting anything.
"""

from __future__ import annotations

import logging

from sqlalchemy import String, cast, select
from sqlalchemy.orm import Session

from core.contract.kinds import job_kind
from core.contract.references import Reference, references
from core.store.artifacts import ArtifactStore, delete_artifact
from core.store.orm import Artifact, DatasetRow, Job, RegisteredModel

log = logging.getLogger(__name__)


def artifact_is_private(session: Session, artifact: Artifact) -> bool:
    """A raw upload (made by no job, owned) or an artifact of a private job."""
    if artifact.job_id is None:
        return artifact.owner_id is not None
    job = session.get(Job, artifact.job_id)
    return job is not None and job.private


def reference_is_private(session: Session, reference: Reference) -> bool:
    """Whether the object a spec names is private (an object that does not exist is not)."""
    target, ident = reference.ref.target, reference.value
    if target == "dataset":
        return session.get(DatasetRow, ident) is not None
    if target == "model":
        model = session.get(RegisteredModel, ident)
        return model is not None and model.private
    if target == "artifact":
        artifact = session.get(Artifact, ident)
        return artifact is not None and artifact_is_private(session, artifact)
    job = session.get(Job, ident)
    return job is not None and job.private


def spec_is_private(session: Session, kind: str, spec: dict) -> bool:
    """A job of `kind` with `spec` (its JSON) is private: it makes private data or reads some."""
    row = job_kind(kind)
    read = [r for r in references(row.spec, spec) if r.ref.use == "reads"]
    return row.makes_private or any(reference_is_private(session, r) for r in read)


def made_by_private_job(session: Session, job_id: str | None) -> bool:
    """What the job `job_id` makes (a model, say) is private."""
    job = session.get(Job, job_id) if job_id is not None else None
    return job is not None and job.private


def named_by_another_job(session: Session, artifact_id: str, job_id: str | None) -> list[str]:
    """The jobs other than `job_id` whose spec names `artifact_id`."""
    rows = session.scalars(select(Job).where(cast(Job.spec, String).contains(artifact_id), Job.id != job_id)).all()
    return [j.id for j in rows if artifact_id in {r.value for r in references(job_kind(j.kind).spec, j.spec or {})}]


def consumable(session: Session, artifact: Artifact | None, owner_id: str | None, job_id: str | None) -> str | None:
    """Why `artifact` may not be consumed by a job of `owner_id` (None when it may): it must be a
    raw upload of that owner that no other job names."""
    if artifact is None:
        return "no such upload"
    if artifact.type != "upload" or artifact.job_id is not None:
        return f"artifact {artifact.id} is a job's {artifact.type}, not a raw upload"
    if artifact.owner_id != owner_id:  # an ownerless job (the command line's) takes ownerless uploads only
        return f"artifact {artifact.id} is not an upload of this job's owner"
    if others := named_by_another_job(session, artifact.id, job_id):
        return f"upload {artifact.id} is named by job(s) {', '.join(others)}"
    return None


def consume_upload(session: Session, store: ArtifactStore, *, artifact_id: str, job: Job) -> bool:
    """Delete the upload `job` was handed to consume, if it is one (see `consumable`); anything else
    is left alone and logged. Returns whether it was deleted."""
    why = consumable(session, session.get(Artifact, artifact_id), job.owner_id, job.id)
    if why is not None:
        log.warning("job %s keeps artifact %s: %s", job.id, artifact_id, why)
        return False
    delete_artifact(session, store, artifact_id=artifact_id)
    return True
