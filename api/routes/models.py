"""The model registry."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.deps import MAX_OFFSET, KeyDep, SessionDep, not_found
from api.schemas import ModelList, ModelOut
from core.store.orm import RegisteredModel
from core.store.registry import get_model, list_models

router = APIRouter(prefix="/v1/models", tags=["models"])


@router.get("", response_model=ModelList)
def list_registered(
    session: SessionDep,
    _: KeyDep,
    kind: str | None = None,
    dataset: str | None = None,
    activation: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> dict:
    items, total = list_models(session, kind=kind, dataset=dataset, activation=activation, limit=limit, offset=offset)
    return {"items": items, "total": total, "limit": limit, "offset": offset}


@router.get("/{model_id}", response_model=ModelOut)
def read_model(model_id: str, session: SessionDep, _: KeyDep) -> RegisteredModel:
    row = get_model(session, model_id=model_id)
    if row is None:
        raise not_found("model", model_id)
    return row
