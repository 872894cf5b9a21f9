"""An API app against a real database (SQLite, and PostgreSQL when reachable) with a recording
queue in place of Redis: these tests isolate the HTTP layer. The integration tests use the real
broker and workers."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from api.deps import get_queue
from api.main import create_app
from core.settings import Settings, get_settings
from core.store.db import session_scope
from core.store.keys import create_key, ensure_user
from core.store.migrate import upgrade
from core.store.registry import register_model
from tests.dbs import database_url


class RecordingQueue:
    def __init__(self):
        self.sent: list[tuple[str, str]] = []

    def send(self, job_id: str, queue: str) -> None:
        self.sent.append((job_id, queue))


def make_app(url: str, tmp_path):
    """An app on the database at `url` (migrated), with an admin key, a registered model and a
    recording queue; returns (app, key, queue, model_id, settings)."""
    upgrade(url)
    settings = Settings(
        database_url=url,
        artifact_url=str(tmp_path / "artifacts"),
        work_dir=tmp_path / "work",
        interactive_wait_seconds=0,
        max_upload_bytes=200_000,
        max_image_pixels=1_000_000,
        max_epochs=50,
    )
    with session_scope(url) as s:
        _, key = create_key(s, name="tester", user=ensure_user(s, name="tester", role="admin"))
        model = register_model(
            s,
            kind="classifier",
            name="m",
            dataset="digits",
            architecture="small_cnn",
            activation="relu",
            checkpoint_uri="jobs/x/checkpoint",
            summary={},
            recipe={"model": {"in_channels": 1, "image_size": 8}},
        )
        model_id = model.id
    queue = RecordingQueue()
    app = create_app()
    app.dependency_overrides[get_settings] = lambda: settings
    app.dependency_overrides[get_queue] = lambda: queue
    return app, key, queue, model_id, settings


@pytest.fixture(params=["sqlite", "postgres"])
def api(request, tmp_path):
    url, cleanup = database_url(request.param, tmp_path)
    app, key, queue, model_id, settings = make_app(url, tmp_path)
    client = TestClient(app)
    client.headers["Authorization"] = f"Bearer {key}"
    client.queue, client.model_id, client.settings = queue, model_id, settings
    yield client
    client.close()
    cleanup()
