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

from core.contract import presets
from core.contract.diffusion_specs import (
    DatasetGenerationSpec,
    DDPMForwardSpec,
    DDPMSampleSpec,
    DDPMTrainSpec,
    DefendedModelSpec,
)
from core.contract.job_specs import DatasetUploadSpec, EvalSpec, ImageAttackSpec, ModelUploadSpec
from core.contract.names import ModelKind, Queue
from core.contract.specs import Spec, TrainSpec

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
        runner: `module:function` of `runner(spec, ctx) -> result dict`.
        presets: returns the kind's named starting specs (`{name: spec}`).
        acts_on: the kind of registered model the spec's `model_id` names, or None.
    """

    name: str
    title: str
    spec: type[Spec]
    queue: Queue
    runner: str
    presets: Callable[[], dict[str, Spec]]
    acts_on: ModelKind | None = None

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
    ),
    JobKind(
        name="attack_evaluation",
        title="Attack evaluation",
        spec=EvalSpec,
        queue="train",
        runner=f"{_CLASSIFIER}:run_attack_evaluation",
        presets=presets.evaluation_presets,
        acts_on="classifier",
    ),
    JobKind(
        name="image_attack",
        title="Attack one image",
        spec=ImageAttackSpec,
        queue="interactive",
        runner=f"{_CLASSIFIER}:run_image_attack",
        presets=presets.image_attack_presets,
        acts_on="classifier",
    ),
    JobKind(
        name="model_upload",
        title="Register an uploaded model",
        spec=ModelUploadSpec,
        queue="interactive",
        runner=f"{_CLASSIFIER}:run_model_upload",
        presets=presets.upload_presets,
    ),
    JobKind(
        name="dataset_upload",
        title="Register an uploaded dataset",
        spec=DatasetUploadSpec,
        queue="interactive",
        runner="core.jobs.data_runners:run_dataset_upload",
        presets=presets.dataset_upload_presets,
    ),
    JobKind(
        name="ddpm_training",
        title="DDPM training",
        spec=DDPMTrainSpec,
        queue="train",
        runner=f"{_DIFFUSION}:run_ddpm_training",
        presets=presets.ddpm_presets,
    ),
    JobKind(
        name="ddpm_sampling",
        title="DDPM sampling",
        spec=DDPMSampleSpec,
        queue="interactive",
        runner=f"{_DIFFUSION}:run_ddpm_sampling",
        presets=presets.sampling_presets,
        acts_on="diffusion",
    ),
    JobKind(
        name="ddpm_forward",
        title="Forward-process explorer",
        spec=DDPMForwardSpec,
        queue="interactive",
        runner=f"{_DIFFUSION}:run_ddpm_forward",
        presets=presets.forward_presets,
        acts_on="diffusion",
    ),
    JobKind(
        name="dataset_generation",
        title="Generate a labelled dataset",
        spec=DatasetGenerationSpec,
        queue="train",
        runner="core.jobs.generation_runners:run_dataset_generation",
        presets=presets.generation_presets,
        acts_on="diffusion",
    ),
    JobKind(
        name="defended_model",
        title="Register a purification defense",
        spec=DefendedModelSpec,
        queue="interactive",
        runner="core.jobs.defense_runners:run_defended_model",
        presets=presets.defense_presets,
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
