"""Request dependencies: settings, a database session, the caller's API key, the queue."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, HTTPException, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from api.queue import JobQueue, queue_for
from core.settings import Settings, get_settings
from core.store.db import session_scope
from core.store.keys import verify_key
from core.store.orm import ApiKey

SettingsDep = Annotated[Settings, Depends(get_settings)]


def get_session(settings: SettingsDep) -> Iterator[Session]:
    with session_scope(settings.database_url) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]
_bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer <API key>")


def require_key(session: SessionDep,
                credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> ApiKey:  # fmt: skip
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "missing API key: send Authorization: Bearer <key>",
                            headers={"WWW-Authenticate": "Bearer"})  # fmt: skip
    key = verify_key(session, key=credentials.credentials)
    if key is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "invalid or revoked API key",
                            headers={"WWW-Authenticate": "Bearer"})  # fmt: skip
    return key


KeyDep = Annotated[ApiKey, Depends(require_key)]


def get_queue(settings: SettingsDep) -> JobQueue:
    return queue_for(settings.redis_url)


QueueDep = Annotated[JobQueue, Depends(get_queue)]


def not_found(what: str, ident: str) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, f"no {what} with id {ident!r}")
