"""Job kinds and the spec model of each: the one table the API, the worker and the CLI share."""

from __future__ import annotations

from pydantic import BaseModel

from core.specs import DDPMForwardSpec, DDPMSampleSpec, DDPMTrainSpec, EvalSpec, ImageAttackSpec, TrainSpec

JOB_SPECS: dict[str, type[BaseModel]] = {
    "adversarial_training": TrainSpec,
    "attack_evaluation": EvalSpec,
    "image_attack": ImageAttackSpec,
    "ddpm_training": DDPMTrainSpec,
    "ddpm_sampling": DDPMSampleSpec,
    "ddpm_forward": DDPMForwardSpec,
}
TASK_NAME = "robustlab.execute_job"  # the one Celery task; the job's kind picks the runner
