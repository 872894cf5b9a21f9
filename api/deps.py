"""Request dependencies: settings, a database session, the caller's API key, the queue."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, HTTPException, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from api.queue import JobQueue, queue_for
from core.settings import Settings, get_settings
from core.store.db import session_scope
from core.store.keys import hash_key, verify_key
from core.store.orm import ApiKey

SettingsDep = Annotated[Settings, Depends(get_settings)]
MAX_OFFSET = 1_000_000_000  # list offsets beyond any real table (and inside a 64-bit SQL integer)


def get_session(settings: SettingsDep) -> Iterator[Session]:
    with session_scope(settings.database_url) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]
_bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer <API key>")


KEY_CACHE_SECONDS = 30.0  # a revoked key stops working within this time
_key_cache: dict[str, tuple[float, ApiKey]] = {}
_key_lock = threading.Lock()


def _known_key(session: Session, key: str) -> ApiKey | None:
    """The key's row, from a short-lived per-process cache (saves a query on every request)."""
    digest, now = hash_key(key), time.monotonic()
    with _key_lock:
        hit = _key_cache.get(digest)
    if hit and hit[0] > now:
        return hit[1]
    row = verify_key(session, key=key)
    if row is not None:
        session.expunge(row)
        with _key_lock:
            if len(_key_cache) > 10_000:
                _key_cache.clear()
            _key_cache[digest] = (now + KEY_CACHE_SECONDS, row)
    return row


def require_key(
    session: SessionDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> ApiKey:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing API key: send Authorization: Bearer <key>",
            headers={"WWW-Authenticate": "Bearer"},
        )
    key = _known_key(session, credentials.credentials)
    if key is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "invalid or revoked API key", headers={"WWW-Authenticate": "Bearer"}
        )
    return key


KeyDep = Annotated[ApiKey, Depends(require_key)]


def get_queue(settings: SettingsDep) -> JobQueue:
    return queue_for(settings.redis_url)


QueueDep = Annotated[JobQueue, Depends(get_queue)]


def not_found(what: str, ident: str) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, f"no {what} with id {ident!r}")
