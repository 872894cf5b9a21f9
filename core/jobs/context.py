"""What a runner gets from `execute_job`: the store-backed progress reporter and stop check, the
artifact store, a work folder and the model cache."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.orm import Session

from core.jobs.model_cache import ModelCache
from core.progress import Progress
from core.store import jobs as store_jobs
from core.store.artifacts import ArtifactStore

PROGRESS_INTERVAL = 0.5  # seconds between progress writes without new metrics
STOP_CHECK_INTERVAL = 0.5  # seconds between reads of the cancel flag


class JobStopped(Exception):
    """The job was cancelled, or its lease moved to another worker."""


@dataclass
class JobContext:
    job_id: str
    session: Callable[[], AbstractContextManager[Session]]
    store: ArtifactStore
    work_dir: Path
    models: ModelCache
    device: str
    lease_lost: threading.Event = field(default_factory=threading.Event)
    _last_progress: float = 0.0
    _last_stop_check: float = 0.0
    _stop: bool = False

    def progress(self, p: Progress) -> None:
        """Write progress (throttled) and any metrics to the store."""
        now = time.monotonic()
        if not p.metrics and p.fraction < 1.0 and now - self._last_progress < PROGRESS_INTERVAL:
            return
        self._last_progress = now
        with self.session() as s:
            store_jobs.report_progress(s, job_id=self.job_id, fraction=p.fraction, message=p.message)
            if p.metrics and p.step is not None:
                store_jobs.add_metrics(s, job_id=self.job_id, step=p.step, metrics=p.metrics)

    def scaled(self, start: float, end: float, metrics: bool = True) -> Callable[[Progress], None]:
        """A reporter for a stage spanning [start, end] of the whole job; its metrics are dropped
        when `metrics` is False."""

        def report(p: Progress) -> None:
            kept = p.metrics if metrics else {}
            self.progress(Progress(start + (end - start) * p.fraction, p.message, kept, p.step))

        return report

    def should_stop(self) -> bool:
        if self._stop or self.lease_lost.is_set():
            return True
        now = time.monotonic()
        if now - self._last_stop_check >= STOP_CHECK_INTERVAL:
            self._last_stop_check = now
            with self.session() as s:
                self._stop = store_jobs.cancel_requested(s, job_id=self.job_id)
        return self._stop
