"""Predictions in eval mode, in batches, on the model's device."""

from __future__ import annotations

import torch
from torch import nn

from core.modes import eval_mode


def device_of(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def logits_of(model: nn.Module, x: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """The model's outputs for `x` (on the CPU), in eval mode."""
    with eval_mode(model):
        return torch.cat(
            [model(x[i : i + batch_size].to(device_of(model))).float().cpu() for i in range(0, len(x), batch_size)]
        )


def predict(model: nn.Module, x: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """Predicted labels for `x`, in eval mode."""
    return logits_of(model, x, batch_size).argmax(1)


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 512) -> float:
    return (predict(model, x, batch_size) == y).float().mean().item()
