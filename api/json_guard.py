"""Request bodies that could only crash a parser are refused before one runs: JSON nested deeper
than `MAX_JSON_DEPTH` (Python's parsers and validators recurse: 1,000 levels is a RecursionError
and a 500), bodies larger than `MAX_JSON_BYTES`, bytes that are not UTF-8, text holding a
lone UTF-16 surrogate (`"\\ud800"` is valid JSON but no UTF-8 string: it fails the first write to
the database or to a response), and a NUL character in a JSON string or in the URL (PostgreSQL
stores no NUL in text: the first query with it was a 500). Each answer is a 4xx naming the limit.

`json_depth` also bounds the header of an uploaded safetensors file (`api.uploads`).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import unquote_to_bytes

MAX_JSON_DEPTH = 64  # a job spec is 4 levels deep; 64 leaves room and stays far from recursion limits
MAX_JSON_BYTES = 1 << 20  # a spec, a study or a key request; files come as multipart uploads
_OPEN, _CLOSE, _QUOTE, _BACKSLASH = frozenset(b"[{"), frozenset(b"]}"), ord('"'), ord("\\")


def json_depth(data: bytes, stop_above: int = MAX_JSON_DEPTH) -> int:
    """How deep the arrays and objects of the JSON text `data` nest (brackets inside strings are
    not counted); stops counting once past `stop_above`. Iterative: any input is safe."""
    depth = deepest = 0
    in_string = escaped = False
    for byte in data:
        if in_string:
            if escaped:
                escaped = False
            elif byte == _BACKSLASH:
                escaped = True
            elif byte == _QUOTE:
                in_string = False
        elif byte == _QUOTE:
            in_string = True
        elif byte in _OPEN:
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > stop_above:
                    return deepest
        elif byte in _CLOSE:
            depth -= 1
    return deepest


def _unstorable(text: str) -> bool:
    return "\x00" in text or any("\ud800" <= ch <= "\udfff" for ch in text)


def unstorable_text(value: Any, path: str = "body") -> str | None:
    """Where in a parsed JSON value a string (or an object's key) holds a lone surrogate or a NUL
    character, or None."""
    stack = [(value, path)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str):
            if _unstorable(item):
                return where
        elif isinstance(item, dict):
            for key, inner in item.items():
                if _unstorable(key):
                    return f"{where} (a key)"
                stack.append((inner, f"{where}.{key}"))
        elif isinstance(item, list):
            stack.extend((inner, f"{where}[{i}]") for i, inner in enumerate(item))
    return None


def body_problem(body: bytes) -> tuple[int, str] | None:
    """(status, message) for a JSON request body that is refused, or None to let it through (a
    body that is not JSON at all is left to the route's own validation)."""
    if json_depth(body) > MAX_JSON_DEPTH:
        return 422, f"JSON nested deeper than {MAX_JSON_DEPTH} levels"
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as e:
        return 422, f"request body is not UTF-8 (byte {e.start})"
    try:
        value = json.loads(text)
    except ValueError:
        return None
    if (where := unstorable_text(value)) is not None:
        return 422, f"{where}: text holds a lone UTF-16 surrogate (not valid Unicode) or a NUL character"
    return None


def url_problem(scope) -> str | None:
    """Why a request's path or query is refused (a NUL character in it), or None."""
    if "\x00" in scope.get("path", "") or b"\x00" in unquote_to_bytes(scope.get("query_string", b"")):
        return "the URL holds a NUL character (%00)"
    return None


class JSONGuard:
    """ASGI middleware: reads a request's body whole (up to the limit), refuses it per
    `body_problem`, and hands the same bytes on. Multipart and form bodies pass untouched (their
    fields are bounded by their routes)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and (problem := url_problem(scope)):
            return await refuse(send, 422, problem)
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            return await self.app(scope, receive, send)
        declared = [v.lower() for k, v in scope.get("headers") or [] if k.lower() == b"content-type"]
        if len(declared) > 1:  # the guard and the route could read different ones
            return await refuse(send, 400, "more than one Content-Type header")
        content_type = declared[0] if declared else b""
        if content_type.startswith((b"multipart/", b"application/x-www-form-urlencoded")):
            return await self.app(scope, receive, send)
        chunks, size, more = [], 0, True
        while more and size <= MAX_JSON_BYTES:  # past the limit: refused without reading the rest
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        problem = (
            body_problem(body) if size <= MAX_JSON_BYTES else (413, f"request body larger than {MAX_JSON_BYTES} bytes")
        )
        if problem is not None:
            return await refuse(send, *problem)
        delivered = False

        async def replay():
            nonlocal delivered
            if delivered:
                return await receive()
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        return await self.app(scope, replay, send)


async def refuse(send, status: int, message: str, extra_headers: list | None = None) -> None:
    """Answer `status` with `{"detail": message}` (before the app has seen the request)."""
    payload = json.dumps({"detail": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    headers += extra_headers or []
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
