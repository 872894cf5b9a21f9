"""Does a spec fit the registered objects it names? Checked at submission from the registry's rows,
so that a job that could only fail in the worker (or, worse, succeed with a meaningless number)
is a 422 naming the field instead."""

from __future__ import annotations

import json

from fastapi import HTTPException, status
from pydantic import BaseModel
from sqlalchemy.orm import Session

from core.contract.certify_specs import CertifySpec
from core.contract.datasets import dataset_info
from core.contract.diffusion_specs import DDPMForwardSpec, DefendedModelSpec
from core.contract.job_specs import EvalSpec, ImageAttackSpec
from core.contract.specs import DataSpec, ModelSpec
from core.settings import Settings
from core.store.orm import DatasetRow
from core.store.registry import get_model


def _refuse(message: str) -> HTTPException:
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, message)


def check_fits_what_it_names(session: Session, settings: Settings, spec: BaseModel, model: ModelSpec | None) -> None:
    """Every check below that applies to `spec` (`model`: the architecture of the classifier it
    acts on, if any)."""
    check_label(spec, model)
    check_defended_attack_cost(session, settings, spec)
    check_own_data(session, spec)
    check_defense_parts(session, spec)
    check_timesteps(session, spec)
    check_test_index(session, spec)


def check_label(spec: BaseModel, model: ModelSpec | None) -> None:
    """422 when a spec's true label is not one of its model's classes (the worker would fail on it)."""
    label = spec.label if isinstance(spec, ImageAttackSpec) else None  # elsewhere `label` names a setting
    if label is not None and model is not None and label >= model.num_classes:
        raise _refuse(
            f"spec.label: {label} is not a class of model {spec.model_id}, which has {model.num_classes} "
            f"(0 to {model.num_classes - 1})"
        )


def check_own_data(session: Session, spec: BaseModel) -> None:
    """422 when an evaluation or a certification names other data than its model's: the result is
    recorded on the model as its robustness (a digits model measured on the default Fashion-MNIST
    succeeded with a meaningless number, another shape failed in the worker)."""
    if not isinstance(spec, (EvalSpec, CertifySpec)) or spec.model_id is None:
        return
    row = get_model(session, model_id=spec.model_id)
    if row is not None and spec.data.label != row.dataset:
        own = DataSpec.from_label(row.dataset).model_dump(mode="json", exclude_defaults=True)
        raise _refuse(
            f"spec.data: model {spec.model_id} was registered on {row.dataset!r}, not {spec.data.label!r}; "
            f"give data {json.dumps(own or {'name': row.dataset})} (its test split is what it is measured on)"
        )


def check_defense_parts(session: Session, spec: BaseModel) -> None:
    """A defended model's parts: an undefended classifier and a diffusion model of the same data,
    and a t* below the diffusion model's T."""
    if not isinstance(spec, DefendedModelSpec):
        return
    classifier = get_model(session, model_id=spec.classifier_id)
    diffusion = get_model(session, model_id=spec.diffusion_id)
    if classifier is None or diffusion is None:
        return  # authorisation answers 404 for these
    if classifier.architecture == "purified":
        raise _refuse(f"spec.classifier_id: {spec.classifier_id} is already a defended model; name its classifier")
    if classifier.dataset != diffusion.dataset:
        raise _refuse(
            f"spec.diffusion_id: the classifier is of {classifier.dataset!r}, the diffusion model of "
            f"{diffusion.dataset!r}: a purifier must model the classifier's data"
        )
    big_t = (diffusion.recipe or {}).get("num_train_timesteps")
    if isinstance(big_t, int) and spec.purifier.t_star >= big_t:
        raise _refuse(f"spec.purifier.t_star: {spec.purifier.t_star} must be below the diffusion model's T = {big_t}")


def check_timesteps(session: Session, spec: BaseModel) -> None:
    """The forward explorer's timesteps lie below its diffusion model's T."""
    if not isinstance(spec, DDPMForwardSpec) or not spec.timesteps:
        return
    row = get_model(session, model_id=spec.model_id)
    big_t = (row.recipe or {}).get("num_train_timesteps") if row is not None else None
    if isinstance(big_t, int) and max(spec.timesteps) >= big_t:
        raise _refuse(f"spec.timesteps: {max(spec.timesteps)} is not below the diffusion model's T = {big_t}")


def count_test_images(session: Session, label: str) -> int | None:
    """How many test images the dataset a registry label names has (None: not known before loading)."""
    data = DataSpec.from_label(label)
    if data.name == "uploaded":
        row = session.get(DatasetRow, data.dataset_id)
        return sum((row.classes or {}).get("test") or []) if row is not None else None
    info = dataset_info(data.name)
    return info.test if info is not None else None


def check_test_index(session: Session, spec: BaseModel) -> None:
    """An image picked by `test_index` exists in its model's test split."""
    if not isinstance(spec, (ImageAttackSpec, DDPMForwardSpec)) or spec.test_index is None:
        return
    row = get_model(session, model_id=spec.model_id)
    count = count_test_images(session, row.dataset) if row is not None else None
    if count is not None and spec.test_index >= count:
        raise _refuse(
            f"spec.test_index: {spec.test_index} is past {row.dataset}'s {count} test images (0 to {count - 1})"
        )


def check_defended_attack_cost(session: Session, settings: Settings, spec: BaseModel) -> None:
    """An interactive image attack on a defended model runs the purifier's reverse steps in every
    model pass: its cost counts them against `max_attack_steps` (a 5,000-step attack behind 1,000
    reverse steps was accepted: millions of UNet passes on the interactive queue)."""
    if not isinstance(spec, ImageAttackSpec):
        return
    row = get_model(session, model_id=spec.model_id)
    purifier = ((row.recipe or {}).get("defense") or {}).get("purifier") if row is not None else None
    if not purifier:
        return
    passes = spec.attack.cost * int(purifier.get("steps", 1))
    if passes > settings.max_attack_steps:
        raise _refuse(
            f"spec.attack: {spec.attack.cost} model passes through the defense's {purifier.get('steps')} reverse "
            f"steps are {passes} network passes per image, over the limit of {settings.max_attack_steps} "
            "(ROBUSTLAB_MAX_ATTACK_STEPS): fewer attack steps"
        )
