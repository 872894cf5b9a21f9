"""Whether a point is broken, judged by its expected outcome: for a randomized model (random input
noise, a purifier) one forward pass is one draw, and a single lucky draw is no success. A point
counts as misclassified when the model gets it wrong in more than half of `passes` forward passes
(`misclassified`: what the attacks use to decide whether a point still needs attacking).

The count an evaluation reports (`counted_wrong`) also takes the reference's judgement, one pass
(fra31/auto-attack judges clean and attacked points by one forward pass each): a point wrong in the
first of its passes counts as wrong too, so the reported accuracy is never above either way of
judging (DESIGN.md: when evaluations disagree, the lowest number is the result). On a model whose
noise leaves a point wrong 30–49 % of the time, the majority alone would count it correct every
time where the reference counts it wrong that often: 8–18 points too much on a noisy linear model.

`JUDGE_PASSES = 15`: an odd count (no ties) at which a point the model misclassifies with
probability 0.3 or 0.7 is judged wrongly in about 5 % of cases (the binomial tail of 15 draws),
for 15 forward passes per point, a small cost beside an attack's 100 iterations × EOT 20.
"""

from __future__ import annotations

import torch
from torch import nn

JUDGE_PASSES = 15


@torch.no_grad()
def misclassified(model: nn.Module, x: torch.Tensor, y: torch.Tensor, passes: int = 1) -> torch.Tensor:
    """Per point: the model's prediction is wrong in more than half of `passes` forward passes (one
    pass: simply wrong). The model's mode is the caller's to set."""
    wrong, _ = _wrong_passes(model, x, y, passes)
    return wrong > passes / 2


@torch.no_grad()
def counted_wrong(model: nn.Module, x: torch.Tensor, y: torch.Tensor, passes: int = 1) -> torch.Tensor:
    """Per point: wrong in more than half of `passes` passes, or in the first of them (the
    reference's one-pass judgement). One pass: simply wrong."""
    wrong, first = _wrong_passes(model, x, y, passes)
    return (wrong > passes / 2) | first


def _wrong_passes(model: nn.Module, x: torch.Tensor, y: torch.Tensor, passes: int):
    """(in how many of `passes` forward passes each point is wrong, whether it is in the first)."""
    if passes < 1:
        raise ValueError(f"passes must be >= 1, got {passes}")
    first = model(x).argmax(1) != y
    wrong = first.float()
    for _ in range(passes - 1):
        wrong += (model(x).argmax(1) != y).float()
    return wrong, first
