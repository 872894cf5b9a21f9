"""Users and their API keys: random tokens shown once, stored as SHA-256 hashes; a key belongs to a
user, whose role (admin or member) it carries, and may expire or be revoked."""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.contract.names import ROLES, Role
from core.store.orm import ApiKey, User, utcnow

PREFIX = "rl_"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def ensure_user(session: Session, *, name: str, role: Role | None = None) -> User:
    """The user `name`, created with `role` (default member) if new; an existing user's role is
    changed only when `role` is given.

    Raises:
        ValueError: an unknown role.
    """
    if role is not None and role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    user = session.scalar(select(User).where(User.name == name))
    if user is None:
        user = User(name=name, role=role or "member")
        session.add(user)
    elif role is not None:
        user.role = role
    session.flush()
    return user


def create_key(
    session: Session, *, name: str, user: User | None = None, expires_at: datetime | None = None
) -> tuple[ApiKey, str]:
    """A new key of `user` (default: a member user called `name`); returns the row and the plain
    key, the only time it exists in clear."""
    user = user or ensure_user(session, name=name)
    key = PREFIX + secrets.token_urlsafe(32)
    row = ApiKey(name=name, prefix=key[:10], key_hash=hash_key(key), user_id=user.id, expires_at=expires_at)
    session.add(row)
    session.flush()
    return row, key


def verify_key(session: Session, *, key: str) -> tuple[ApiKey, User] | None:
    """The key's row and its user, if the key exists, is not revoked and has not expired."""
    if not key.startswith(PREFIX):
        return None
    found = session.execute(
        select(ApiKey, User).join(User, ApiKey.user_id == User.id).where(ApiKey.key_hash == hash_key(key))
    ).first()
    if found is None:
        return None
    row, user = found
    if row.revoked or (row.expires_at is not None and _aware(row.expires_at) <= utcnow()):
        return None
    return row, user


def revoke_key(session: Session, *, key_id: str) -> ApiKey | None:
    """Revoke a key (idempotent); None if there is no such key."""
    row = session.get(ApiKey, key_id)
    if row is not None and not row.revoked:
        row.revoked, row.revoked_at = True, utcnow()
        session.flush()
    return row


def ensure_key(session: Session, *, name: str, key: str, role: Role = "admin") -> ApiKey:
    """Make a key the operator chose (a deployment's bootstrap key) valid, as a key of the user
    `name` with `role` (default admin); idempotent.

    Raises:
        ValueError: the key does not start with `rl_` or is shorter than 32 characters.
    """
    if not key.startswith(PREFIX) or len(key) < 32:
        raise ValueError(f"a key must start with {PREFIX!r} and be at least 32 characters long")
    user = ensure_user(session, name=name, role=role)
    row = session.scalar(select(ApiKey).where(ApiKey.key_hash == hash_key(key)))
    if row is None:
        row = ApiKey(name=name, prefix=key[:10], key_hash=hash_key(key), user_id=user.id)
        session.add(row)
    else:
        row.user_id, row.revoked, row.revoked_at, row.expires_at = user.id, False, None, None
    session.flush()
    return row


def _aware(t: datetime) -> datetime:
    """SQLite returns naive datetimes for timezone-aware columns: they are UTC."""
    return t if t.tzinfo else t.replace(tzinfo=UTC)


KEYS_GENERATION = "robustlab:keys:generation"  # in Redis: bumped by every revocation or role change


def announce_key_change(redis_url: str) -> bool:
    """Tell every API process that a key or role changed (their key caches start over); False
    when Redis cannot be reached (caches then keep a revoked key for at most their lifetime)."""
    import redis

    try:
        redis.Redis.from_url(redis_url, socket_timeout=2).incr(KEYS_GENERATION)
        return True
    except redis.RedisError:
        return False
