"""Best-checkpoint selection against robust overfitting (Rice et al. 2020): the per-epoch monitor
runs on training images held out from training, and the run keeps the weights of the epoch whose
monitored robust accuracy was highest beside the last ones. The test images are never looked at.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from core.contract.recipe_specs import RecipeSpec

HOLDOUT_SALT = 7_919  # keeps the held-out draw apart from the data subset's and the epochs' shuffles


def holdout_split(n: int, holdout: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(rows trained on, rows held out) of `n` training images, `holdout` of them held out at
    random (fixed by `seed`), each sorted. With `holdout` 0 every row is trained on.

    Raises:
        ValueError: `holdout` leaves no image to train on.
    """
    if holdout == 0:
        return torch.arange(n), torch.empty(0, dtype=torch.long)
    if holdout >= n:
        raise ValueError(f"recipe.holdout {holdout} leaves none of the {n} training images to train on")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 1_000_003 + HOLDOUT_SALT))
    return order[holdout:].sort().values, order[:holdout].sort().values


@dataclass
class Best:
    """The best epoch so far by monitored robust accuracy (ties keep the earlier epoch)."""

    epoch: int = 0
    robust_acc: float = -1.0
    clean_acc: float = 0.0
    weights: dict[str, torch.Tensor] = field(default_factory=dict)

    def offer(self, epoch: int, metrics: dict[str, float], weights: dict[str, torch.Tensor]) -> bool:
        """Keep `weights` (copied) if epoch `epoch`'s robust accuracy beats the best; whether it did."""
        if metrics["robust_acc"] <= self.robust_acc:
            return False
        self.epoch, self.robust_acc, self.clean_acc = epoch, metrics["robust_acc"], metrics["clean_acc"]
        self.weights = {k: v.detach().clone() for k, v in weights.items()}
        return True

    @property
    def record(self) -> dict:
        """What the checkpoint's JSON and the run's result say about it."""
        return {"epoch": self.epoch, "robust_acc": self.robust_acc, "clean_acc": self.clean_acc}

    @classmethod
    def restored(cls, record: dict | None, weights: dict[str, torch.Tensor] | None) -> Best:
        if not record or weights is None:
            return cls()
        return cls(record["epoch"], record["robust_acc"], record["clean_acc"], weights)


def chosen_source(recipe: RecipeSpec) -> str | None:
    """Which weights a finished run hands on, when not simply its last ones: `best` (the best
    epoch's, averaged ones if the average is the model) or `ema`; None for the last weights."""
    if recipe.select == "best":
        return "best"
    return "ema" if recipe.averaged else None
