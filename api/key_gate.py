"""ASGI middleware, outermost: a `/v1` request's API key is checked before anything reads its body,
so that a caller without a valid key gets 401 whatever it sends (no upload of theirs is received,
spooled or parsed), and a form upload is refused by its declared length before it is read (the
routes bound each file exactly; this bounds what reaches them)."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool

from api.deps import INVALID_KEY, MISSING_KEY, known_caller
from api.json_guard import refuse
from core.settings import Settings, get_settings
from core.store.db import session_scope

FORM_OVERHEAD = 1024 * 1024  # multipart boundaries and the spec fields beside the file
CHALLENGE = [(b"www-authenticate", b"Bearer")]


def _settings(scope) -> Settings:
    """The app's settings, as its routes get them (a test's override included)."""
    app = scope.get("app")
    overrides = getattr(app, "dependency_overrides", {})
    return overrides.get(get_settings, get_settings)()


def _header(scope, name: bytes) -> list[bytes]:
    return [v for k, v in scope.get("headers") or [] if k.lower() == name]


def bearer_key(scope) -> str | None:
    values = _header(scope, b"authorization")
    if len(values) != 1:
        return None
    scheme, _, key = values[0].decode("latin-1").partition(" ")
    return key.strip() or None if scheme.lower() == "bearer" else None


def _caller(settings: Settings, key: str):
    with session_scope(settings.database_url) as session:
        return known_caller(session, settings, key)


def form_problem(scope, settings: Settings) -> tuple[int, str] | None:
    """Why a form upload is refused before it is read: no declared length, or one past the largest
    file any route takes."""
    content_type = b"".join(_header(scope, b"content-type")).lower()
    if not content_type.startswith((b"multipart/", b"application/x-www-form-urlencoded")):
        return None
    limit = max(settings.max_upload_bytes, settings.max_model_bytes, settings.max_dataset_bytes) + FORM_OVERHEAD
    lengths = _header(scope, b"content-length")
    if len(lengths) != 1 or not lengths[0].isdigit():
        return 411, "an upload needs one Content-Length header"
    if int(lengths[0]) > limit:
        return 413, f"request body larger than {limit} bytes"
    return None


class KeyGate:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not (scope["path"] == "/v1" or scope["path"].startswith("/v1/")):
            return await self.app(scope, receive, send)
        settings = _settings(scope)
        key = bearer_key(scope)
        caller = await run_in_threadpool(_caller, settings, key) if key else None
        if caller is None:
            return await refuse(send, 401, INVALID_KEY if key else MISSING_KEY, CHALLENGE)
        if problem := form_problem(scope, settings):
            return await refuse(send, *problem)
        scope.setdefault("state", {})["caller"] = caller  # require_key takes it from here
        return await self.app(scope, receive, send)
