"""What a runner gets from `execute_job`: the store-backed progress reporter and stop check, the
artifact store, a work folder, the model cache, and the helpers every runner shares."""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.orm import Session

from core.contract.checkpoint import META_FILE, PREVIOUS
from core.contract.names import ModelKind
from core.contract.progress import Progress, ProgressFn, stop_if_asked
from core.contract.specs import DataSpec
from core.data.archive import ArchiveLimits
from core.data.by_index import test_image
from core.data.dataset import Dataset
from core.data.loaders import dataset_files_present, load_dataset
from core.jobs.model_cache import ModelCache
from core.jobs.outage import STORE_AWAY
from core.jobs.tracking import Tracker
from core.store import jobs as store_jobs
from core.store.artifacts import ArtifactStore, record_artifact
from core.store.orm import Artifact, DatasetRow, Job
from core.store.privacy import consumable, consume_upload
from core.store.registry import get_model
from core.training.checkpoint import has_checkpoint

log = logging.getLogger(__name__)
PROGRESS_INTERVAL = 0.5  # seconds between progress writes without new metrics
STOP_CHECK_INTERVAL = 0.5  # seconds between reads of the cancel flag


@contextlib.contextmanager
def one_at_a_time(lock: Path) -> Iterator[None]:
    """Hold an exclusive lock on the file `lock` while fetching files others may fetch too (the
    ranks of a `gpus` job, the jobs of this node): the first fetches, the others then find the
    files there. No time limit, unlike a barrier of the process group (a long download)."""
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _epoch(folder: Path) -> int:
    """The epoch of the checkpoint in `folder` (0 when its JSON cannot be read)."""
    try:
        return int(json.loads((folder / META_FILE).read_text()).get("epoch", 0))
    except (OSError, ValueError, AttributeError):
        return 0


@dataclass
class JobContext:
    job_id: str
    session: Callable[[], AbstractContextManager[Session]]
    store: ArtifactStore
    work_dir: Path
    models: ModelCache
    device: str
    owner_id: str | None = None  # the owning user: what the job registers is theirs
    data_root: Path = Path("var/data")  # the operator's folders, offered as `folder` datasets by name
    archive_limits: ArchiveLimits = field(default_factory=ArchiveLimits)  # what an uploaded dataset may hold
    outage_seconds: float = 300.0  # how long the job rides out its store being away
    lease_lost: threading.Event = field(default_factory=threading.Event)
    tracker: Tracker | None = None  # the job's MLflow run, when tracking is on
    time_limit: float | None = None  # seconds after which the job stops (the in-process kinds' limit)
    _started: float = field(default_factory=time.monotonic)
    _last_progress: float = 0.0
    _last_stop_check: float = 0.0
    _stop: bool = False
    _unwritten_metrics: list[tuple[int, dict]] = field(default_factory=list)

    def progress(self, p: Progress) -> None:
        """Write progress (throttled) and any metrics to the store. While the store is away (a
        database restart) the job trains on: metrics wait here and are written, in order, with the
        first progress after it is back."""
        now = time.monotonic()
        if p.metrics and p.step is not None:
            self._unwritten_metrics.append((p.step, dict(p.metrics)))
            if self.tracker is not None:
                self.tracker.log_metrics(p.metrics, p.step)
        if not self._unwritten_metrics and p.fraction < 1.0 and now - self._last_progress < PROGRESS_INTERVAL:
            return
        self._last_progress = now
        try:
            with self.session() as s:
                store_jobs.report_progress(s, job_id=self.job_id, fraction=p.fraction, message=p.message)
                for step, metrics in self._unwritten_metrics:
                    store_jobs.add_metrics(s, job_id=self.job_id, step=step, metrics=metrics)
            self._unwritten_metrics.clear()
        except STORE_AWAY:
            log.warning("job %s: the store is away; %d metric step(s) kept", self.job_id, len(self._unwritten_metrics))

    def scaled(self, start: float, end: float, metrics: bool = True) -> ProgressFn:
        """A reporter for a stage spanning [start, end] of the whole job; its metrics are dropped
        when `metrics` is False."""

        def report(p: Progress) -> None:
            kept = p.metrics if metrics else {}
            self.progress(Progress(start + (end - start) * p.fraction, p.message, kept, p.step))

        return report

    @property
    def timed_out(self) -> bool:
        return self.time_limit is not None and time.monotonic() - self._started > self.time_limit

    def should_stop(self) -> bool:
        """True once a cancel was requested, the lease moved to another worker or `time_limit` passed."""
        if self._stop or self.lease_lost.is_set() or self.timed_out:
            return True
        now = time.monotonic()
        if now - self._last_stop_check >= STOP_CHECK_INTERVAL:
            self._last_stop_check = now
            try:
                with self.session() as s:
                    self._stop = store_jobs.cancel_requested(s, job_id=self.job_id)
            except STORE_AWAY:  # the store is away: no cancel can have been requested meanwhile
                pass
        return self._stop

    @contextlib.contextmanager
    def stops_in(self, *models) -> Iterator[None]:
        """Check for a stop before the forward pass of every module of `models` (torch modules), for
        a runner whose loop runs inside a library call (an attack, an accuracy, a purifier's reverse
        chain): `Stopped` leaves from within it."""

        def check(_module, _inputs) -> None:
            stop_if_asked(self.should_stop)

        modules = {id(m): m for model in models for m in model.modules()}
        handles = [m.register_forward_pre_hook(check) for m in modules.values()]
        try:
            yield
        finally:
            for handle in handles:
                handle.remove()

    @property
    def checkpoint_prefix(self) -> str:
        """Where the job's checkpoint lives in the artifact store."""
        return f"jobs/{self.job_id}/checkpoint"

    def checkpoint_folder(self) -> Path:
        """The job's local checkpoint folder, filled from the artifact store when this node has
        none, or an older one than the store's (a job resumed on another node after a crash, then
        back here: the epochs the other node trained are not thrown away)."""
        folder = self.work_dir / self.job_id
        with one_at_a_time(self.work_dir / f".{self.job_id}.lock"):  # the ranks of a `gpus` job share it
            if not has_checkpoint(folder) or _epoch(folder) < self._stored_epoch():
                self.store.download_folder(self.checkpoint_prefix, folder)
        return folder

    def _stored_epoch(self) -> int:
        key = f"{self.checkpoint_prefix}/{META_FILE}"
        try:
            return int(json.loads(self.store.get_bytes(key)).get("epoch", 0)) if self.store.exists(key) else 0
        except (ValueError, AttributeError):  # a torn or foreign file: the local checkpoint stands
            return 0

    def publish_checkpoint(self, folder: Path) -> None:
        """Leave the finished checkpoint alone in the artifact store, where the registry points:
        uploaded once more (a crash may have cut the last upload short), then the previous epoch's
        copy removed there (training removed it here)."""
        self.store.upload_folder(folder, self.checkpoint_prefix, previous=False)
        self.store.delete_tree(f"{self.checkpoint_prefix}/{PREVIOUS}")

    def training_reporter(self, folder: Path, start: float, end: float) -> ProgressFn:
        """A reporter for a training stage spanning [start, end] of the job that copies the
        checkpoint to the artifact store each time an epoch ends (its metrics arrive)."""
        stage = self.scaled(start, end)

        def report(p: Progress) -> None:
            if p.metrics:
                self.store.upload_folder(folder, self.checkpoint_prefix)
            stage(p)

        return report

    def local_data(self, spec: DataSpec) -> DataSpec:
        """`spec` as this node reads it: a `folder` of the data root by its path, an `uploaded`
        dataset fetched once from the artifact store into the work folder.

        Raises:
            ValueError: the spec carries a path (the service never takes one), names no folder,
                or names an uploaded dataset that does not exist.
        """
        if spec.root is not None:
            raise ValueError("data.root: the service takes no paths; name a dataset of the catalogue")
        if spec.name == "folder":
            if not spec.folder:
                raise ValueError("data.folder: name a folder of the data root (GET /v1/datasets)")
            return spec.model_copy(update={"root": str(self.data_root / spec.folder)})
        if spec.name == "uploaded":
            with self.session() as s:
                row = s.get(DatasetRow, spec.dataset_id)
                if row is None:
                    raise ValueError(f"no uploaded dataset with id {spec.dataset_id}")
                uri = row.uri
            local = self.work_dir / "datasets" / spec.dataset_id
            with one_at_a_time(local.parent / f".{spec.dataset_id}.lock"):  # ranks, and other jobs here
                if not dataset_files_present(local):  # not fetched yet, or a fetch cut short
                    self.store.download_folder(uri, local)
            return spec.model_copy(update={"root": str(local)})
        return spec

    def load_data(self, spec: DataSpec) -> Dataset:
        return load_dataset(self.local_data(spec))

    def test_image(self, dataset_label: str, index: int):
        """Image `index` of the test split of the dataset a registry label names, and its label."""
        return test_image(self.local_data(DataSpec.from_label(dataset_label)), index)

    def registered_model(self, model_id: str, kind: ModelKind) -> tuple:
        """The registered model `model_id` of `kind` (loaded once through the worker's cache; a
        defended model built from its registered parts) and the name of its dataset.

        Raises:
            ValueError: there is no model of that kind with that id.
        """
        with self.session() as s:
            row = get_model(s, model_id=model_id)
            if row is None or row.kind != kind:
                raise ValueError(f"no {kind} with id {model_id}")
            uri, dataset, defense = row.checkpoint_uri, row.dataset, (row.recipe or {}).get("defense")
        if defense is not None:
            return self._defended(defense), dataset
        return self.models.get(model_id, uri, self.store, self.device), dataset

    def _defended(self, defense: dict):
        """A defended model: its classifier behind its diffusion purifier (both from the cache)."""
        from core.contract.diffusion_specs import PurifierSpec
        from core.diffusion.purify import Purified  # diffusers is heavy: only when needed

        classifier, _ = self.registered_model(defense["classifier_id"], "classifier")
        diffusion, _ = self.registered_model(defense["diffusion_id"], "diffusion")
        return Purified(classifier, diffusion, PurifierSpec.model_validate(defense["purifier"]))

    def upload_to_consume(self, session: Session, artifact_id: str) -> str:
        """The store key of the raw upload this job was handed to consume.

        Raises:
            ValueError: it is not a raw upload of the job's owner that no other job names.
        """
        job = session.get(Job, self.job_id)
        artifact = session.get(Artifact, artifact_id)
        why = consumable(session, artifact, job.owner_id if job else self.owner_id, self.job_id)
        if why is not None:
            raise ValueError(f"not an upload this job may consume: {why}")
        return artifact.uri

    def consume_upload(self, session: Session, artifact_id: str) -> bool:
        """Delete the raw upload this job was handed to consume, and nothing else (see
        `core.store.privacy.consume_upload`)."""
        return consume_upload(session, self.store, artifact_id=artifact_id, job=session.get(Job, self.job_id))

    def save_artifact(self, session: Session, name: str, *, type: str, data: bytes):
        """Store `data` as the job's artifact `jobs/<job id>/<name>` and record it; returns the row."""
        return record_artifact(
            session, self.store, key=f"jobs/{self.job_id}/{name}", type=type, job_id=self.job_id, data=data
        )
