"""Attacks, chosen by name from an `AttackSpec`; every one is `attack(model, x, y) -> x_adv`.

The model is put in eval mode for the attack and its mode restored; the result stays inside the
ε-ball around x and inside the [0, 1] box.
"""

from __future__ import annotations

from collections.abc import Callable

from core.attacks.apgd import APGD
from core.attacks.fab import FAB
from core.attacks.fmn import FMN
from core.attacks.pgd import PGD
from core.attacks.square import Square
from core.attacks.threat import THREATS, L2Ball, LinfBall
from core.contract.attack_specs import AttackSpec
from core.contract.names import AttackName

__all__ = ["APGD", "FAB", "FMN", "PGD", "Square", "LinfBall", "L2Ball", "build_attack", "default_step_size"]


def default_step_size(spec: AttackSpec) -> float:
    """α when the spec leaves it open: 2.5·ε/steps for PGD (Madry et al.); ε for FGSM, 1.25·ε
    from a random start (Wong et al. 2020)."""
    if spec.name == "fgsm":
        return 1.25 * spec.eps if spec.random_start else spec.eps
    return 2.5 * spec.eps / spec.iterations


def _pgd(spec: AttackSpec, threat, every_iteration: bool, judge_passes: int) -> PGD:
    step_size = spec.step_size or default_step_size(spec) or 1.0  # ε = 0: any α, nothing moves
    return PGD(
        threat,
        steps=spec.iterations,
        step_size=step_size,
        random_start=spec.random_start,
        restarts=spec.restarts,
        early_stop=spec.early_stop and not every_iteration,
        eot=spec.eot,
    )


def _apgd(loss: str) -> Callable[..., APGD]:
    def build(spec: AttackSpec, threat, every_iteration: bool, judge_passes: int) -> APGD:
        return APGD(
            threat,
            steps=spec.iterations,
            loss=loss,
            restarts=spec.restarts,
            targets=spec.targets,
            eot=spec.eot,
            every_iteration=every_iteration,
            judge_passes=judge_passes,
        )

    return build


def _fab(spec: AttackSpec, threat, every_iteration: bool, judge_passes: int) -> FAB:
    """FAB-T runs every point for all its iterations anyway; `judge_passes` judges between runs."""
    return FAB(
        threat,
        steps=spec.iterations,
        targets=spec.targets,
        restarts=spec.restarts,
        eot=spec.eot,
        judge_passes=judge_passes,
    )


def _fmn(spec: AttackSpec, threat, every_iteration: bool, judge_passes: int) -> FMN:
    """FMN runs every point for all its iterations anyway; the caller judges its output."""
    return FMN(spec.norm, eps=spec.eps, steps=spec.iterations, eot=spec.eot)


# One builder per attack name of the contract (a test checks that none is missing).
BUILDERS: dict[AttackName, Callable[..., object]] = {
    "pgd": _pgd,
    "fgsm": _pgd,
    "apgd-ce": _apgd("ce"),
    "apgd-dlr": _apgd("dlr"),
    "apgd-t": _apgd("dlr-targeted"),
    "fab-t": _fab,
    "fmn": _fmn,
    "square": lambda spec, threat, every_iteration, judge_passes: Square(
        threat, queries=spec.queries, restarts=spec.restarts, every_iteration=every_iteration, judge_passes=judge_passes
    ),
}


def build_attack(spec: AttackSpec, *, every_iteration: bool = False, judge_passes: int = 1):
    """The attack `spec` describes. For a randomized model the evaluation asks for
    `every_iteration` (no point stops at its first fooling iterate: PGD, APGD and Square run all
    their iterations) and judges between runs by `judge_passes` forward passes."""
    return BUILDERS[spec.name](spec, THREATS[spec.norm](spec.eps), every_iteration, judge_passes)
