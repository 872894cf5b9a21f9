"""The Celery app. Its configuration (`worker.celeryconfig`) is read when first needed, not at
import.

Start a worker with: celery -A worker.app worker -Q train --pool solo --concurrency 1
(one process per GPU, `CUDA_VISIBLE_DEVICES` choosing the GPU; `make up` does this).
"""

from __future__ import annotations

from celery import Celery


def create_app() -> Celery:
    app = Celery("robustlab")
    app.config_from_object("worker.celeryconfig")
    import worker.tasks  # noqa: F401  (registers the task)

    return app


app = create_app()
