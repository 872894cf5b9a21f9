"""API keys: a key holder can create another (for a colleague, a script, the dashboard)."""

from __future__ import annotations

from fastapi import APIRouter, status

from api.deps import KeyDep, SessionDep
from api.schemas import KeyIn, KeyOut
from core.store.keys import create_key

router = APIRouter(prefix="/v1/keys", tags=["keys"])


@router.post("", status_code=status.HTTP_201_CREATED, response_model=KeyOut)
def new_key(body: KeyIn, session: SessionDep, _: KeyDep) -> dict:
    row, key = create_key(session, name=body.name)
    return {"id": row.id, "name": row.name, "key": key}
