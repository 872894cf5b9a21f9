"""The model registry: trained classifiers and diffusion models with their summary metrics."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.store.orm import Job, RegisteredModel
from core.store.pages import filtered_page
from core.store.privacy import made_by_private_job


def register_model(session: Session, **fields) -> RegisteredModel:
    """Register a model; a job's model is registered once: a re-run of the same job (after a crash
    between registering and finishing) updates the row it made instead of adding another. A model
    a private job registers is private (`core.store.privacy`)."""
    fields["private"] = made_by_private_job(session, fields.get("job_id"))
    existing = None
    if fields.get("job_id") is not None:
        existing = session.scalar(
            select(RegisteredModel).where(
                RegisteredModel.job_id == fields["job_id"], RegisteredModel.kind == fields.get("kind", "classifier")
            )
        )
    if existing is None:
        row = RegisteredModel(**fields)
        session.add(row)
    else:
        row = existing
        if "summary" in fields:
            fields["summary"] = _keeping_records(row.summary or {}, fields["summary"], row.job_id)
        for name, value in fields.items():
            setattr(row, name, value)
    session.flush()
    return row


# What other jobs record on a registered model (evaluations, certifications): a re-registration by
# its job keeps them after the ones the new summary brings (which replace the job's own).
RECORDS = ("evaluations", "certifications")


def _keeping_records(old: dict, new: dict, job_id: str) -> dict:
    merged = dict(new)
    for name in RECORDS:
        others = [r for r in old.get(name) or [] if r.get("job_id") != job_id]
        if others:
            merged[name] = list(new.get(name) or []) + others
    return merged


def record_evaluation(session: Session, *, model_id: str, entry: dict, key: str = "evaluations") -> bool:
    """Add one evaluation (its protocol, clean and robust accuracy, breakdown, checks) to the
    model's `summary[key]` (`evaluations`; `certifications` for randomized smoothing); a re-run of
    the same job replaces its own entry. A private job's evaluation of a shared model is not written
    into the shared summary (it would show private data's results to everyone): returns whether it
    was recorded."""
    row = session.get(RegisteredModel, model_id)
    if row is None:
        raise ValueError(f"no model with id {model_id}")
    job_id = entry.get("job_id")
    job = session.get(Job, job_id) if job_id else None
    if job is not None and job.private and not row.private:
        return False
    kept = [e for e in (row.summary or {}).get(key, []) if job_id is None or e.get("job_id") != job_id]
    row.summary = {**(row.summary or {}), key: [*kept, entry]}  # a new dict: the JSON column sees it
    session.flush()
    return True


def get_model(session: Session, *, model_id: str) -> RegisteredModel | None:
    return session.get(RegisteredModel, model_id)


def list_models(
    session: Session,
    *,
    kind: str | None = None,
    dataset: str | None = None,
    activation: str | None = None,
    limit: int = 50,
    offset: int = 0,
    where=None,
) -> tuple[list[RegisteredModel], int]:
    """A page of registered models, newest first, and the total count matching the filters (and
    `where`, an SQL condition such as what a caller may see)."""
    filters = {RegisteredModel.kind: kind, RegisteredModel.dataset: dataset, RegisteredModel.activation: activation}
    return filtered_page(session, RegisteredModel, filters, limit=limit, offset=offset, where=where)
