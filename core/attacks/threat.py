"""Threat models as constraint objects (after MadryLab's `robustness`): how to start, step and
project a perturbation `delta` so that x + delta stays in the ε-ball and the [0, 1] box."""

from __future__ import annotations

import torch


def _per_sample_norm(t: torch.Tensor) -> torch.Tensor:
    """L2 norm of each sample, shaped to broadcast against `t`."""
    return t.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, *([1] * (t.dim() - 1)))


class LinfBall:
    """{delta : ‖delta‖∞ ≤ ε}; steps follow the gradient's sign (steepest ascent in L∞)."""

    def __init__(self, eps: float):
        if eps < 0:
            raise ValueError(f"eps must be >= 0, got {eps}")
        self.eps = eps

    def random_start(self, x: torch.Tensor) -> torch.Tensor:
        return torch.empty_like(x).uniform_(-self.eps, self.eps)

    def step(self, delta: torch.Tensor, grad: torch.Tensor, step_size: float) -> torch.Tensor:
        return delta + step_size * grad.sign()

    def project(self, delta: torch.Tensor) -> torch.Tensor:
        return delta.clamp(-self.eps, self.eps)


class L2Ball:
    """{delta : ‖delta‖₂ ≤ ε}; steps follow the L2-normalised gradient."""

    def __init__(self, eps: float):
        if eps < 0:
            raise ValueError(f"eps must be >= 0, got {eps}")
        self.eps = eps

    def random_start(self, x: torch.Tensor) -> torch.Tensor:
        direction = torch.randn_like(x)
        radius = torch.rand(x.shape[0], device=x.device, dtype=x.dtype).view(-1, *([1] * (x.dim() - 1)))
        return direction / _per_sample_norm(direction) * radius * self.eps

    def step(self, delta: torch.Tensor, grad: torch.Tensor, step_size: float) -> torch.Tensor:
        return delta + step_size * grad / _per_sample_norm(grad)

    def project(self, delta: torch.Tensor) -> torch.Tensor:
        return delta * (self.eps / _per_sample_norm(delta)).clamp(max=1.0)


def into_box(x: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
    """The part of `delta` that keeps x + delta in [0, 1]. Clipping shrinks every coordinate
    toward 0, so a delta inside an Lp ball stays inside it."""
    return (x + delta).clamp(0.0, 1.0) - x


THREATS = {"linf": LinfBall, "l2": L2Ball}
