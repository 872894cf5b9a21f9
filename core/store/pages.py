"""One page of a filtered listing, newest first, with the total count: shared by every list."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session


def filtered_page(
    session: Session, entity, filters: dict[Any, Any], *, limit: int, offset: int, where=None
) -> tuple[list, int]:
    """Rows of `entity` whose columns equal the non-None values of `filters` ({column: value}) and
    that meet `where` (an SQL condition, if any), newest first (ties by id), and how many match."""
    query = select(entity) if where is None else select(entity).where(where)
    for column, value in filters.items():
        if value is not None:
            query = query.where(column == value)
    total = session.scalar(select(func.count()).select_from(query.subquery()))
    rows = session.scalars(query.order_by(entity.created_at.desc(), entity.id).limit(limit).offset(offset)).all()
    return list(rows), int(total or 0)
