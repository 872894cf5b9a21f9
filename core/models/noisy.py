"""A randomized model for tests and benches of the evaluation: a classifier behind Gaussian input
noise, x ↦ model(clamp(x + σ·N(0, I), 0, 1)), a fresh draw at every forward pass (the simplest
randomized defense); unclamped, the noisy base classifier of randomized smoothing."""

from __future__ import annotations

import torch
from torch import nn


class NoisyInput(nn.Module):
    """`model` behind Gaussian input noise of standard deviation `sigma`, the noisy input clamped
    to [0, 1] unless `clamp` is False (randomized smoothing's noise is not clamped)."""

    def __init__(self, model: nn.Module, sigma: float, clamp: bool = True):
        super().__init__()
        if sigma < 0:
            raise ValueError(f"sigma must be >= 0, got {sigma}")
        self.model, self.sigma, self.clamp = model, sigma, clamp

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        noisy = x + self.sigma * torch.randn_like(x)
        return self.model(noisy.clamp(0, 1) if self.clamp else noisy)
