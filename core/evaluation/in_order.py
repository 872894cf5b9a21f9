"""Attacks in order, each only on the points every earlier attack failed to break (auto-attack's
scheme): a point counts as robust only if it survives them all (the per-sample worst case), and
each broken point remembers which attack broke it.

Whether a point is broken is decided by one more forward pass on the attack's output, so an
attack cannot claim a success the model does not show; for a randomized model, by the majority of
`judge_passes` passes (its expected outcome) or the first of them alone (the reference's judgement:
`core.attacks.judge.counted_wrong`), and every point runs all its iterations (`every_iteration`).
"""

from __future__ import annotations

import torch
from torch import nn

from core.attacks import build_attack
from core.attacks.judge import counted_wrong
from core.contract.attack_specs import AttackSpec
from core.contract.progress import StopFn, never_stop, stop_if_asked
from core.evaluation.basics import device_of
from core.modes import eval_mode


def attack_in_order(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    attacks: list[AttackSpec],
    candidates: torch.Tensor,
    *,
    batch_size: int = 256,
    should_stop: StopFn = never_stop,
    on_attack_done=None,
    judge: nn.Module | None = None,
    every_iteration: bool = False,
    judge_passes: int = 1,
) -> tuple[torch.Tensor, list[str | None]]:
    """Run `attacks` in order on the `candidates` (a boolean mask) still standing.

    Args:
        on_attack_done: called as `on_attack_done(i, label, robust_mask)` after attack i.
        judge: the model whose prediction on the attack's output decides whether a point is
            broken (default `model`): a transfer attack, made on `model`, judged on `judge`.
        every_iteration: the gradient attacks run every point for all their iterations (for a
            randomized model: no stop at one lucky fooling pass).
        judge_passes: a point is broken when `judge` misclassifies it in more than half of these
            forward passes, or in the first (1 for a deterministic model).

    Returns:
        (which candidates survive every attack, per point the label of the attack that broke it
        or None).

    Raises:
        Stopped: `should_stop` asked, between two batches.
    """
    robust = candidates.clone()
    broken_by: list[str | None] = [None] * len(x)
    device = device_of(model)
    judge = model if judge is None else judge
    for i, spec in enumerate(attacks):
        run = build_attack(spec, every_iteration=every_iteration, judge_passes=judge_passes)
        idx = robust.nonzero().flatten()
        for start in range(0, len(idx), batch_size):
            stop_if_asked(should_stop)
            b = idx[start : start + batch_size]
            xb, yb = x[b].to(device), y[b].to(device)
            x_adv = run(model, xb, yb)
            with eval_mode(judge):
                fooled = counted_wrong(judge, x_adv, yb, judge_passes).cpu()
            robust[b[fooled]] = False
            for j in b[fooled].tolist():
                broken_by[j] = spec.label
        if on_attack_done is not None:
            on_attack_done(i, spec.label, robust)
    return robust, broken_by


def robust_mask(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    attack: AttackSpec,
    eps: float,
    candidates: torch.Tensor,
    batch_size: int = 256,
) -> torch.Tensor:
    """Which of the `candidates` `attack` at radius `eps` fails to break (with early stopping).
    The training loop's per-epoch monitor."""
    if eps == 0:
        return candidates.clone()
    spec = attack.model_copy(update={"eps": eps, "early_stop": True})
    return attack_in_order(model, x, y, [spec], candidates, batch_size=batch_size)[0]
