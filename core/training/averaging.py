"""An exponential moving average of the weights (Polyak averaging in its EMA form), as Gowal et
al. 2020 and Rebuffi et al. 2021 keep it for adversarial training: after every optimizer step

    θ_ema ← d·θ_ema + (1 − d)·θ,

and the buffers (batch-norm statistics) are copied, as the DDPM's average does. The average is a
second copy of the network, so it is evaluated, attacked and saved like the model itself.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class WeightAverage:
    """The EMA of `model`'s weights with decay `decay` ∈ [0, 1); starts at the weights themselves.

    Args:
        model: the network being trained (not a DDP wrapper).
        decay: d; 0 makes the average equal the weights after every step.
    """

    def __init__(self, model: nn.Module, decay: float):
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay must be in [0, 1), got {decay}")
        self.decay = decay
        self.model = copy.deepcopy(model).requires_grad_(False).eval()

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """One step of the average towards `model`'s current weights."""
        # lerp(a, b, w) = a + w·(b − a), computed as b − (1 − w)·(b − a) for w ≥ 0.5: exact at d = 0
        torch._foreach_lerp_(list(self.model.parameters()), list(model.parameters()), 1.0 - self.decay)
        for b_avg, b in zip(self.model.buffers(), model.buffers(), strict=True):
            b_avg.copy_(b)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self.model.state_dict()

    def load_state_dict(self, tensors: dict[str, torch.Tensor]) -> None:
        self.model.load_state_dict(tensors)
