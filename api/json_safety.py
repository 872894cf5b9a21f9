"""JSON with numbers JSON has: NaN and ±Infinity (which Python's and JavaScript's JSON writers emit)
are refused in requests with a 422 naming the field, and never leave in a response.

- Specs refuse non-finite numbers (`allow_inf_nan=False` in `core.contract.specs.Spec`); the 422
  body that explains why echoes the bad input, so it is made JSON-safe here first.
- A response holding a non-finite float (a diverged run's NaN loss, say) carries `null` there.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request, status
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError

from core.store.orm import finite


class FiniteJSONResponse(JSONResponse):
    """The API's responses: standard JSON, non-finite floats as null, text escaped to ASCII (so a
    lone surrogate echoed from a request is written as its escape, not a failed UTF-8 encoding)."""

    def render(self, content: Any) -> bytes:
        return json.dumps(finite(content), ensure_ascii=True, allow_nan=False, separators=(",", ":")).encode()


async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
    """FastAPI's 422 body, with a non-finite input echoed as the string JSON writers use for it."""
    detail = finite(
        jsonable_encoder(exc.errors()),
        replace=json.dumps,  # NaN, Infinity, -Infinity: what JSON writers emit for them
    )
    return FiniteJSONResponse(status_code=status.HTTP_422_UNPROCESSABLE_CONTENT, content={"detail": detail})


async def value_refused(_: Request, exc: DataError) -> JSONResponse:
    """A value the database cannot store (text with a NUL character on PostgreSQL, a number past its
    column) that no validation caught: a 422 naming the database's reason, not a 500."""
    reason = str(exc.orig).splitlines()[0] if exc.orig is not None else "invalid value"
    return FiniteJSONResponse(
        status_code=status.HTTP_422_UNPROCESSABLE_CONTENT, content={"detail": f"the database refused a value: {reason}"}
    )
