"""Data augmentation of a training batch on the training device: random crop with zero padding
and horizontal flip (the CIFAR-10 recipe of He et al. 2016, used by Madry et al. 2018 and Rice et
al. 2020).

The random draws come from a generator seeded by (seed, epoch, batch, rank) alone, so a resumed
run augments every batch as an uninterrupted one does, and augmentation never moves the global
RNG that the attacks' random starts use. Zero padding keeps the images in the [0, 1] box.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from core.contract.recipe_specs import RecipeSpec


def batch_generator(seed: int, epoch: int, batch: int, rank: int = 0) -> torch.Generator:
    """The CPU generator of one batch's augmentation draws (fixed by its place in the run)."""
    return torch.Generator().manual_seed(((seed * 1_000_003 + epoch) * 100_003 + batch) * 64 + rank)


def random_crop(x: torch.Tensor, pad: int, generator: torch.Generator) -> torch.Tensor:
    """Each image of `x` (N×C×H×W) padded with `pad` zeros per side and cut back to H×W at an
    offset drawn uniformly from {0, …, 2·pad}² per image."""
    if pad == 0:
        return x
    n, c, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))
    dy, dx = torch.randint(0, 2 * pad + 1, (2, n), generator=generator).to(x.device)
    rows = (dy[:, None] + torch.arange(h, device=x.device))[:, None, :, None].expand(n, c, h, w + 2 * pad)
    cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, None, :].expand(n, c, h, w)
    return padded.gather(2, rows).gather(3, cols)


def random_flip(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Each image of `x` mirrored left to right with probability 1/2."""
    flip = (torch.rand(len(x), generator=generator) < 0.5).to(x.device)
    return torch.where(flip[:, None, None, None], x.flip(3), x)


def augment(x: torch.Tensor, recipe: RecipeSpec, generator: torch.Generator) -> torch.Tensor:
    """`x` with the recipe's augmentations (crop, then flip); `x` itself when it asks for none."""
    if recipe.crop_pad:
        x = random_crop(x, recipe.crop_pad, generator)
    if recipe.flip:
        x = random_flip(x, generator)
    return x
