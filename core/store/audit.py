"""The audit log: who submitted, cancelled, deleted, uploaded, created or revoked what, and when."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.store.orm import AuditEntry


def record(
    session: Session,
    *,
    user_id: str | None,
    user_name: str,
    action: str,
    object_type: str,
    object_id: str | None = None,
    detail: dict | None = None,
) -> AuditEntry:
    """One line of the log, in the caller's transaction (it is kept exactly when the action is)."""
    entry = AuditEntry(
        user_id=user_id,
        user_name=user_name,
        action=action,
        object_type=object_type,
        object_id=object_id,
        detail=detail or {},
    )
    session.add(entry)
    session.flush()
    return entry


def entries(
    session: Session, *, user_id: str | None = None, action: str | None = None, limit: int = 100, offset: int = 0
) -> list[AuditEntry]:
    """The newest entries first, optionally of one user or one action."""
    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit).offset(offset)
    if user_id is not None:
        query = query.where(AuditEntry.user_id == user_id)
    if action is not None:
        query = query.where(AuditEntry.action == action)
    return list(session.scalars(query).all())
