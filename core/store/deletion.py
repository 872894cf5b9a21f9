"""Deleting jobs, models and studies with what they made, and collecting the artifacts nothing
points to any more. Nothing is deleted while a job that uses it is queued or running. Files go
only once the rows' deletion commits (`remove_after_commit`): a failed commit loses nothing."""

from __future__ import annotations

import logging
import time

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from core.contract.kinds import job_kind
from core.contract.names import FINISHED
from core.contract.references import Target, ids_named
from core.contract.specs import DataSpec
from core.store.artifacts import ArtifactStore, delete_artifact, remove_after_commit
from core.store.orm import Artifact, DatasetRow, Job, MetricPoint, RegisteredModel, Study
from core.store.privacy import consumable

log = logging.getLogger(__name__)


class InUse(ValueError):
    """The object is used by a job that has not finished (or is such a job), or by a defended model.

    Attributes:
        subject: what was to be deleted (`model <id>`).
        relation: how the blockers hold it (`is used by unfinished job(s)`).
        blockers: (`job` or `model`, id) of each object that holds it.
        advice: what to do (`cancel them first`).
    """

    def __init__(self, subject: str, relation: str, blockers: list[tuple[str, str]], advice: str):
        self.subject, self.relation, self.blockers, self.advice = subject, relation, blockers, advice
        super().__init__(self.message([ident for _, ident in blockers], 0))

    def message(self, shown: list[str], hidden: int) -> str:
        """The explanation naming `shown` blockers and counting `hidden` ones."""
        named = ", ".join(shown) + (f" and {hidden} other(s) you cannot see" if hidden and shown else "")
        return f"{self.subject} {self.relation} {named or f'{hidden} you cannot see'}: {self.advice}"


def _unfinished_naming(session: Session, target: Target, ident: str | set[str]) -> list[str]:
    """The queued or running jobs whose spec names the `target` object `ident` (or one of a set of
    them) among its declared references."""
    idents = {ident} if isinstance(ident, str) else ident
    unfinished = session.scalars(select(Job).where(Job.status.not_in(FINISHED))).all()
    return [j.id for j in unfinished if idents & ids_named(job_kind(j.kind).spec, j.spec or {}, target)]


def _jobs(ids: list[str]) -> list[tuple[str, str]]:
    return [("job", ident) for ident in ids]


def _defenses_using(session: Session, model_id: str) -> list[str]:
    """The defended models whose classifier or purifier is `model_id`."""
    rows = session.scalars(select(RegisteredModel).where(RegisteredModel.architecture == "purified")).all()
    parts = {r.id: (r.recipe or {}).get("defense") or {} for r in rows}
    return [ident for ident, d in parts.items() if model_id in (d.get("classifier_id"), d.get("diffusion_id"))]


def delete_model(session: Session, store: ArtifactStore, *, model_id: str) -> None:
    """The model, its checkpoint files and their artifact rows.

    Raises:
        InUse: a queued or running job acts on the model.
    """
    model = session.get(RegisteredModel, model_id)
    if model is None:
        return
    if users := _unfinished_naming(session, "model", model_id):
        raise InUse(f"model {model_id}", "is used by unfinished job(s)", _jobs(users), "cancel them first")
    if defenses := _defenses_using(session, model_id):
        blockers = [("model", ident) for ident in defenses]
        raise InUse(f"model {model_id}", "is part of defended model(s)", blockers, "delete them first")
    prefix = model.checkpoint_uri.rstrip("/") + "/"
    session.execute(delete(Artifact).where(Artifact.uri.startswith(prefix)))
    remove_after_commit(session, store, model.checkpoint_uri, tree=True)
    session.delete(model)
    session.flush()


def delete_job(session: Session, store: ArtifactStore, *, job_id: str) -> None:
    """A finished job with its metrics, its artifacts, the models and datasets it registered and the
    raw uploads it was handed that no other job names (one cancelled, or given up, before it
    consumed its upload kept it: its owner could not reach those bytes otherwise).

    Raises:
        InUse: the job has not finished, or a model it made or a file it wrote (an uploaded image's
            copy, say) is used by an unfinished job.
    """
    job = session.get(Job, job_id)
    if job is None:
        return
    if job.status not in FINISHED:
        raise InUse(f"job {job_id}", "is", [("state", job.status)], "cancel it first")
    made = set(session.scalars(select(Artifact.id).where(Artifact.job_id == job_id)).all())
    if users := _unfinished_naming(session, "artifact", made) if made else []:
        raise InUse(f"job {job_id}", "wrote files used by unfinished job(s)", _jobs(users), "cancel them first")
    for model in session.scalars(select(RegisteredModel).where(RegisteredModel.job_id == job_id)).all():
        delete_model(session, store, model_id=model.id)
    for dataset in session.scalars(select(DatasetRow).where(DatasetRow.job_id == job_id)).all():
        delete_dataset(session, store, dataset_id=dataset.id)
    for upload_id in ids_named(job_kind(job.kind).spec, job.spec or {}, "artifact"):
        if consumable(session, session.get(Artifact, upload_id), job.owner_id, job.id) is None:
            delete_artifact(session, store, artifact_id=upload_id)
    for artifact in session.scalars(select(Artifact).where(Artifact.job_id == job_id)).all():
        remove_after_commit(session, store, artifact.uri)
        session.delete(artifact)
    remove_after_commit(session, store, f"jobs/{job_id}", tree=True)
    session.execute(delete(MetricPoint).where(MetricPoint.job_id == job_id))
    session.delete(job)
    session.flush()


def delete_study(session: Session, store: ArtifactStore, *, study_id: str) -> None:
    """The study, its jobs and what they made.

    Raises:
        InUse: one of its jobs has not finished.
    """
    study = session.get(Study, study_id)
    if study is None:
        return
    jobs = session.scalars(select(Job).where(Job.study_id == study_id)).all()
    if running := [j.id for j in jobs if j.status not in FINISHED]:
        raise InUse(f"study {study_id}", "has unfinished job(s)", _jobs(running), "cancel them first")
    for job in jobs:
        delete_job(session, store, job_id=job.id)
    session.delete(study)
    session.flush()


def unreferenced_keys(session: Session, store: ArtifactStore) -> list[str]:
    """The files of the artifact store that nothing points to: no artifact row, no registered
    model's checkpoint, no uploaded dataset, no existing job's folder."""
    kept = set(session.scalars(select(Artifact.uri)).all())
    uris = [
        *session.scalars(select(RegisteredModel.checkpoint_uri)).all(),
        *session.scalars(select(DatasetRow.uri)).all(),
    ]
    prefixes = [uri.rstrip("/") + "/" for uri in uris]
    jobs = set(session.scalars(select(Job.id)).all())

    def referenced(key: str) -> bool:
        parts = key.split("/")
        in_a_job = parts[0] == "jobs" and len(parts) > 1 and parts[1] in jobs
        return key in kept or in_a_job or any(key.startswith(p) for p in prefixes)

    return [key for key in store.all_keys() if not referenced(key)]


def collect_garbage(session: Session, store: ArtifactStore, *, older_than_seconds: float = 3600) -> list[str]:
    """Delete the files nothing points to (`unreferenced_keys`). Files younger than
    `older_than_seconds` are left alone (a writer may not have recorded them yet). Returns the
    deleted keys."""
    deleted, now = [], time.time()
    for key in unreferenced_keys(session, store):
        if now - store.modified(key) < older_than_seconds:
            continue
        store.delete(key)
        deleted.append(key)
    if deleted:
        log.info("collected %d artifact file(s) nothing pointed to", len(deleted))
    return deleted


def delete_dataset(session: Session, store: ArtifactStore, *, dataset_id: str) -> None:
    """An uploaded dataset with its arrays.

    Raises:
        InUse: a queued or running job reads it, or a registered model was trained on it.
    """
    row = session.get(DatasetRow, dataset_id)
    if row is None:
        return
    if users := _unfinished_naming(session, "dataset", dataset_id):
        raise InUse(f"dataset {dataset_id}", "is used by unfinished job(s)", _jobs(users), "cancel them first")
    label = DataSpec(name="uploaded", dataset_id=dataset_id).label
    if models := session.scalars(select(RegisteredModel.id).where(RegisteredModel.dataset == label)).all():
        blockers = [("model", ident) for ident in models]  # their test images and evaluations read it
        raise InUse(f"dataset {dataset_id}", "is the data of registered model(s)", blockers, "delete them first")
    prefix = row.uri.rstrip("/") + "/"
    session.execute(delete(Artifact).where(Artifact.uri.startswith(prefix)))
    remove_after_commit(session, store, row.uri, tree=True)
    session.delete(row)
    session.flush()
