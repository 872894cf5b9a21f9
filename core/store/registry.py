"""The model registry: trained classifiers and diffusion models with their summary metrics."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.store.orm import RegisteredModel


def register_model(session: Session, **fields) -> RegisteredModel:
    row = RegisteredModel(**fields)
    session.add(row)
    session.flush()
    return row


def get_model(session: Session, *, model_id: str) -> RegisteredModel | None:
    return session.get(RegisteredModel, model_id)


def list_models(session: Session, *, kind: str | None = None, dataset: str | None = None,
                activation: str | None = None, limit: int = 50, offset: int = 0) -> tuple[list[RegisteredModel], int]:  # fmt: skip
    query = select(RegisteredModel)
    for column, value in ((RegisteredModel.kind, kind), (RegisteredModel.dataset, dataset),
                          (RegisteredModel.activation, activation)):  # fmt: skip
        if value is not None:
            query = query.where(column == value)
    total = session.scalar(select(func.count()).select_from(query.subquery()))
    rows = session.scalars(
        query.order_by(RegisteredModel.created_at.desc()).limit(limit).offset(offset)
    ).all()
    return list(rows), int(total or 0)
