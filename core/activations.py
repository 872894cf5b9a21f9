"""Activations by name, and the ReLU-forward / smooth-backward probe of Xie et al. 2020.

Smooth adversarial training's probe keeps ReLU in the forward pass and replaces its derivative
with that of the parametric softplus, d/dx [log(1+exp(αx))/α] = 1/(1+exp(−αx)) (α = 10), in the
backward pass of the attack (inner maximisation), of the weight update (outer minimisation), or
both. Which backward pass is running is a property of the model: attacks wrap their gradient
computation in `gradient_phase(model, "attack")`; everything else is the `update` phase.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Literal

import torch
from torch import nn

from core.contract.specs import ActivationSpec

Phase = Literal["attack", "update"]
PROBE_ALPHA = 10.0


class SmoothReLU(nn.Module):
    """SmoothReLU(x) = x − log(αx+1)/α for x ≥ 0, else 0 (Xie et al. 2020, Sec. 4).

    Its derivative αx/(αx+1) is continuous at 0 and tends to ReLU's as α → ∞.
    """

    def __init__(self, alpha: float = 10.0):
        super().__init__()
        if alpha <= 0:
            raise ValueError(f"alpha must be > 0, got {alpha}")
        self.alpha = alpha

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pos = x.clamp_min(0)
        return pos - torch.log1p(self.alpha * pos) / self.alpha

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}"


class _ReLUSoftplusGrad(torch.autograd.Function):
    """ReLU forward; backward multiplies by the parametric-softplus derivative σ(αx)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, alpha: float) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.alpha = alpha
        return torch.relu(x)

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        (x,) = ctx.saved_tensors
        return grad_out * torch.sigmoid(ctx.alpha * x), None


class ProbeReLU(nn.Module):
    """ReLU whose backward pass is smooth in the chosen phases (`attack`, `update` or both).

    The forward output is bit-identical to `torch.relu`.
    """

    def __init__(self, smooth_in: frozenset[str], alpha: float = PROBE_ALPHA):
        super().__init__()
        self.smooth_in = smooth_in
        self.alpha = alpha
        self.phase: Phase = "update"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.phase in self.smooth_in and torch.is_grad_enabled():
            return _ReLUSoftplusGrad.apply(x, self.alpha)
        return torch.relu(x)

    def extra_repr(self) -> str:
        return f"smooth_backward_in={sorted(self.smooth_in)}, alpha={self.alpha}"


_PROBE_PHASES = {
    "attack": frozenset({"attack"}),
    "update": frozenset({"update"}),
    "both": frozenset({"attack", "update"}),
}


def build_activation(spec: ActivationSpec) -> nn.Module:
    """A fresh activation module for `spec`."""
    if spec.probe != "none":
        return ProbeReLU(_PROBE_PHASES[spec.probe], spec.alpha or PROBE_ALPHA)
    match spec.name:
        case "relu":
            return nn.ReLU()
        case "softplus":
            return nn.Softplus(beta=spec.beta)
        case "silu":
            return nn.SiLU()
        case "gelu":
            return nn.GELU()
        case "elu":
            return nn.ELU(alpha=spec.alpha or 1.0)
        case "smooth_relu":
            return SmoothReLU(spec.alpha or 10.0)
    raise ValueError(f"unknown activation {spec.name!r}")


@contextlib.contextmanager
def gradient_phase(model: nn.Module, phase: Phase) -> Iterator[None]:
    """Mark every probe activation of `model` as running `phase`, restoring the old phase after."""
    probes = [m for m in model.modules() if isinstance(m, ProbeReLU)]
    before = [m.phase for m in probes]
    for m in probes:
        m.phase = phase
    try:
        yield
    finally:
        for m, old in zip(probes, before, strict=True):
            m.phase = old


@contextlib.contextmanager
def true_gradients(model: nn.Module) -> Iterator[None]:
    """Every probe of `model` runs as plain ReLU, backward included, for the duration.

    The probe is a training device (Xie et al. evaluate every network with standard attacks):
    evaluation, serving and the attack lab must attack the network's own gradient.
    """
    probes = [m for m in model.modules() if isinstance(m, ProbeReLU)]
    before = [m.smooth_in for m in probes]
    for m in probes:
        m.smooth_in = frozenset()
    try:
        yield
    finally:
        for m, old in zip(probes, before, strict=True):
            m.smooth_in = old


def drop_probes(model: nn.Module) -> nn.Module:
    """Make every probe of `model` plain ReLU for good (a loaded model is for evaluation and
    serving, never for more training); returns the model."""
    for m in model.modules():
        if isinstance(m, ProbeReLU):
            m.smooth_in = frozenset()
    return model
