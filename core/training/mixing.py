"""Which images each batch holds: the real training set alone, or real and generated images mixed
at a fixed share of every batch (Gowal et al. 2021). Every index is fixed by the seed, the epoch
and the batch number, so a resumed run draws the batches an uninterrupted one would."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from core.contract.specs import GeneratedMixSpec
from core.data.dataset import Dataset


@dataclass(frozen=True)
class BatchPlan:
    """`real` real and `generated` generated images per batch, `batches` batches per epoch."""

    n_real: int
    n_generated: int
    real: int
    generated: int
    batches: int


def batch_plan(batch_size: int, n_real: int, mix: GeneratedMixSpec | None, n_generated: int = 0) -> BatchPlan:
    if mix is None:
        return BatchPlan(n_real, 0, batch_size, 0, math.ceil(n_real / batch_size))
    generated = min(batch_size - 1, max(1, round(batch_size * mix.fraction)))
    real = batch_size - generated
    batches = math.ceil(n_real / (batch_size if mix.length == "same_steps" else real))
    return BatchPlan(n_real, n_generated, real, generated, batches)


def _order(n: int, seed: int) -> torch.Tensor:
    return torch.randperm(n, generator=torch.Generator().manual_seed(seed))


def epoch_orders(plan: BatchPlan, seed: int, epoch: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The epoch's shuffles of the real and the generated images."""
    real = _order(plan.n_real, seed * 100_003 + epoch)
    generated = _order(plan.n_generated, seed * 100_003 + epoch + 7_919_000) if plan.generated else None
    return real, generated


def batch_indices(plan: BatchPlan, orders: tuple, b: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Indices of batch `b` into the real and the generated training images. Without generated
    images the last batch of an epoch is short; mixed batches are all full (the shuffles wrap)."""
    real_order, generated_order = orders
    if generated_order is None:
        return real_order[b * plan.real : (b + 1) * plan.real], None
    real = real_order[torch.arange(b * plan.real, (b + 1) * plan.real) % plan.n_real]
    generated = generated_order[torch.arange(b * plan.generated, (b + 1) * plan.generated) % plan.n_generated]
    return real, generated


def check_mixable(real: Dataset, generated: Dataset) -> None:
    """Raises ValueError when the generated images cannot join the real ones' batches."""
    if tuple(generated.x_train.shape[1:]) != tuple(real.x_train.shape[1:]) or len(generated.x_train) == 0:
        raise ValueError(
            f"generated images {tuple(generated.x_train.shape)} do not fit the real ones {tuple(real.x_train.shape)}"
        )
    if generated.num_classes != real.num_classes:
        raise ValueError(f"generated data has {generated.num_classes} classes, the real data {real.num_classes}")
