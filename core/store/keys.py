"""API keys: random tokens shown once, stored as SHA-256 hashes."""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.store.orm import ApiKey

PREFIX = "rl_"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(session: Session, *, name: str) -> tuple[ApiKey, str]:
    """A new key; returns the row and the plain key (the only time it exists in clear)."""
    key = PREFIX + secrets.token_urlsafe(32)
    row = ApiKey(name=name, prefix=key[:10], key_hash=hash_key(key))
    session.add(row)
    session.flush()
    return row, key


def verify_key(session: Session, *, key: str) -> ApiKey | None:
    if not key.startswith(PREFIX):
        return None
    return session.scalar(select(ApiKey).where(ApiKey.key_hash == hash_key(key), ApiKey.revoked.is_(False)))


def ensure_key(session: Session, *, name: str, key: str) -> ApiKey:
    """Make a key the operator chose (a deployment's bootstrap key) valid; idempotent.

    Raises:
        ValueError: the key does not start with `rl_` or is shorter than 32 characters.
    """
    if not key.startswith(PREFIX) or len(key) < 32:
        raise ValueError(f"a key must start with {PREFIX!r} and be at least 32 characters long")
    row = verify_key(session, key=key)
    if row is None:
        row = ApiKey(name=name, prefix=key[:10], key_hash=hash_key(key))
        session.add(row)
        session.flush()
    return row
