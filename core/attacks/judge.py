"""Whether a point is broken, judged by its expected outcome: for a randomized model (random input
noise, a purifier) one forward pass is one draw, and a single lucky draw is no success. A point
counts as misclassified when the model gets it wrong in more than half of `passes` forward passes.

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
    if passes < 1:
        raise ValueError(f"passes must be >= 1, got {passes}")
    wrong = torch.zeros(len(x), device=x.device)
    for _ in range(passes):
        wrong += (model(x).argmax(1) != y).float()
    return wrong > passes / 2
