"""Data augmentation of a training batch on the training device: random crop with zero padding
and horizontal flip (the CIFAR-10 recipe of He et al. 2016, used by Madry et al. 2018 and Rice et
al. 2020), and the random-resized crop of ImageNet training (Szegedy et al. 2015).

The random draws come from a generator seeded by (seed, epoch, batch, rank) alone, so a resumed
run augments every batch as an uninterrupted one does, and augmentation never moves the global
RNG that the attacks' random starts use. Zero padding keeps the images in the [0, 1] box.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from core.contract.recipe_specs import RecipeSpec


def batch_generator(seed: int, epoch: int, batch: int, rank: int = 0) -> torch.Generator:
    """The CPU generator of one batch's augmentation draws (fixed by its place in the run; folded
    into the 63 bits a generator takes, whatever the seed)."""
    return torch.Generator().manual_seed((((seed * 1_000_003 + epoch) * 100_003 + batch) * 64 + rank) % 2**63)


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


RATIO = (3 / 4, 4 / 3)  # the random-resized crop's range of aspect ratios (torchvision's)


def random_resized_crop(x: torch.Tensor, min_scale: float, generator: torch.Generator) -> torch.Tensor:
    """Each image of `x` (N×C×H×W) cut to a window of a random share a ∈ [min_scale, 1] of its area
    and aspect ratio r ∈ [3/4, 4/3] (log-uniform) at a random place, resized back to H×W
    (bilinear). Where the window would leave the image its sides are cut to the image's (torchvision
    draws again instead). A convex combination of pixels: the [0, 1] box is kept."""
    n = len(x)
    area = min_scale + (1 - min_scale) * torch.rand(n, generator=generator)
    log_ratio = math.log(RATIO[0]) + (math.log(RATIO[1]) - math.log(RATIO[0])) * torch.rand(n, generator=generator)
    w, h = (area * log_ratio.exp()).sqrt().clamp(max=1), (area / log_ratio.exp()).sqrt().clamp(max=1)
    cx, cy = (2 * torch.rand(2, n, generator=generator) - 1) * torch.stack([1 - w, 1 - h])  # centres, in [-1, 1]
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0], theta[:, 0, 2], theta[:, 1, 1], theta[:, 1, 2] = w, cx, h, cy
    grid = F.affine_grid(theta.to(x.device, x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def random_flip(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Each image of `x` mirrored left to right with probability 1/2."""
    flip = (torch.rand(len(x), generator=generator) < 0.5).to(x.device)
    return torch.where(flip[:, None, None, None], x.flip(3), x)


def augment(x: torch.Tensor, recipe: RecipeSpec, generator: torch.Generator) -> torch.Tensor:
    """`x` with the recipe's augmentations (resized crop, crop, then flip); `x` itself when it asks
    for none."""
    if recipe.resized_crop is not None:
        x = random_resized_crop(x, recipe.resized_crop, generator)
    if recipe.crop_pad:
        x = random_crop(x, recipe.crop_pad, generator)
    if recipe.flip:
        x = random_flip(x, generator)
    return x
