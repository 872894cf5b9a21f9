"""Who may see and change what. Every route checks the caller against the object, not only the key.

- Admins see and change everything.
- Members read what the lab shares: the registry (models), studies, and finished jobs with their
  metrics and artifacts. Another member's queued or running job, and another member's private
  objects (uploads, datasets, and every job and model that reads or makes them: the rule is in
  `core.store.privacy`) are hidden: asking for one answers 404, as if it did not exist.
- Members cancel, delete or change only what they own: 403 for someone else's shared object.
- Objects with no owner (made on the command line, or before owners existed) are shared and
  changed by admins only.
"""

from __future__ import annotations

from fastapi import HTTPException, Response, status
from sqlalchemy import and_, or_
from sqlalchemy.orm import Session

from api.deps import Caller, not_found
from core.contract.names import FINISHED
from core.store import audit
from core.store.artifacts import ArtifactStore
from core.store.db import write_lock
from core.store.deletion import InUse
from core.store.orm import Artifact, DatasetRow, Job, RegisteredModel


def owns(caller: Caller, owner_id: str | None) -> bool:
    return caller.admin or (owner_id is not None and owner_id == caller.user_id)


def job_visible(caller: Caller, job: Job) -> bool:
    if owns(caller, job.owner_id):
        return True
    return not job.private and (job.owner_id is None or job.status in FINISHED)


def jobs_visible_to(caller: Caller):
    """The SQL condition for `job_visible` (None for an admin: every job)."""
    if caller.admin:
        return None
    shared = and_(Job.private.is_(False), or_(Job.owner_id.is_(None), Job.status.in_(FINISHED)))
    return or_(Job.owner_id == caller.user_id, shared)


def model_visible(caller: Caller, model: RegisteredModel) -> bool:
    """The registry is the lab's, but for the models private jobs made (their owner's and the admins')."""
    return owns(caller, model.owner_id) or not model.private


def models_visible_to(caller: Caller):
    """The SQL condition for `model_visible` (None for an admin)."""
    if caller.admin:
        return None
    return or_(RegisteredModel.owner_id == caller.user_id, RegisteredModel.private.is_(False))


def visible_model(session: Session, caller: Caller, model_id: str, kind: str | None = None) -> RegisteredModel:
    """The registered model (of `kind`, if given), if the caller may see it; 404 otherwise."""
    model = session.get(RegisteredModel, model_id)
    if model is None or not model_visible(caller, model) or (kind is not None and model.kind != kind):
        raise not_found("classifier" if kind == "classifier" else f"{kind or ''} model".strip(), model_id)
    return model


def visible_job(session: Session, caller: Caller, job_id: str) -> Job:
    """The job, if the caller may see it; 404 otherwise."""
    job = session.get(Job, job_id)
    if job is None or not job_visible(caller, job):
        raise not_found("job", job_id)
    return job


def artifact_visible(session: Session, caller: Caller, artifact: Artifact) -> bool:
    if owns(caller, artifact.owner_id):
        return True
    if artifact.job_id is not None:
        job = session.get(Job, artifact.job_id)
        return job is not None and job_visible(caller, job)
    if artifact.uri.startswith("jobs/"):  # a job's file whose job link is lost: its owner's or an admin's
        return caller.admin
    return artifact.owner_id is None  # made without a job and without an owner: an import, shared


def require_owner(caller: Caller, owner_id: str | None, what: str) -> None:
    """403 unless the caller owns the object (or is an admin)."""
    if not owns(caller, owner_id):
        raise HTTPException(status.HTTP_403_FORBIDDEN, f"only its owner or an admin may change this {what}")


def visible_dataset(session, caller: Caller, dataset_id: str) -> DatasetRow:
    row = session.get(DatasetRow, dataset_id)
    if row is None or not (caller.admin or row.owner_id == caller.user_id):
        raise not_found("dataset", dataset_id)
    return row


def data_root_folders(settings) -> list[str]:
    """The folders of the data root holding train/ and test/ (as far as this process can see)."""
    root = settings.data_root
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if (p / "train").is_dir() and (p / "test").is_dir())


def in_use_message(session: Session, caller: Caller, e: InUse) -> str:
    """Why the object cannot be deleted, naming only the blockers the caller may see (another
    member's private job or defended model is counted, not named)."""

    def visible(kind: str, ident: str) -> bool:
        if kind == "job":
            job = session.get(Job, ident)
            return job is not None and job_visible(caller, job)
        if kind == "model":
            model = session.get(RegisteredModel, ident)
            return model is not None and model_visible(caller, model)
        return True  # a job's own state

    shown = [ident for kind, ident in e.blockers if visible(kind, ident)]
    return e.message(shown, len(e.blockers) - len(shown))


def delete_audited(session: Session, settings, caller: Caller, what: str, object_id: str, delete) -> Response:
    """Run `delete(session, store)` under the write lock, audit it, commit: 204, or 409 naming
    what still uses the object."""
    with write_lock(settings.database_url):
        try:
            delete(session, ArtifactStore(settings.artifact_url))
        except InUse as e:
            raise HTTPException(status.HTTP_409_CONFLICT, in_use_message(session, caller, e)) from e
        audit.record(
            session,
            user_id=caller.user_id,
            user_name=caller.name,
            action="delete",
            object_type=what,
            object_id=object_id,
        )
        session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)
