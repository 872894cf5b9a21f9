"""A `/v1` request's key is checked before its body is read: without a valid key, whatever the body
(a huge upload, malformed multipart, broken or deep JSON), the answer is 401 and not one byte of
it is received; with a key, a form upload declared past every route's limit is refused unread."""

from __future__ import annotations

import asyncio

import pytest

BODIES = {
    "huge multipart": (b"multipart/form-data; boundary=x", 64 * 2**20),
    "malformed multipart": (b"multipart/form-data; boundary=x", 10),
    "broken JSON": (b"application/json", 1),
    "2 MiB of JSON": (b"application/json", 2 * 2**20),
}


def call(app, path: str, headers: list[tuple[bytes, bytes]]) -> tuple[int, bytes, int]:
    """(status, body, messages of the request body the app asked for) of one POST straight to the app."""
    asked, sent = [], []

    async def receive():
        asked.append(1)
        return {"type": "http.request", "body": b"{", "more_body": False}

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 1),
        "server": ("testserver", 80),
        "app": app,
    }
    asyncio.run(app(scope, receive, send))
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, body, len(asked)


@pytest.mark.parametrize("body", list(BODIES))
@pytest.mark.parametrize("key", [None, "rl_not-a-key"], ids=["no key", "wrong key"])
@pytest.mark.parametrize("path", ["/v1/models", "/v1/datasets", "/v1/attacks", "/v1/jobs"])
def test_no_valid_key_no_body_read(api, path, key, body):
    content_type, length = BODIES[body]
    headers = [(b"content-type", content_type), (b"content-length", str(length).encode())]
    if key:
        headers.append((b"authorization", f"Bearer {key}".encode()))
    status, text, asked = call(api.app, path, headers)
    assert status == 401 and b"API key" in text
    assert asked == 0, "the body was not read"


def test_a_form_upload_past_every_limit_is_refused_unread(api):
    key = api.headers["Authorization"].encode()
    big = [(b"authorization", key), (b"content-type", b"multipart/form-data; boundary=x")]
    status, text, asked = call(api.app, "/v1/models", [*big, (b"content-length", str(2**40).encode())])
    assert status == 413 and asked == 0, text
    status, text, asked = call(api.app, "/v1/models", big)  # no declared length: nothing to bound it by
    assert status == 411 and asked == 0, text


def test_a_checked_key_still_reaches_the_routes(api):
    assert api.get("/v1/me").status_code == 200
    assert api.post("/v1/jobs", content=b"{").status_code == 422  # the body read and refused, with a key
