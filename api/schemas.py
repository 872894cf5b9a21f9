"""Response (and non-spec request) bodies. Job specs themselves are core's spec models."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from core.contract.kinds import JobKindName
from core.contract.names import ACTIVATIONS, PROBE_PHASES, ActivationName, JobStatus, ModelKind, PresetName, ProbePhase


class JobIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "kind": "adversarial_training",
                    "spec": {"data": {"name": "digits"}, "model": {"image_size": 8}, "epochs": 2},
                }
            ]
        },
    )
    kind: JobKindName
    spec: dict[str, Any] = Field(default_factory=dict, description="the kind's spec (see the core spec models)")


class JobOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    kind: JobKindName
    status: JobStatus
    spec: dict[str, Any]
    progress: float
    message: str
    result: dict[str, Any] | None
    error: str | None
    owner: str | None
    study_id: str | None
    attempts: int
    cancel_requested: bool
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime | None


class Page(BaseModel):
    total: int
    limit: int
    offset: int


class JobList(Page):
    items: list[JobOut]


class MetricOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    step: int
    name: str
    value: float


class ModelOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    kind: ModelKind
    name: str
    job_id: str | None
    dataset: str
    architecture: str
    activation: str
    recipe: dict[str, Any]
    summary: dict[str, Any]
    created_at: datetime


class ModelList(Page):
    items: list[ModelOut]


class StudyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    preset: Literal["sat"] = "sat"
    name: str = Field(default="sat", max_length=200)
    train_preset: PresetName = "smoke"
    seeds: int = Field(default=3, ge=1, le=10)
    activations: list[ActivationName] = Field(default=list(ACTIVATIONS), max_length=len(ACTIVATIONS))
    probes: list[ProbePhase] = Field(default=list(PROBE_PHASES), max_length=len(PROBE_PHASES))
    epochs: int | None = Field(default=None, ge=1)


class StudySummary(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    name: str
    preset: str
    created_at: datetime


class StudyOut(BaseModel):
    id: str
    name: str
    preset: str
    spec: dict[str, Any]
    created_at: datetime
    jobs: dict[str, int] = Field(description="job count by status")
    table: list[dict[str, Any]] = Field(description="mean ± std per variant over finished seeds")
    protocols: list[str] = Field(default_factory=list, description="the protocol(s) of the table's robust accuracy")


class KeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=100)


class KeyOut(BaseModel):
    id: str
    name: str
    key: str = Field(description="shown once; store it")
