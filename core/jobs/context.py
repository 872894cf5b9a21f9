"""What a runner gets from `execute_job`: the store-backed progress reporter and stop check, the
artifact store, a work folder, the model cache, and the helpers every runner shares."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.orm import Session

from core.contract.names import ModelKind
from core.contract.progress import Progress, ProgressFn
from core.jobs.model_cache import ModelCache
from core.store import jobs as store_jobs
from core.store.artifacts import ArtifactStore, record_artifact
from core.store.registry import get_model
from core.training.checkpoint import has_checkpoint

PROGRESS_INTERVAL = 0.5  # seconds between progress writes without new metrics
STOP_CHECK_INTERVAL = 0.5  # seconds between reads of the cancel flag


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

    def scaled(self, start: float, end: float, metrics: bool = True) -> ProgressFn:
        """A reporter for a stage spanning [start, end] of the whole job; its metrics are dropped
        when `metrics` is False."""

        def report(p: Progress) -> None:
            kept = p.metrics if metrics else {}
            self.progress(Progress(start + (end - start) * p.fraction, p.message, kept, p.step))

        return report

    def should_stop(self) -> bool:
        """True once a cancel was requested or the lease moved to another worker."""
        if self._stop or self.lease_lost.is_set():
            return True
        now = time.monotonic()
        if now - self._last_stop_check >= STOP_CHECK_INTERVAL:
            self._last_stop_check = now
            with self.session() as s:
                self._stop = store_jobs.cancel_requested(s, job_id=self.job_id)
        return self._stop

    @property
    def checkpoint_prefix(self) -> str:
        """Where the job's checkpoint lives in the artifact store."""
        return f"jobs/{self.job_id}/checkpoint"

    def checkpoint_folder(self) -> Path:
        """The job's local checkpoint folder, filled from the artifact store when this node has
        none (a job resumed on another node after a crash)."""
        folder = self.work_dir / self.job_id
        if not has_checkpoint(folder):
            self.store.download_folder(self.checkpoint_prefix, folder)
        return folder

    def training_reporter(self, folder: Path, start: float, end: float) -> ProgressFn:
        """A reporter for a training stage spanning [start, end] of the job that copies the
        checkpoint to the artifact store each time an epoch ends (its metrics arrive)."""
        stage = self.scaled(start, end)

        def report(p: Progress) -> None:
            if p.metrics:
                self.store.upload_folder(folder, self.checkpoint_prefix)
            stage(p)

        return report

    def registered_model(self, model_id: str, kind: ModelKind) -> tuple:
        """The registered model `model_id` of `kind` (loaded once through the worker's cache) and
        the name of its dataset.

        Raises:
            ValueError: there is no model of that kind with that id.
        """
        with self.session() as s:
            row = get_model(s, model_id=model_id)
            if row is None or row.kind != kind:
                raise ValueError(f"no {kind} with id {model_id}")
            uri, dataset = row.checkpoint_uri, row.dataset
        return self.models.get(model_id, uri, self.store, self.device), dataset

    def save_artifact(self, session: Session, name: str, *, type: str, data: bytes):
        """Store `data` as the job's artifact `jobs/<job id>/<name>` and record it; returns the row."""
        return record_artifact(
            session, self.store, key=f"jobs/{self.job_id}/{name}", type=type, job_id=self.job_id, data=data
        )
