"""The input gradient every gradient attack steps along, in one place: a per-sample loss of the
model's logits and its gradient, averaged over several forward passes when the model is randomized
(expectation over transformation, Athalye et al. 2018)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

Loss = Callable[[torch.Tensor], torch.Tensor]  # logits -> per-sample loss


def averaged_gradient(
    model: nn.Module, x_in: torch.Tensor, loss: Loss, passes: int = 1
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(per-sample loss, ∇ₓ of its sum, the last pass's logits) at `x_in`, the loss and the gradient
    averaged over `passes` forward passes."""
    grad, total = torch.zeros_like(x_in), None
    for _ in range(passes):
        x_req = x_in.detach().requires_grad_(True)
        logits = model(x_req)
        value = loss(logits)
        (g,) = torch.autograd.grad(value.sum(), x_req)
        grad += g
        total = value.detach() if total is None else total + value.detach()
    return total / passes, grad / passes, logits.detach()
