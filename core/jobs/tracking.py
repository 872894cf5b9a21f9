"""Experiment tracking in MLflow, when `MLFLOW_TRACKING_URI` is set (the optional extra
`.[mlflow]`; off by default).

Each job is one MLflow run in the experiment `robustlab/<kind>` (`robustlab/study-<id>` for a
study's jobs), named by the job id and tagged with a link back to it (`robustlab.job_url`). The
spec goes in as parameters (flattened, `model.activation.name`), each epoch's metrics at their
step, and at the end the result (`result.json`) and the checkpoint files as artifacts.

Tracking never fails a job: the client is told not to retry and to time out after a few
seconds, and the first error switches tracking off for the rest of the job with one warning. An
error that took more than a second (a server away or hanging) also keeps the trackers this process
starts for the same server off for a minute: a worker's in-process jobs do not each wait for it.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path

from core.contract.checkpoint import META_FILE, MODEL_FILE, STATE_FILE

log = logging.getLogger(__name__)
REQUEST_TIMEOUT_SECONDS = "5"
MAX_PARAMS = 500  # more would only be noise in MLflow's table (and slow to log)
MAX_PARAM_CHARS = 6000  # MLflow's limit on one value
AWAY_SECONDS = 60.0  # after a slow error, new trackers of this process for that server stay off this long
SLOW_SECONDS = 1.0
_away_until: dict[str, float] = {}  # tracking URI → monotonic time


def flatten(spec: dict, prefix: str = "") -> dict[str, str]:
    """`{"model": {"width": 16}}` → `{"model.width": "16"}` (lists as JSON)."""
    out: dict[str, str] = {}
    for key, value in spec.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = (value if isinstance(value, str) else json.dumps(value))[:MAX_PARAM_CHARS]
    return out


class Tracker:
    """One job's MLflow run; every method is a no-op once tracking is off."""

    def __init__(self, uri: str | None, *, job_id: str, kind: str, study_id: str | None, job_url: str | None):
        self.client, self.run_id, self.uri = None, None, uri
        if not uri or time.monotonic() < _away_until.get(uri, 0.0):
            return
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", REQUEST_TIMEOUT_SECONDS)
        try:
            import mlflow.tracking  # noqa: F401
        except Exception as e:  # not installed, or broken
            log.warning("MLFLOW_TRACKING_URI is set but mlflow cannot be imported (pip install '.[mlflow]'): %s", e)
            return
        self._do(self._start, uri, job_id, kind, study_id, job_url)

    def _start(self, uri: str, job_id: str, kind: str, study_id: str | None, job_url: str | None) -> None:
        from mlflow.tracking import MlflowClient

        client = MlflowClient(tracking_uri=uri)  # a URI it cannot use raises here, inside `_do`
        name = f"robustlab/study-{study_id}" if study_id else f"robustlab/{kind}"
        experiment = client.get_experiment_by_name(name)
        experiment_id = experiment.experiment_id if experiment else client.create_experiment(name)
        earlier = client.search_runs([experiment_id], filter_string=f"tags.`robustlab.job_id` = '{job_id}'")
        if earlier:  # an attempt after a crash goes on in the same run
            self.client, self.run_id = client, earlier[0].info.run_id
            return
        tags = {
            "robustlab.job_id": job_id,
            "robustlab.kind": kind,
            **({"robustlab.job_url": job_url} if job_url else {}),
        }
        self.client, self.run_id = client, client.create_run(experiment_id, run_name=job_id, tags=tags).info.run_id

    def _do(self, fn, *args) -> None:
        if fn != self._start and self.client is None:
            return
        started = time.monotonic()
        try:
            fn(*args)
        except Exception as e:  # the server is away or refused: the job goes on untracked
            if time.monotonic() - started > SLOW_SECONDS:
                _away_until[self.uri] = time.monotonic() + AWAY_SECONDS
            log.warning("MLflow tracking is off for this job: %s: %s", type(e).__name__, e)
            self.client = None

    def log_spec(self, spec: dict) -> None:
        def log_params(flat: dict[str, str]) -> None:
            from mlflow.entities import Param

            params = [Param(k, v) for k, v in list(flat.items())[:MAX_PARAMS]]
            for i in range(0, len(params), 100):  # MLflow takes at most 100 per batch
                self.client.log_batch(self.run_id, params=params[i : i + 100])

        self._do(log_params, flatten(spec))

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        def log(values: dict[str, float]) -> None:
            from mlflow.entities import Metric

            now = int(time.time() * 1000)
            self.client.log_batch(self.run_id, metrics=[Metric(k, float(v), now, step) for k, v in values.items()])

        self._do(log, metrics)

    def finish(self, status: str, result: dict | None, checkpoint: Path | None) -> None:
        """The result and checkpoint as artifacts, and the run's end (left running when the job goes
        on elsewhere: a lost lease; its next attempt carries on in the same run)."""
        client = self.client
        if result is not None:
            self._do(lambda: self.client.log_dict(self.run_id, result, "result.json"))
        files = [checkpoint / n for n in (MODEL_FILE, STATE_FILE, META_FILE)] if checkpoint is not None else []
        for path in (f for f in files if f.is_file()):  # the checkpoint's own files, not .prev/ and the like
            self._do(lambda p=path: self.client.log_artifact(self.run_id, str(p), "checkpoint"))
        if status != "running" and client is not None:  # ended, even if an upload above failed
            state = {"succeeded": "FINISHED", "cancelled": "KILLED"}.get(status, "FAILED")
            self.client = client
            self._do(lambda: self.client.set_terminated(self.run_id, status=state))
