"""The job store's tables (SQLAlchemy 2). Migrations in `core/store/migrations` create them."""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Integer, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


def new_id() -> str:
    return uuid.uuid4().hex


def utcnow() -> datetime:
    return datetime.now(UTC)


def finite(value: Any, replace=lambda f: None) -> Any:
    """`value` with every NaN or infinite float replaced by `replace(f)` (default None)."""
    if isinstance(value, float) and not math.isfinite(value):
        return replace(value)
    if isinstance(value, dict):
        return {k: finite(v, replace) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v, replace) for v in value]
    return value


class FiniteJSON(TypeDecorator):
    """JSON whose non-finite floats are stored as null: JSON has no NaN (PostgreSQL refuses it),
    and a diverged run's NaN loss must not fail the job's final write."""

    impl = JSON
    cache_ok = True

    def process_bind_param(self, value, dialect):
        return finite(value)


class Base(DeclarativeBase):
    type_annotation_map = {dict: FiniteJSON}


class User(Base):
    """A person (or a service) of the lab; keys belong to users, objects are owned by users."""

    __tablename__ = "users"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    role: Mapped[str] = mapped_column(String(20), default="member")  # one of ROLES
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Study(Base):
    __tablename__ = "studies"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200))
    preset: Mapped[str] = mapped_column(String(50))
    spec: Mapped[dict] = mapped_column(FiniteJSON)
    owner: Mapped[str | None] = mapped_column(String(100))
    owner_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Job(Base):
    __tablename__ = "jobs"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(50), index=True)
    status: Mapped[str] = mapped_column(String(20), index=True, default="queued")
    queue: Mapped[str] = mapped_column(String(50), default="train")
    spec: Mapped[dict] = mapped_column(FiniteJSON)
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    message: Mapped[str] = mapped_column(String(500), default="")
    result: Mapped[dict | None] = mapped_column(FiniteJSON)
    error: Mapped[str | None] = mapped_column(Text)
    error_type: Mapped[str | None] = mapped_column(String(100))  # the exception's type (None: a crash, a kill)
    owner: Mapped[str | None] = mapped_column(String(100))
    owner_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"), index=True)
    study_id: Mapped[str | None] = mapped_column(ForeignKey("studies.id"), index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    attempt_log: Mapped[list | None] = mapped_column(FiniteJSON)  # how each supervised attempt ended
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    private: Mapped[bool] = mapped_column(Boolean, default=False)  # reads or makes private data (core.store.privacy)
    lease_owner: Mapped[str | None] = mapped_column(String(200))
    lease_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    enqueued_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # the latest claim
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class MetricPoint(Base):
    __tablename__ = "metric_points"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    job_id: Mapped[str] = mapped_column(ForeignKey("jobs.id", ondelete="CASCADE"), index=True)
    step: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(100))
    value: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Artifact(Base):
    __tablename__ = "artifacts"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    job_id: Mapped[str | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"), index=True)
    uri: Mapped[str] = mapped_column(String(1000))
    type: Mapped[str] = mapped_column(String(50))
    content_type: Mapped[str] = mapped_column(String(100), default="application/octet-stream")
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    owner_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class RegisteredModel(Base):
    __tablename__ = "models"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    kind: Mapped[str] = mapped_column(String(20), default="classifier")  # one of MODEL_KINDS
    name: Mapped[str] = mapped_column(String(200))
    job_id: Mapped[str | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"), index=True)
    dataset: Mapped[str] = mapped_column(String(50))
    architecture: Mapped[str] = mapped_column(String(50))
    activation: Mapped[str] = mapped_column(String(50))
    recipe: Mapped[dict] = mapped_column(FiniteJSON)
    checkpoint_uri: Mapped[str] = mapped_column(String(1000))
    summary: Mapped[dict] = mapped_column(FiniteJSON, default=dict)
    owner_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"), index=True)
    private: Mapped[bool] = mapped_column(Boolean, default=False)  # made by a private job (core.store.privacy)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class DatasetRow(Base):
    """A dataset uploaded through the API or generated by a job: its arrays live in the artifact store."""

    __tablename__ = "datasets"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200))
    owner_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"), index=True)
    classes: Mapped[dict] = mapped_column(FiniteJSON)  # {"names": [...], "train": [...], "test": [...]} counts
    channels: Mapped[int] = mapped_column(Integer)
    image_size: Mapped[int] = mapped_column(Integer)
    uri: Mapped[str] = mapped_column(String(1000))  # the folder of dataset.json and its arrays' files
    provenance: Mapped[dict | None] = mapped_column(FiniteJSON, nullable=True)  # a generated one's recipe
    job_id: Mapped[str | None] = mapped_column(ForeignKey("jobs.id", ondelete="SET NULL"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ApiKey(Base):
    __tablename__ = "api_keys"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(12))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)
    user_id: Mapped[str | None] = mapped_column(ForeignKey("users.id"), index=True)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class AuditEntry(Base):
    """Who did what to which object, when: submissions, cancellations, deletions, uploads, keys."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    user_id: Mapped[str | None] = mapped_column(String(32), index=True)
    user_name: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(50))
    object_type: Mapped[str] = mapped_column(String(50))
    object_id: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[dict] = mapped_column(FiniteJSON, default=dict)
