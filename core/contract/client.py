"""The one HTTP client of the robustlab API, for the command line, the dashboard and notebooks.

    from core.contract.client import Lab

    lab = Lab("http://127.0.0.1:8000", key)
    job = lab.submit("adversarial_training", {"data": {"name": "digits"}, "epochs": 2})
    job.wait()                      # a progress bar in a terminal or in Jupyter
    print(job.result["robust_acc"], job.metrics()[-1])

Every failure (the API refused the request, or could not be reached) raises `LabError`, whose
text is the API's own message, readable by a person.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import httpx
from pydantic import BaseModel

from core.contract.names import FINISHED
from core.contract.progress import Progress, ProgressFn, progress_bar

DEFAULT_URL = "http://127.0.0.1:8000"
KEY_FILE = Path("var/api_key")  # where `make up` writes its key
ENV = ("ROBUSTLAB_API_URL", "ROBUSTLAB_API_KEY")  # what `Lab.from_env` reads (the dashboard's settings)


class LabError(Exception):
    """A request the API refused or could not answer, with the API's message.

    Attributes:
        status: the HTTP status code, or None when the API could not be reached.
    """

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


def _detail(r: httpx.Response) -> str:
    """The API's `detail`, with FastAPI's validation errors as `field: message` per error."""
    try:
        detail = r.json().get("detail", r.text)
    except (ValueError, AttributeError):
        detail = r.text
    if isinstance(detail, list):
        detail = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', [])[1:])}: {e.get('msg', '')}" for e in detail)
    return f"{r.status_code} {r.reason_phrase}: {detail}"


class Lab:
    """A connection to one robustlab API with one key.

    Args:
        url: the API's base URL (default http://127.0.0.1:8000).
        key: an API key (`make up` prints one and writes it to var/api_key).
        timeout: seconds per request (default 30).
    """

    def __init__(self, url: str = DEFAULT_URL, key: str = "", *, timeout: float = 30.0):
        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {key}"}, timeout=timeout)

    @classmethod
    def from_env(cls, url: str | None = None, key: str | None = None) -> Lab:
        """`url` and `key` if given, else $ROBUSTLAB_API_URL and $ROBUSTLAB_API_KEY, else the
        local default URL and the key `make up` wrote to var/api_key.

        Raises:
            LabError: no key anywhere.
        """
        key = key or os.environ.get("ROBUSTLAB_API_KEY")
        if not key and KEY_FILE.is_file():
            key = KEY_FILE.read_text().strip()
        if not key:
            raise LabError("no API key: pass one, set ROBUSTLAB_API_KEY, or run `make up` (it writes var/api_key)")
        return cls(url or os.environ.get("ROBUSTLAB_API_URL", DEFAULT_URL), key)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *_) -> None:
        self.close()

    def request(self, method: str, path: str, **kwargs) -> httpx.Response:
        """One request; `LabError` for a 4xx/5xx answer or an unreachable API."""
        try:
            r = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as e:
            raise LabError(f"cannot reach the API at {self.url}: {e}") from e
        if r.status_code >= 400:
            raise LabError(_detail(r), r.status_code)
        return r

    def get(self, path: str, **params) -> Any:
        return self.request("GET", path, params={k: v for k, v in params.items() if v is not None}).json()

    def post(self, path: str, body: dict | None = None, **params) -> Any:
        return self.request("POST", path, json=body or {}, params=params).json()

    def image(self, url: str) -> bytes:
        """The bytes of an artifact URL (`/v1/artifacts/...`)."""
        return self.request("GET", url).content

    # Jobs
    def submit(
        self,
        kind: str,
        spec: dict | BaseModel | None = None,
        *,
        preset: str | None = None,
        overrides: dict | None = None,
    ) -> Job:
        """Queue a job of `kind` (see `core.contract.kinds`) with `spec` (a dict or a spec model),
        or with one of its presets (`GET /v1/presets`) and `overrides` merged into it:
        `lab.submit("adversarial_training", preset="smoke", overrides={"epochs": 2})`."""
        if isinstance(spec, BaseModel):
            spec = spec.model_dump(mode="json")
        if preset is not None:
            body = {"kind": kind, "preset": preset, **({"overrides": overrides} if overrides else {})}
        else:
            body = {"kind": kind, "spec": spec or {}}
        return Job(self, self.post("/v1/jobs", body))

    def job(self, job_id: str) -> Job:
        return Job(self, self.get(f"/v1/jobs/{job_id}"))

    def jobs(self, **filters) -> dict:
        """A page of jobs, newest first: `{"items", "total", "limit", "offset"}`; filters
        `status`, `kind`, `study`, `limit`, `offset`."""
        return self.get("/v1/jobs", **filters)

    def metrics(self, job_id: str) -> list[dict]:
        return self.get(f"/v1/jobs/{job_id}/metrics")

    def artifacts(self, job_id: str) -> list[dict]:
        return self.get(f"/v1/jobs/{job_id}/artifacts")

    def cancel(self, job_id: str) -> dict:
        return self.post(f"/v1/jobs/{job_id}/cancel")

    # Everything else
    def me(self) -> dict:
        """Who this key belongs to: `{"user_id", "name", "role", "key_id"}`."""
        return self.get("/v1/me")

    def presets(self) -> dict:
        """`{kind: {preset: spec}}`: ready-to-edit specs for every job kind."""
        return self.get("/v1/presets")

    def models(self, **filters) -> dict:
        return self.get("/v1/models", **filters)

    def model(self, model_id: str) -> dict:
        return self.get(f"/v1/models/{model_id}")

    def datasets(self) -> dict:
        """The catalogue: `{"named", "folders", "uploaded"}`; uploaded and generated datasets are
        the caller's, each with its class counts (and a generated one's `provenance`)."""
        return self.get("/v1/datasets")

    def create_study(self, body: dict) -> dict:
        return self.post("/v1/studies", body)

    def study(self, study_id: str) -> dict:
        return self.get(f"/v1/studies/{study_id}")

    def studies(self) -> list[dict]:
        """The newest studies first: id, name, preset, created_at."""
        return self.get("/v1/studies")

    def create_key(self, name: str) -> dict:
        return self.post("/v1/keys", {"name": name})

    def attack(
        self,
        model_id: str,
        attack: dict,
        *,
        image: tuple[str, bytes, str] | None = None,
        test_index: int | None = None,
        wait: float = 30,
    ) -> dict:
        """Attack an upload (`(filename, bytes, content type)`) or a test image by index; the
        finished job, or the job still running after `wait` seconds."""
        data = {"model_id": model_id, "attack": json.dumps(attack), "wait": str(wait)}
        if test_index is not None:
            data["test_index"] = str(test_index)
        files = {"image": image} if image else None
        return self.request("POST", "/v1/attacks", data=data, files=files).json()

    def samples(self, body: dict, wait: float = 30) -> dict:
        return self.post("/v1/samples", body, wait=wait)

    def forward(self, body: dict, wait: float = 30) -> dict:
        return self.post("/v1/samples/forward", body, wait=wait)


class Job:
    """A handle on one job: its last known state in `data`, refreshed by `refresh` and `wait`."""

    def __init__(self, lab: Lab, data: dict):
        self.lab, self.data = lab, data

    def __repr__(self) -> str:
        return f"Job({self.id!r}, kind={self.kind!r}, status={self.status!r}, progress={self.progress:.0%})"

    id = property(lambda self: self.data["id"])
    kind = property(lambda self: self.data["kind"])
    status = property(lambda self: self.data["status"])
    progress = property(lambda self: self.data["progress"])
    message = property(lambda self: self.data["message"])
    error = property(lambda self: self.data["error"])

    @property
    def finished(self) -> bool:
        return self.status in FINISHED

    def refresh(self) -> Job:
        self.data = self.lab.get(f"/v1/jobs/{self.id}")
        return self

    def wait(self, timeout: float | None = None, interval: float = 1.0, progress: bool | ProgressFn = True) -> Job:
        """Poll until the job finishes (any final status); returns the handle.

        Args:
            timeout: give up after this many seconds (None: wait as long as it takes).
            interval: seconds between polls.
            progress: draw a progress bar (True), report to a function of your own, or stay quiet.

        Raises:
            LabError: the timeout passed first, or the API failed.
        """
        report = progress_bar(f"{self.kind} {self.id[:8]}") if progress is True else progress or None
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if report:
                report(Progress(1.0 if self.finished else self.progress, f"{self.status} {self.message}"))
            if self.finished:
                return self
            if deadline is not None and time.monotonic() >= deadline:
                raise LabError(f"job {self.id} still {self.status} after {timeout:g} s")
            time.sleep(interval)
            self.refresh()

    @property
    def result(self) -> dict:
        """The result of the finished job.

        Raises:
            LabError: the job failed, was cancelled, or has not finished (call `wait` first).
        """
        if self.status == "succeeded":
            return self.data["result"]
        if self.status == "failed":
            raise LabError(f"job {self.id} failed: {self.error}")
        raise LabError(f"job {self.id} is {self.status}: no result" + ("" if self.finished else "; call wait() first"))

    def metrics(self) -> list[dict]:
        """Every metric point the job reported: `{"step", "name", "value"}`."""
        return self.lab.metrics(self.id)

    def artifacts(self) -> list[dict]:
        """The job's artifacts: id, type, name, size, sha256, content type and download URL."""
        return self.lab.artifacts(self.id)

    def cancel(self) -> Job:
        self.data = self.lab.cancel(self.id)
        return self
