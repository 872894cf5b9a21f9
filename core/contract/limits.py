"""What each job kind asks of the server, as the quantities a setting bounds: the row of a kind in
`core.contract.kinds` names its function here, and the API refuses a spec asking for more than
the setting allows (422 naming the field). A kind with nothing to bound returns no limits; it
still says so on its row. Torch-free.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.contract.attack_specs import AttackSpec, ProtocolSpec
from core.contract.certify_specs import CertifySpec
from core.contract.diffusion_specs import (
    DatasetGenerationSpec,
    DDPMForwardSpec,
    DDPMSampleSpec,
    DDPMTrainSpec,
    DefendedModelSpec,
)
from core.contract.job_specs import DatasetUploadSpec, EvalSpec, ImageAttackSpec, ModelUploadSpec
from core.contract.specs import TrainSpec


@dataclass(frozen=True)
class Limit:
    """`value` of the spec at `field` may not exceed the server setting named `setting`
    (an attribute of `core.settings.Settings`)."""

    field: str
    value: float
    setting: str


def attack_limits(prefix: str, attack: AttackSpec) -> list[Limit]:
    """Square's queries against one limit, the gradient attacks' model evaluations per point
    (iterations × restarts × targets × EOT) against another."""
    if attack.name == "square":
        return [Limit(f"{prefix}.queries", attack.cost, "max_attack_queries")]
    return [Limit(f"{prefix}.steps", attack.cost, "max_attack_steps")]


def protocol_limits(prefix: str, protocol: ProtocolSpec) -> list[Limit]:
    out = [Limit(f"{prefix}.images", protocol.images, "max_eval_images")]
    for i, attack in enumerate(protocol.attack_specs()):
        out += attack_limits(f"{prefix}.attacks[{i}]", attack)
    return out


def training(spec: TrainSpec) -> list[Limit]:
    return [
        Limit("epochs", spec.epochs, "max_epochs"),
        *attack_limits("attack", spec.attack),
        *attack_limits("eval_attack", spec.eval_attack),
        *protocol_limits("protocol", spec.protocol),
        Limit("eval_subset", spec.eval_subset, "max_eval_images"),
    ]


def evaluation(spec: EvalSpec) -> list[Limit]:
    out = protocol_limits("protocol", spec.protocol)
    if spec.eps_grid:  # every radius runs the whole protocol again
        out.append(Limit("eps_grid", len(spec.eps_grid), "max_eps_grid"))
    return out


def certification(spec: CertifySpec) -> list[Limit]:
    """The images, the noise samples per image (selection and estimation, and PREDICT's) and the
    empirical attack's model evaluations per point and radius."""
    out = [
        Limit("images", spec.images, "max_eval_images"),
        Limit("smoothing.n", spec.smoothing.n0 + spec.smoothing.n, "max_smoothing_samples"),
    ]
    if spec.empirical is not None:
        out += [
            Limit("empirical.steps", spec.empirical.steps * spec.empirical.eot, "max_attack_steps"),
            Limit("radii", len(spec.radii), "max_eps_grid"),
        ]
    return out


def image_attack(spec: ImageAttackSpec) -> list[Limit]:
    return attack_limits("attack", spec.attack)


def upload(spec: ModelUploadSpec | DatasetUploadSpec) -> list[Limit]:
    """Nothing in the spec: the upload's bytes are bounded by its route (413)."""
    return []


def ddpm_training(spec: DDPMTrainSpec) -> list[Limit]:
    return [Limit("epochs", spec.epochs, "max_epochs"), Limit("image_size", spec.image_size, "max_ddpm_image_size")]


def sampling(spec: DDPMSampleSpec) -> list[Limit]:
    return [Limit("n", spec.n, "max_samples_per_request"), Limit("steps", spec.num_steps, "max_sample_steps")]


def forward(spec: DDPMForwardSpec) -> list[Limit]:
    """One forward pass per timestep, at most 50 of them (the spec's own bound): nothing to add."""
    return []


def generation(spec: DatasetGenerationSpec) -> list[Limit]:
    return [
        Limit("per_class", spec.per_class, "max_generated_per_class"),
        Limit("steps", spec.num_steps, "max_sample_steps"),
    ]


def defense(spec: DefendedModelSpec) -> list[Limit]:
    """The purifier's reverse steps run on every forward pass of every attack."""
    return [Limit("purifier.steps", spec.purifier.steps, "max_sample_steps")]
