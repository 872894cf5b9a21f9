"""Settings from the environment, read once per process through `get_settings()` (never at import).

Every variable is listed in `.env.example`; the compose file and `make up` set them.
"""

from __future__ import annotations

import json
import os
from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, Field


class Settings(BaseModel):
    """What the service parts read from the environment, with local defaults under ./var."""

    var_dir: Path = Path("var")
    database_url: str = "sqlite:///var/robustlab.db"
    redis_url: str = "redis://127.0.0.1:6379/0"
    artifact_url: str = "var/artifacts"
    work_dir: Path = Path("var/work")
    public_url: str = "http://127.0.0.1:8000"
    max_upload_bytes: int = Field(default=10 * 1024 * 1024, ge=1)
    max_image_pixels: int = Field(default=4096 * 4096, ge=1)
    max_model_bytes: int = Field(default=200 * 1024 * 1024, ge=1)  # an uploaded classifier's weights
    max_dataset_bytes: int = Field(default=200 * 1024 * 1024, ge=1)  # an uploaded dataset's zip archive
    max_dataset_files: int = Field(default=50_000, ge=1)  # images in one uploaded archive
    data_root: Path = Path("var/data")  # the operator's folders of class folders, offered by name
    max_epochs: int = Field(default=200, ge=1)
    max_attack_steps: int = Field(default=5000, ge=1)  # gradient evaluations per point and attack
    max_attack_queries: int = Field(default=20_000, ge=1)  # Square's queries per point
    max_samples_per_request: int = Field(default=64, ge=1)
    max_sample_steps: int = Field(default=1000, ge=1)
    max_eval_images: int = Field(default=20_000, ge=1)
    max_eps_grid: int = Field(default=16, ge=1)  # radii of one robustness curve (each runs the whole protocol)
    max_smoothing_samples: int = Field(default=200_000, ge=1)  # noise samples per image of a certification
    max_generated_per_class: int = Field(default=10_000, ge=1)  # images per class of a dataset_generation job
    max_ddpm_image_size: int = Field(default=64, ge=8)
    interactive_wait_seconds: float = Field(default=10.0, ge=0)
    max_queued_jobs_per_user: int = Field(default=100, ge=1)  # unfinished jobs one user may have
    max_running_train_jobs_per_user: int = Field(default=4, ge=1)  # beyond it, their jobs wait
    interactive_per_minute: int = Field(default=120, ge=1)  # requests per user to the interactive endpoints
    lease_seconds: float = Field(default=60.0, gt=0)  # longer than the store outages a job rides out
    visibility_timeout: int = Field(default=3600, ge=1)
    model_cache_size: int = Field(default=4, ge=1)
    max_attempts: int = Field(default=3, ge=1)  # abnormal ends (crash, kill) before a job is failed for good
    memory_budget_bytes: int = Field(default=0, ge=0)  # a job's child past it is killed; 0: 90 % of the machine
    outage_seconds: float = Field(default=300.0, ge=0)  # how long a job's final write waits for the store
    job_time_limits: dict[str, float] = Field(default_factory=dict)  # {kind: seconds} over the kinds' own limits
    devices: int = Field(default=0, ge=0)  # a train worker's devices for `gpus` jobs; 0: its CUDA devices (or 1)
    mlflow_tracking_uri: str | None = None  # every job logged to this MLflow server (the `mlflow` extra)
    fault_dir: Path | None = None  # tests only: per-job injected crashes (core/jobs/faults.py)
    bootstrap_key: str | None = None


ENV = {
    "var_dir": "ROBUSTLAB_VAR_DIR",
    "database_url": "DATABASE_URL",
    "redis_url": "REDIS_URL",
    "artifact_url": "ARTIFACT_URL",
    "work_dir": "ROBUSTLAB_WORK_DIR",
    "public_url": "ROBUSTLAB_PUBLIC_URL",
    "max_upload_bytes": "ROBUSTLAB_MAX_UPLOAD_BYTES",
    "max_image_pixels": "ROBUSTLAB_MAX_IMAGE_PIXELS",
    "max_model_bytes": "ROBUSTLAB_MAX_MODEL_BYTES",
    "max_dataset_bytes": "ROBUSTLAB_MAX_DATASET_BYTES",
    "max_dataset_files": "ROBUSTLAB_MAX_DATASET_FILES",
    "data_root": "ROBUSTLAB_DATA_ROOT",
    "max_epochs": "ROBUSTLAB_MAX_EPOCHS",
    "max_attack_steps": "ROBUSTLAB_MAX_ATTACK_STEPS",
    "max_attack_queries": "ROBUSTLAB_MAX_ATTACK_QUERIES",
    "max_samples_per_request": "ROBUSTLAB_MAX_SAMPLES_PER_REQUEST",
    "max_sample_steps": "ROBUSTLAB_MAX_SAMPLE_STEPS",
    "max_eval_images": "ROBUSTLAB_MAX_EVAL_IMAGES",
    "max_eps_grid": "ROBUSTLAB_MAX_EPS_GRID",
    "max_smoothing_samples": "ROBUSTLAB_MAX_SMOOTHING_SAMPLES",
    "max_generated_per_class": "ROBUSTLAB_MAX_GENERATED_PER_CLASS",
    "max_ddpm_image_size": "ROBUSTLAB_MAX_DDPM_IMAGE_SIZE",
    "interactive_wait_seconds": "ROBUSTLAB_INTERACTIVE_WAIT_SECONDS",
    "max_queued_jobs_per_user": "ROBUSTLAB_MAX_QUEUED_JOBS_PER_USER",
    "max_running_train_jobs_per_user": "ROBUSTLAB_MAX_RUNNING_TRAIN_JOBS_PER_USER",
    "interactive_per_minute": "ROBUSTLAB_INTERACTIVE_PER_MINUTE",
    "lease_seconds": "ROBUSTLAB_LEASE_SECONDS",
    "visibility_timeout": "ROBUSTLAB_VISIBILITY_TIMEOUT",
    "model_cache_size": "ROBUSTLAB_MODEL_CACHE_SIZE",
    "max_attempts": "ROBUSTLAB_MAX_ATTEMPTS",
    "memory_budget_bytes": "ROBUSTLAB_MEMORY_BUDGET_BYTES",
    "outage_seconds": "ROBUSTLAB_OUTAGE_SECONDS",
    "job_time_limits": "ROBUSTLAB_JOB_TIME_LIMITS",
    "devices": "ROBUSTLAB_DEVICES",
    "mlflow_tracking_uri": "MLFLOW_TRACKING_URI",
    "fault_dir": "ROBUSTLAB_FAULT_DIR",
    "bootstrap_key": "ROBUSTLAB_BOOTSTRAP_KEY",
}


def settings_from_env(environ: dict[str, str] | None = None) -> Settings:
    """Settings from `environ` (default `os.environ`); unset variables keep their defaults."""
    environ = os.environ if environ is None else environ
    values = {field: environ[var] for field, var in ENV.items() if environ.get(var)}
    if "job_time_limits" in values:  # JSON: {"kind": seconds}, over the limits of the kinds' table
        values["job_time_limits"] = json.loads(values["job_time_limits"])
    var_dir = Path(values.get("var_dir", "var"))
    values.setdefault("database_url", f"sqlite:///{var_dir / 'robustlab.db'}")
    values.setdefault("artifact_url", str(var_dir / "artifacts"))
    values.setdefault("work_dir", str(var_dir / "work"))
    values.setdefault("data_root", str(var_dir / "data"))
    return Settings.model_validate(values)


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment that gives a child process these settings (`settings_from_env` read back)."""
    env = {}
    for field, var in ENV.items():
        value = getattr(settings, field)
        if value is None:
            continue
        env[var] = json.dumps(value) if isinstance(value, dict) else str(value)
    return env


def time_limit(settings: Settings, kind: str) -> float:
    """The kind's wall-clock limit in seconds: `ROBUSTLAB_JOB_TIME_LIMITS`' value for it, else its row's."""
    from core.contract.kinds import job_kind  # the table imports the specs; settings load first

    return settings.job_time_limits.get(kind, job_kind(kind).time_limit_hours * 3600.0)


def memory_budget(settings: Settings) -> int:
    """What one job's process may hold, in bytes: the setting, else 90 % of this machine's memory."""
    if settings.memory_budget_bytes:
        return settings.memory_budget_bytes
    return int(0.9 * os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


@lru_cache
def get_settings() -> Settings:
    return settings_from_env()
