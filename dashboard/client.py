"""The dashboard's only way to the service: a small HTTP client for the robustlab API.

An API error becomes an `ApiError` whose text a person can read (the API's `detail`), never a
traceback. The base URL and key come from `ROBUSTLAB_API_URL` and `ROBUSTLAB_API_KEY`.
"""

from __future__ import annotations

import json
import os
from typing import Any

import httpx

DEFAULT_URL = "http://127.0.0.1:8000"
ENV = ("ROBUSTLAB_API_URL", "ROBUSTLAB_API_KEY")  # what the dashboard reads


class ApiError(Exception):
    """A request the API refused or could not answer, with a message for a person."""


def _detail(r: httpx.Response) -> str:
    try:
        detail = r.json().get("detail", r.text)
    except (ValueError, AttributeError):
        detail = r.text
    if isinstance(detail, list):  # FastAPI's validation errors: "field: message" per error
        detail = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', [])[1:])}: {e.get('msg', '')}" for e in detail)
    return f"{r.status_code} {r.reason_phrase}: {detail}"


class ApiClient:
    """Bound to one API base URL and key. Every method raises `ApiError` on failure."""

    def __init__(self, base_url: str, key: str, *, timeout: float = 30.0):
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(base_url=self.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=timeout)

    @classmethod
    def from_env(cls) -> ApiClient:
        key = os.environ.get("ROBUSTLAB_API_KEY", "")
        return cls(os.environ.get("ROBUSTLAB_API_URL", DEFAULT_URL), key)

    def _call(self, method: str, path: str, **kwargs) -> httpx.Response:
        try:
            r = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as e:
            raise ApiError(f"cannot reach the API at {self.base_url}: {e}") from e
        if r.status_code >= 400:
            raise ApiError(_detail(r))
        return r

    def get(self, path: str, **params) -> Any:
        return self._call("GET", path, params={k: v for k, v in params.items() if v is not None}).json()

    def post(self, path: str, body: dict | None = None, **params) -> Any:
        return self._call("POST", path, json=body or {}, params=params).json()

    def image(self, url: str) -> bytes:
        """The bytes of an artifact URL (`/v1/artifacts/...`)."""
        return self._call("GET", url).content

    # The resources, named as the pages use them.
    def jobs(self, **filters) -> dict:
        return self.get("/v1/jobs", **filters)

    def job(self, job_id: str) -> dict:
        return self.get(f"/v1/jobs/{job_id}")

    def metrics(self, job_id: str) -> list[dict]:
        return self.get(f"/v1/jobs/{job_id}/metrics")

    def artifacts(self, job_id: str) -> list[dict]:
        return self.get(f"/v1/jobs/{job_id}/artifacts")

    def cancel(self, job_id: str) -> dict:
        return self.post(f"/v1/jobs/{job_id}/cancel")

    def submit(self, kind: str, spec: dict) -> dict:
        return self.post("/v1/jobs", {"kind": kind, "spec": spec})

    def presets(self) -> dict:
        return self.get("/v1/presets")

    def models(self, **filters) -> dict:
        return self.get("/v1/models", **filters)

    def create_study(self, body: dict) -> dict:
        return self.post("/v1/studies", body)

    def study(self, study_id: str) -> dict:
        return self.get(f"/v1/studies/{study_id}")

    def studies(self) -> list[dict]:
        """The newest studies first: id, name, preset, created_at."""
        return self.get("/v1/studies")

    def attack(
        self,
        model_id: str,
        attack: dict,
        *,
        image: tuple[str, bytes, str] | None = None,
        test_index: int | None = None,
        wait: float = 30,
    ) -> dict:
        data = {"model_id": model_id, "attack": json.dumps(attack), "wait": str(wait)}
        if test_index is not None:
            data["test_index"] = str(test_index)
        files = {"image": image} if image else None
        return self._call("POST", "/v1/attacks", data=data, files=files).json()

    def samples(self, body: dict, wait: float = 30) -> dict:
        return self.post("/v1/samples", body, wait=wait)

    def forward(self, body: dict, wait: float = 30) -> dict:
        return self.post("/v1/samples/forward", body, wait=wait)
