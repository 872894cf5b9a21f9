"""The table of job kinds: for each kind, its spec model, the queue that runs it, its presets and
its runner. Everything else (the API's schema, the store's routing, the worker, the command line
and the dashboard's lists) derives from this table; adding a kind is one row here and one runner.

Runners are named by `module:function` and imported only when a worker runs the kind, so this
table stays torch-free.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from core.contract import limits, memory, presets
from core.contract.certify_specs import CertifySpec
from core.contract.diffusion_specs import (
    DatasetGenerationSpec,
    DDPMForwardSpec,
    DDPMSampleSpec,
    DDPMTrainSpec,
    DefendedModelSpec,
)
from core.contract.job_specs import DatasetUploadSpec, EvalSpec, ImageAttackSpec, ModelUploadSpec
from core.contract.limits import Limit
from core.contract.names import ModelKind, Queue
from core.contract.references import declared
from core.contract.specs import ModelSpec, Spec, TrainSpec

TASK_NAME = "robustlab.execute_job"  # the one Celery task; the job's kind picks the runner


@dataclass(frozen=True)
class JobKind:
    """One kind of job.

    Args:
        name: the kind's name in the API, the store and the command line.
        title: a short human name (menus, help texts).
        spec: the spec model a job of this kind is validated against.
        queue: the Celery queue whose workers run it (`train` for long work, `interactive` for
            work a person waits for).
        runner: `module:function` of `runner(spec, ctx) -> result` (a dict, or a model of
            `core.contract.results`, stored as JSON).
        presets: returns the kind's named starting specs (`{name: spec}`).
        limits: the spec's quantities that server settings bound (`core.contract.limits`); an
            empty list says the kind has none.
        memory: `memory(spec, model) -> bytes`, the estimated peak memory of the job's processes
            (`model`: the registered classifier it acts on, if known) for memory admission.
        memory_fields: the fields that lower it, for the refusal's message.
        time_limit_hours: the wall-clock limit of one job (`ROBUSTLAB_JOB_TIME_LIMITS` overrides).
        direct: submitted with `POST /v1/jobs`; False for the upload kinds, which only their
            routes make (the upload and its job in one transaction, see docs/security.md).
        makes_private: what the job makes is its owner's alone (a dataset), so the job is private
            (see `core.store.privacy`).

    What the spec names of stored objects is declared on its fields (`core.contract.references`).
    """

    name: str
    title: str
    spec: type[Spec]
    queue: Queue
    runner: str
    presets: Callable[[], dict[str, Spec]]
    limits: Callable[[Any], list[Limit]]
    memory: Callable[[Any, ModelSpec | None], int]
    memory_fields: str
    time_limit_hours: float
    direct: bool = True
    makes_private: bool = False

    @property
    def acts_on(self) -> ModelKind | None:
        """The kind of registered model the spec's `model_id` names (declared on the field), or None."""
        return next((ref.model_kind for path, ref in declared(self.spec) if path == "model_id"), None)

    def resolve_runner(self) -> Callable[[Any, Any], dict]:
        """The runner function (imports its module, which may need torch)."""
        module, _, function = self.runner.partition(":")
        return getattr(importlib.import_module(module), function)


_CLASSIFIER = "core.jobs.classifier_runners"
_DIFFUSION = "core.jobs.diffusion_runners"
_ROWS = (
    JobKind(
        name="adversarial_training",
        title="Adversarial training",
        spec=TrainSpec,
        queue="train",
        runner=f"{_CLASSIFIER}:run_adversarial_training",
        presets=presets.training_presets,
        limits=limits.training,
        memory=memory.train_bytes,
        memory_fields="batch_size, model.width or model.arch",
        time_limit_hours=48.0,
    ),
    JobKind(
        name="attack_evaluation",
        title="Attack evaluation",
        spec=EvalSpec,
        queue="train",
        runner=f"{_CLASSIFIER}:run_attack_evaluation",
        presets=presets.evaluation_presets,
        limits=limits.evaluation,
        memory=memory.evaluation_bytes,
        memory_fields="batch_size",
        time_limit_hours=12.0,
    ),
    JobKind(
        name="certification",
        title="Certified robustness (randomized smoothing)",
        spec=CertifySpec,
        queue="train",
        runner="core.jobs.certification_runner:run_certification",
        presets=presets.certification_presets,
        limits=limits.certification,
        memory=memory.certification_bytes,
        memory_fields="smoothing.batch",
        time_limit_hours=12.0,
    ),
    JobKind(
        name="image_attack",
        title="Attack one image",
        spec=ImageAttackSpec,
        queue="interactive",
        runner=f"{_CLASSIFIER}:run_image_attack",
        presets=presets.image_attack_presets,
        limits=limits.image_attack,
        memory=memory.interactive_bytes,
        memory_fields="the model",
        time_limit_hours=600 / 3600,
    ),
    JobKind(
        name="model_upload",
        title="Register an uploaded model",
        spec=ModelUploadSpec,
        queue="interactive",
        runner=f"{_CLASSIFIER}:run_model_upload",
        presets=presets.upload_presets,
        limits=limits.upload,
        memory=memory.model_upload_bytes,
        memory_fields="model.width or model.arch",
        time_limit_hours=0.5,
        direct=False,
    ),
    JobKind(
        name="dataset_upload",
        title="Register an uploaded dataset",
        spec=DatasetUploadSpec,
        queue="interactive",
        runner="core.jobs.data_runners:run_dataset_upload",
        presets=presets.dataset_upload_presets,
        limits=limits.upload,
        memory=memory.dataset_upload_bytes,
        memory_fields="the archive",
        time_limit_hours=1.0,
        direct=False,
        makes_private=True,
    ),
    JobKind(
        name="ddpm_training",
        title="DDPM training",
        spec=DDPMTrainSpec,
        queue="train",
        runner=f"{_DIFFUSION}:run_ddpm_training",
        presets=presets.ddpm_presets,
        limits=limits.ddpm_training,
        memory=memory.ddpm_train_bytes,
        memory_fields="batch_size, image_size or unet.block_out_channels",
        time_limit_hours=72.0,
    ),
    JobKind(
        name="ddpm_sampling",
        title="DDPM sampling",
        spec=DDPMSampleSpec,
        queue="interactive",
        runner=f"{_DIFFUSION}:run_ddpm_sampling",
        presets=presets.sampling_presets,
        limits=limits.sampling,
        memory=memory.interactive_bytes,
        memory_fields="n",
        time_limit_hours=0.5,
    ),
    JobKind(
        name="ddpm_forward",
        title="Forward-process explorer",
        spec=DDPMForwardSpec,
        queue="interactive",
        runner=f"{_DIFFUSION}:run_ddpm_forward",
        presets=presets.forward_presets,
        limits=limits.forward,
        memory=memory.interactive_bytes,
        memory_fields="the model",
        time_limit_hours=600 / 3600,
    ),
    JobKind(
        name="dataset_generation",
        title="Generate a labelled dataset",
        spec=DatasetGenerationSpec,
        queue="train",
        runner="core.jobs.generation_runners:run_dataset_generation",
        presets=presets.generation_presets,
        limits=limits.generation,
        memory=memory.generation_bytes,
        memory_fields="shard_size",
        time_limit_hours=24.0,
        makes_private=True,
    ),
    JobKind(
        name="defended_model",
        title="Register a purification defense",
        spec=DefendedModelSpec,
        queue="interactive",
        runner="core.jobs.defense_runners:run_defended_model",
        presets=presets.defense_presets,
        limits=limits.defense,
        memory=memory.interactive_bytes,
        memory_fields="the model",
        time_limit_hours=0.5,
    ),
)
JOB_KINDS: dict[str, JobKind] = {kind.name: kind for kind in _ROWS}
# The kinds as a type, for the API's request schema (derived: the table is the one list).
JobKindName = Literal[tuple(JOB_KINDS)]  # type: ignore[valid-type]
JOB_KIND_NAMES: tuple[str, ...] = tuple(JOB_KINDS)


def job_kind(name: str) -> JobKind:
    """The row of kind `name`.

    Raises:
        ValueError: no such kind.
    """
    if name not in JOB_KINDS:
        raise ValueError(f"unknown job kind {name!r}; known: {', '.join(JOB_KINDS)}")
    return JOB_KINDS[name]


def preset_specs(kind: str) -> dict[str, dict]:
    """The presets of `kind` as JSON-ready dicts (`model_id` left empty where one is needed)."""
    return {name: spec.model_dump(mode="json") for name, spec in job_kind(kind).presets().items()}


def merged(base: dict, overrides: dict) -> dict:
    """`base` with `overrides` laid over it, nested objects merged key by key (a list or a value
    replaces what was there)."""
    out = dict(base)
    for key, value in overrides.items():
        out[key] = merged(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def spec_from_preset(kind: str, preset: str | None = None, overrides: dict | None = None) -> dict:
    """The JSON spec of `kind`'s preset `preset` (its first when None) with `overrides` merged in
    (not yet validated: the caller validates it like any spec).

    Raises:
        ValueError: `kind` has no such preset.
    """
    presets = preset_specs(kind)
    name = preset or next(iter(presets))
    if name not in presets:
        raise ValueError(f"{kind} has no preset {name!r}; choose from {', '.join(presets)}")
    return merged(presets[name], overrides or {})
