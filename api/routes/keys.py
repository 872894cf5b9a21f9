"""Keys, users and the audit log. A member makes and revokes keys of their own; an admin makes keys
for anyone (with a role), revokes any key and reads the audit log. A revoked or expired key stops
working at once on every API process (`announce_key_change`)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Response, status
from sqlalchemy import select

from api.deps import MAX_OFFSET, AdminDep, KeyDep, SessionDep, SettingsDep, not_found
from api.schemas import AuditOut, KeyIn, KeyInfo, KeyOut, Me
from core.store import audit
from core.store.keys import announce_key_change, create_key, ensure_user, revoke_key
from core.store.orm import ApiKey, User, utcnow

router = APIRouter(tags=["keys"])


@router.get("/v1/me", response_model=Me)
def whoami(caller: KeyDep) -> dict:
    """The caller's user, role and key."""
    return {"user_id": caller.user_id, "name": caller.name, "role": caller.role, "key_id": caller.key_id}


@router.post("/v1/keys", status_code=status.HTTP_201_CREATED, response_model=KeyOut)
def new_key(body: KeyIn, session: SessionDep, settings: SettingsDep, caller: KeyDep) -> dict:
    """A new key, shown once. Members: a member key of their own, expiring no later than the key
    that asks (a key given for a week cannot make one for ever). Admins: for `user` (created if
    new) with `role`; changing an existing user's role takes effect at once everywhere."""
    if not caller.admin and (body.user not in (None, caller.name) or body.role not in (None, "member")):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "only an admin makes keys for others or admin keys")
    user = ensure_user(session, name=body.user or caller.name, role=body.role if caller.admin else None)
    expires = utcnow() + timedelta(days=body.expires_in_days) if body.expires_in_days else None
    if not caller.admin and caller.expires_at is not None:
        expires = min(expires or caller.expires_at, caller.expires_at)
    row, key = create_key(session, name=body.name, user=user, expires_at=expires)
    audit.record(
        session,
        user_id=caller.user_id,
        user_name=caller.name,
        action="create",
        object_type="key",
        object_id=row.id,
        detail={"user": user.name, "role": user.role, "expires_at": str(expires)},
    )
    session.commit()
    if body.role is not None and caller.admin:
        announce_key_change(settings.redis_url)  # the user's other keys carry the new role at once
    return {"id": row.id, "name": row.name, "user": user.name, "role": user.role, "expires_at": expires, "key": key}


@router.get("/v1/keys", response_model=list[KeyInfo])
def list_keys(session: SessionDep, caller: KeyDep, user: str | None = None) -> list[dict]:
    """The caller's keys (an admin: everyone's, or `user`'s); never the keys themselves."""
    query = select(ApiKey, User).join(User, ApiKey.user_id == User.id).order_by(ApiKey.created_at.desc())
    if not caller.admin:
        query = query.where(User.id == caller.user_id)
    elif user is not None:
        query = query.where(User.name == user)
    return [
        {
            "id": k.id,
            "name": k.name,
            "prefix": k.prefix,
            "user": u.name,
            "role": u.role,
            "revoked": k.revoked,
            "expires_at": k.expires_at,
            "created_at": k.created_at,
        }
        for k, u in session.execute(query).all()
    ]


@router.delete("/v1/keys/{key_id}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
def remove_key(key_id: str, session: SessionDep, settings: SettingsDep, caller: KeyDep) -> Response:
    """Revoke a key (one's own, or any for an admin): it stops working at once on every process."""
    row = session.get(ApiKey, key_id)
    if row is None or not (caller.admin or row.user_id == caller.user_id):
        raise not_found("key", key_id)  # another member's key is private
    revoke_key(session, key_id=key_id)
    audit.record(
        session, user_id=caller.user_id, user_name=caller.name, action="revoke", object_type="key", object_id=key_id
    )
    session.commit()
    announce_key_change(settings.redis_url)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/v1/audit", response_model=list[AuditOut])
def read_audit(
    session: SessionDep,
    _: AdminDep,
    user_id: str | None = None,
    action: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> list:
    """Who did what, newest first (admins only)."""
    return audit.entries(session, user_id=user_id, action=action, limit=limit, offset=offset)
