"""Attacks, chosen by name from an `AttackSpec`; every one is `attack(model, x, y) -> x_adv`.

The model is put in eval mode for the attack and its mode restored; the result stays inside the
ε-ball around x and inside the [0, 1] box.
"""

from __future__ import annotations

from core.attacks.pgd import PGD
from core.attacks.threat import THREATS, L2Ball, LinfBall
from core.contract.specs import AttackSpec

__all__ = ["PGD", "LinfBall", "L2Ball", "build_attack", "default_step_size"]


def default_step_size(spec: AttackSpec) -> float:
    """α when the spec leaves it open: 2.5·ε/steps for PGD (Madry et al.); ε for FGSM, 1.25·ε
    from a random start (Wong et al. 2020)."""
    if spec.name == "fgsm":
        return 1.25 * spec.eps if spec.random_start else spec.eps
    return 2.5 * spec.eps / spec.steps


def build_attack(spec: AttackSpec) -> PGD:
    """The attack `spec` describes."""
    threat = THREATS[spec.norm](spec.eps)
    steps = 1 if spec.name == "fgsm" else spec.steps
    step_size = spec.step_size or default_step_size(spec) or 1.0  # ε = 0: any α, nothing moves
    return PGD(
        threat,
        steps=steps,
        step_size=step_size,
        random_start=spec.random_start,
        restarts=spec.restarts,
        early_stop=spec.early_stop,
    )
