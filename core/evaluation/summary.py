"""What the registry keeps about a classifier's robustness: the headline under its protocol, the
attack breakdown and checks, a cheap robustness curve (labelled as such), and every evaluation
made of it since, each with its protocol."""

from __future__ import annotations

import torch
from torch import nn

from core.contract.attack_specs import ProtocolSpec
from core.contract.progress import Progress, ProgressFn, StopFn, never_stop, no_progress
from core.contract.results import Evaluation
from core.evaluation.protocol import evaluate

EVALUATION_FIELDS = (
    "protocol",
    "protocol_label",
    "images",
    "eps",
    "norm",
    "clean_acc",
    "robust_acc",
    "breakdown",
    "checks",
    "warnings",
)


def curve_grid(eps: float) -> list[float]:
    """The robustness curve stored with every trained model: 0 to 3ε."""
    return [0.0, eps / 2, eps, 1.5 * eps, 2 * eps, 3 * eps]


def evaluation_entry(evaluation: Evaluation, job_id: str | None = None) -> dict:
    """The part of an `evaluate` result the registry lists among a model's evaluations."""
    entry = evaluation.model_dump(mode="json", include=set(EVALUATION_FIELDS))
    if evaluation.defense is not None:  # a defended model's
        entry |= {"defense": evaluation.defense, "robust_acc_by": evaluation.robust_acc_by}
    return {**entry, "job_id": job_id}


def classifier_summary(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    protocol: ProtocolSpec,
    *,
    num_classes: int,
    curve_images: int,
    job_id: str | None = None,
    progress: ProgressFn = no_progress,
    should_stop: StopFn = never_stop,
) -> dict:
    """The headline evaluation under `protocol` (90 % of the progress) and the cheap `pgd` curve
    from 0 to 3ε on the first `curve_images` images."""

    def stage(start: float, end: float) -> ProgressFn:
        return lambda p: progress(Progress(start + (end - start) * p.fraction, p.message))

    headline = evaluate(
        model, x, y, protocol, num_classes=num_classes, progress=stage(0.0, 0.9), should_stop=should_stop
    )
    cheap = protocol.model_copy(update={"ensemble": "pgd", "attacks": None, "steps": None, "images": curve_images})
    curve = evaluate(
        model,
        x,
        y,
        cheap,
        num_classes=num_classes,
        eps_grid=curve_grid(protocol.eps),
        progress=stage(0.9, 1.0),
        should_stop=should_stop,
    )
    return {
        **headline.model_dump(mode="json", include={*EVALUATION_FIELDS, "sanity"}),
        "curve": [p.model_dump() for p in curve.curve],
        "curve_protocol_label": cheap.label,
        "evaluations": [evaluation_entry(headline, job_id)],
    }
