"""A randomized model for tests and benches of the evaluation: a classifier behind Gaussian input
noise, x ↦ model(clamp(x + σ·N(0, I), 0, 1)), a fresh draw at every forward pass (the simplest
randomized defense, and the base classifier of randomized smoothing)."""

from __future__ import annotations

import torch
from torch import nn


class NoisyInput(nn.Module):
    """`model` behind Gaussian input noise of standard deviation `sigma` (clamped to [0, 1])."""

    def __init__(self, model: nn.Module, sigma: float):
        super().__init__()
        if sigma < 0:
            raise ValueError(f"sigma must be >= 0, got {sigma}")
        self.model, self.sigma = model, sigma

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model((x + self.sigma * torch.randn_like(x)).clamp(0, 1))
