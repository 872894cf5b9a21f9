"""Checks that come back with every evaluation, for the ways a robust accuracy can lie
(Carlini et al. 2019, "On evaluating adversarial robustness"; Croce & Hein 2020, Sec. 5):

- the model is randomized: two forward passes on the same inputs differ (attack it with EOT);
- it outputs probabilities instead of logits (cross-entropy on them saturates: weak gradients);
- a share of points has an exactly zero input gradient (nothing for a gradient attack to follow);
- the black-box attack breaks points the white-box attacks could not (a sign of masked gradients).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from core.contract.attack_specs import AttackSpec
from core.contract.names import GRADIENT_ATTACKS
from core.evaluation.basics import device_of
from core.modes import eval_mode

CHECK_IMAGES = 256  # images the model checks look at
RANDOM_TOLERANCE = 1e-5  # relative difference between two passes that counts as randomness
BLACK_BOX_TOLERANCE = 0.002  # the share the black-box attack may add before it is flagged (auto-attack's)


def model_checks(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict:
    """Randomness, probability outputs and zero gradients on the first `CHECK_IMAGES` images."""
    x, y = x[:CHECK_IMAGES].to(device_of(model)), y[:CHECK_IMAGES].to(device_of(model))
    with eval_mode(model):
        with torch.no_grad():
            first, second = model(x).float(), model(x).float()
        scale = first.abs().max().clamp_min(1e-12)
        randomized = bool(((first - second).abs().max() / scale) > RANDOM_TOLERANCE)
        rows = first.sum(1)
        probabilities = bool(
            first.min() >= 0 and first.max() <= 1 and torch.allclose(rows, torch.ones_like(rows), atol=1e-3)
        )
        x_req = x.detach().clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(F.cross_entropy(model(x_req).float(), y, reduction="sum"), x_req)
    zero = (grad.flatten(1).abs().amax(1) == 0).float().mean().item()
    return {"randomized": randomized, "outputs_probabilities": probabilities, "zero_gradient_share": zero}


def black_box_share(attacks: list[AttackSpec], broken_by: list[str | None]) -> float | None:
    """The share of points a black-box attack broke after every white-box attack had failed on
    them; None when no black-box attack ran after a white-box one."""
    white = [a.label for a in attacks if a.name in GRADIENT_ATTACKS]
    black = [a.label for a in attacks if a.name not in GRADIENT_ATTACKS]
    if not white or not black or min(attacks.index(a) for a in attacks if a.label in black) == 0:
        return None
    return sum(b in black for b in broken_by) / max(len(broken_by), 1)


def check_warnings(checks: dict) -> list[str]:
    """A warning for each check that flags a problem."""
    warnings = []
    if checks["randomized"]:
        warnings.append("the model is randomized (two passes differ): evaluate it with EOT, the `rand` protocol")
    if checks["outputs_probabilities"]:
        warnings.append("the model outputs probabilities, not logits: gradients of cross-entropy on them vanish")
    if checks["zero_gradient_share"] > 0:
        warnings.append(f"{checks['zero_gradient_share']:.1%} of the points have a zero input gradient: masking?")
    if (checks.get("black_box_share") or 0) > BLACK_BOX_TOLERANCE:
        warnings.append(
            f"the black-box attack broke {checks['black_box_share']:.1%} of the points the white-box attacks "
            "could not: a sign of gradient masking"
        )
    return warnings
