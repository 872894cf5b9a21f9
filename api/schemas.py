"""Response (and non-spec request) bodies. Job specs themselves are core's spec models."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, computed_field, create_model, model_validator

from core.contract.kinds import JOB_KINDS, JobKindName, job_kind
from core.contract.names import (
    ACTIVATIONS,
    PROBE_PHASES,
    ActivationName,
    JobStatus,
    ModelKind,
    ProbePhase,
    Role,
    TrainPresetName,
)
from core.contract.results import ForwardResult, ImageAttackResult, SamplesResult


class JobIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "kind": "adversarial_training",
                    "spec": {"data": {"name": "digits"}, "model": {"image_size": 8}, "epochs": 2},
                },
                {"kind": "adversarial_training", "preset": "smoke", "overrides": {"epochs": 2}},
            ]
        },
    )
    kind: JobKindName
    spec: dict[str, Any] | None = Field(default=None, description="the kind's spec (see the core spec models)")
    preset: str | None = Field(
        default=None, max_length=100, description="instead of a spec: one of the kind's presets (GET /v1/presets)"
    )
    overrides: dict[str, Any] | None = Field(
        default=None, description="with a preset: fields merged into it (nested objects key by key)"
    )

    @model_validator(mode="after")
    def _spec_or_preset(self) -> JobIn:
        if self.spec is not None and self.preset is not None:
            raise ValueError("give a spec or a preset (with overrides), not both")
        if self.overrides is not None and self.preset is None:
            raise ValueError("overrides go with a preset")
        return self


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
    error_type: str | None = Field(default=None, description="the exception's type when a runner raised one")
    owner: str | None
    study_id: str | None
    attempts: int
    attempt_log: list[dict[str, Any]] | None = Field(default=None, description="how each supervised attempt ended")
    cancel_requested: bool
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    updated_at: datetime | None
    lease_expires_at: datetime | None = Field(
        default=None, description="while running: until when its worker holds it (renewed every third of the lease)"
    )

    @computed_field(description="running, but its worker has not renewed the lease: it died or lost the store")
    @property
    def stalled(self) -> bool:
        if self.status != "running" or self.lease_expires_at is None:
            return False
        expires = self.lease_expires_at
        return (expires if expires.tzinfo else expires.replace(tzinfo=UTC)) < datetime.now(UTC)


class ImageAttackAnswer(JobOut):
    result: ImageAttackResult | None


class SamplesAnswer(JobOut):
    result: SamplesResult | None


class ForwardAnswer(JobOut):
    result: ForwardResult | None


class ArtifactOut(BaseModel):
    id: str
    type: str
    name: str
    size: int
    sha256: str
    content_type: str
    url: str


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
    train_preset: TrainPresetName = "smoke"
    seeds: int = Field(default=3, ge=1, le=10)
    activations: list[ActivationName] = Field(default=list(ACTIVATIONS), max_length=len(ACTIVATIONS))
    probes: list[ProbePhase] = Field(default=list(PROBE_PHASES), max_length=len(PROBE_PHASES))
    epochs: int | None = Field(default=None, ge=1, le=1000)  # TrainSpec's own bound


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
    """A new key. A member gets a member key of their own; an admin may name another user (created
    if new) and a role."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=100, description="what the key is for (a laptop, a script)")
    user: str | None = Field(default=None, min_length=1, max_length=100, description="admin only: whose key")
    role: Role | None = Field(default=None, description="admin only: that user's role")
    expires_in_days: float | None = Field(default=None, gt=0, le=3650, description="None: until revoked")


class KeyOut(BaseModel):
    id: str
    name: str
    user: str
    role: Role
    expires_at: datetime | None
    key: str = Field(description="shown once; store it")


class KeyInfo(BaseModel):
    id: str
    name: str
    prefix: str
    user: str
    role: Role
    revoked: bool
    expires_at: datetime | None
    created_at: datetime


class Me(BaseModel):
    user_id: str
    name: str
    role: Role
    key_id: str


class AuditOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    at: datetime
    user_id: str | None
    user_name: str
    action: str
    object_type: str
    object_id: str | None
    detail: dict[str, Any]


class DatasetOut(BaseModel):
    id: str
    name: str
    label: str = Field(description="what a spec's `data` names it by: uploaded:<id>")
    classes: list[str]
    train: list[int] = Field(description="training images per class")
    test: list[int] = Field(description="test images per class")
    channels: int
    image_size: int
    provenance: dict[str, Any] | None
    owner_id: str | None
    created_at: datetime


class NamedDataset(BaseModel):
    name: str
    classes: list[str]


class Catalogue(BaseModel):
    named: list[NamedDataset] = Field(description='{"name": N}')
    folders: list[str] = Field(description='the data root\'s folders: {"name": "folder", "folder": F}')
    uploaded: list[DatasetOut] = Field(description='{"name": "uploaded", "dataset_id": ID}')


class Health(BaseModel):
    status: Literal["ok", "degraded"]
    api: Literal["ok"]
    database: str = Field(description="ok, or the error's type")
    redis: str = Field(description="ok, or the error's type")
    workers: dict[str, dict[str, Any]] = Field(description="each live worker's announcement by its name")


Presets = create_model(
    "Presets",
    **{kind: (dict[str, job_kind(kind).spec], ...) for kind in JOB_KINDS},
    __doc__="Every job kind's presets by name, as specs.",
)
