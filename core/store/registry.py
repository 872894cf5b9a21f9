"""The model registry: trained classifiers and diffusion models with their summary metrics."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.store.orm import RegisteredModel
from core.store.pages import filtered_page


def register_model(session: Session, **fields) -> RegisteredModel:
    """Register a model; a job's model is registered once: a re-run of the same job (after a crash
    between registering and finishing) updates the row it made instead of adding another."""
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
        for name, value in fields.items():
            setattr(row, name, value)
    session.flush()
    return row


def record_evaluation(session: Session, *, model_id: str, entry: dict) -> None:
    """Add one evaluation (its protocol, clean and robust accuracy, breakdown, checks) to the
    model's `summary["evaluations"]`; a re-run of the same job replaces its own entry."""
    row = session.get(RegisteredModel, model_id)
    if row is None:
        raise ValueError(f"no model with id {model_id}")
    job_id = entry.get("job_id")
    kept = [e for e in (row.summary or {}).get("evaluations", []) if job_id is None or e.get("job_id") != job_id]
    row.summary = {**(row.summary or {}), "evaluations": [*kept, entry]}  # a new dict: the JSON column sees it
    session.flush()


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
) -> tuple[list[RegisteredModel], int]:
    """A page of registered models, newest first, and the total count matching the filters."""
    filters = {RegisteredModel.kind: kind, RegisteredModel.dataset: dataset, RegisteredModel.activation: activation}
    return filtered_page(session, RegisteredModel, filters, limit=limit, offset=offset)
