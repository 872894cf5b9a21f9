"""Request dependencies: settings, a database session, the caller (key, user, role), the queue."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Annotated

import redis
from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from api.queue import JobQueue, queue_for
from core.contract.names import Role
from core.settings import Settings, get_settings
from core.store.db import session_scope
from core.store.keys import KEYS_GENERATION, hash_key, verify_key
from core.store.orm import utcnow

SettingsDep = Annotated[Settings, Depends(get_settings)]
MAX_OFFSET = 1_000_000_000  # list offsets beyond any real table (and inside a 64-bit SQL integer)


def get_session(settings: SettingsDep) -> Iterator[Session]:
    with session_scope(settings.database_url) as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]
MISSING_KEY = "missing API key: send Authorization: Bearer <key>"
INVALID_KEY = "invalid, expired or revoked API key"
_bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer <API key>")


KEY_CACHE_SECONDS = 30.0  # how long a process trusts a key it has checked, while no key changes


@dataclass(frozen=True)
class Caller:
    """Who is calling: the key, its user and the user's role."""

    key_id: str
    user_id: str
    name: str
    role: Role
    expires_at: datetime | None = None

    @property
    def admin(self) -> bool:
        return self.role == "admin"


_key_cache: dict[str, tuple[str, float, Caller]] = {}
_key_lock = threading.Lock()


@lru_cache
def redis_client(url: str) -> redis.Redis:
    """A client of the Redis every API process shares (short timeouts: a request must not hang)."""
    return redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)


def _keys_generation(redis_url: str) -> str | None:
    """The key-change counter every process shares, or None when Redis cannot be reached."""
    try:
        value = redis_client(redis_url).get(KEYS_GENERATION)
    except redis.RedisError:
        return None
    return (value or b"0").decode()


def known_caller(session: Session, settings: Settings, key: str) -> Caller | None:
    """The key's caller, from a per-process cache that is trusted only while Redis' key-change
    counter has not moved: a revocation anywhere takes effect on the next request everywhere,
    while a request costs one Redis GET instead of a database query."""
    digest, now = hash_key(key), time.monotonic()
    generation = _keys_generation(settings.redis_url)
    with _key_lock:
        hit = _key_cache.get(digest)
    if hit and generation is not None and hit[0] == generation and hit[1] > now:
        caller = hit[2]
        if caller.expires_at is None or caller.expires_at > utcnow():
            return caller
    found = verify_key(session, key=key)
    if found is None:
        return None
    row, user = found
    expires = row.expires_at if row.expires_at is None or row.expires_at.tzinfo else row.expires_at.replace(tzinfo=UTC)
    caller = Caller(key_id=row.id, user_id=user.id, name=user.name, role=user.role, expires_at=expires)
    if generation is not None:
        with _key_lock:
            if len(_key_cache) > 10_000:
                _key_cache.clear()
            _key_cache[digest] = (generation, now + KEY_CACHE_SECONDS, caller)
    return caller


def require_key(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Caller:
    """The caller `api.key_gate` checked before the body was read (else checked here)."""
    checked = request.scope.get("state", {}).get("caller")
    if checked is not None:
        return checked
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, MISSING_KEY, headers={"WWW-Authenticate": "Bearer"})
    caller = known_caller(session, settings, credentials.credentials)
    if caller is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, INVALID_KEY, headers={"WWW-Authenticate": "Bearer"})
    return caller


KeyDep = Annotated[Caller, Depends(require_key)]


def require_admin(caller: KeyDep) -> Caller:
    if not caller.admin:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "this needs an admin key")
    return caller


AdminDep = Annotated[Caller, Depends(require_admin)]


def get_queue(settings: SettingsDep) -> JobQueue:
    return queue_for(settings.redis_url)


QueueDep = Annotated[JobQueue, Depends(get_queue)]


def not_found(what: str, ident: str) -> HTTPException:
    """404 naming the id (cut short: ids are 32 characters; a caller's 60,000 are not echoed back)."""
    shown = ident if len(ident) <= 64 else ident[:64] + "…"
    return HTTPException(status.HTTP_404_NOT_FOUND, f"no {what} with id {shown!r}")
