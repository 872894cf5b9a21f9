"""Randomized smoothing (Cohen, Rosenfeld & Kolter 2019): the smoothed classifier
g(x) = argmax_c P(f(x + N(0, σ²I)) = c) of a base classifier f, and its L2 certificate.

- `predict` (the paper's PREDICT): n noisy copies, the two most frequent classes' counts nA, nB;
  g's answer is the top class when a two-sided binomial test of nA against nA + nB at 1/2 rejects
  at level α, else it abstains.
- `certify` (CERTIFY): n0 copies choose the class cA, n fresh copies bound pA = P(f(x + δ) = cA)
  from below (one-sided Clopper–Pearson at 1 − α); when the bound exceeds 1/2, g is certified
  constant on the L2 ball of radius σ·Φ⁻¹(pA_lower) (with probability ≥ 1 − α over the noise),
  else it abstains.

The noise of each image comes from a generator seeded by (seed, the image's index) alone: the
answer does not depend on the batch size or on what ran before, and the global RNG is untouched.
"""

from __future__ import annotations

import torch
from torch import nn

from core.contract.certify_specs import SmoothingSpec
from core.evaluation.basics import device_of
from core.modes import eval_mode

ABSTAIN = -1


def noise_generator(seed: int, index: int, device: torch.device) -> torch.Generator:
    """The generator of image `index`'s noise (a different stream for selection and estimation
    comes from drawing them in turn)."""
    return torch.Generator(device=device).manual_seed(seed * 1_000_003 + index)


@torch.no_grad()
def class_counts(
    model: nn.Module, x: torch.Tensor, sigma: float, n: int, num_classes: int, generator: torch.Generator, batch: int
) -> torch.Tensor:
    """How often f classifies each of `n` copies of the image `x` (C×H×W) under N(0, σ²I) noise as
    each class: an int64 tensor of `num_classes` counts summing to n."""
    counts = torch.zeros(num_classes, dtype=torch.int64, device=x.device)
    left = n
    while left:
        k = min(batch, left)
        noise = torch.randn((k, *x.shape), generator=generator, device=x.device, dtype=x.dtype)
        predictions = model(x.unsqueeze(0) + sigma * noise).argmax(1)
        counts += torch.bincount(predictions, minlength=num_classes)
        left -= k
    return counts


def lower_confidence_bound(successes: int, trials: int, alpha: float) -> float:
    """The one-sided (1 − α) Clopper–Pearson lower bound of a binomial proportion."""
    from scipy.stats import beta  # scipy only where a bound is computed (the GPU bench has none)

    return 0.0 if successes == 0 else float(beta.ppf(alpha, successes, trials - successes + 1))


def radius_of(p_lower: float, sigma: float) -> float:
    """The certified L2 radius σ·Φ⁻¹(pA_lower) (0 when pA_lower ≤ 1/2: nothing certified)."""
    from scipy.stats import norm

    return float(sigma * norm.ppf(p_lower)) if p_lower > 0.5 else 0.0


def certify_one(
    model: nn.Module, x: torch.Tensor, s: SmoothingSpec, num_classes: int, generator: torch.Generator
) -> tuple[int, float]:
    """CERTIFY for one image: `(class, radius)`, or `(ABSTAIN, 0.0)`."""
    selection = class_counts(model, x, s.sigma, s.n0, num_classes, generator, s.batch)
    top = int(selection.argmax())
    estimate = class_counts(model, x, s.sigma, s.n, num_classes, generator, s.batch)
    p_lower = lower_confidence_bound(int(estimate[top]), s.n, s.alpha)
    return (top, radius_of(p_lower, s.sigma)) if p_lower > 0.5 else (ABSTAIN, 0.0)


def predict_one(
    model: nn.Module, x: torch.Tensor, s: SmoothingSpec, num_classes: int, generator: torch.Generator
) -> int:
    """PREDICT for one image: the smoothed classifier's class, or ABSTAIN."""
    from scipy.stats import binomtest

    counts = class_counts(model, x, s.sigma, s.n, num_classes, generator, s.batch)
    first, second = counts.topk(2).values.tolist()
    if binomtest(first, first + second, 0.5).pvalue > s.alpha:
        return ABSTAIN
    return int(counts.argmax())


def certify(
    model: nn.Module, x: torch.Tensor, s: SmoothingSpec, *, num_classes: int, seed: int = 0, first_index: int = 0
) -> tuple[list[int], list[float]]:
    """CERTIFY for each image of `x` (N×C×H×W): the classes (ABSTAIN where it abstains) and the
    certified radii. `first_index` is the index of x[0] in the evaluated set (its noise seed)."""
    device = device_of(model)
    with eval_mode(model):
        answers = [
            certify_one(model, image, s, num_classes, noise_generator(seed, first_index + i, device))
            for i, image in enumerate(x.to(device))
        ]
    return [c for c, _ in answers], [r for _, r in answers]


PREDICT_STREAM = 7_919  # PREDICT's noise: another stream than CERTIFY's for the same image


def predict(
    model: nn.Module, x: torch.Tensor, s: SmoothingSpec, *, num_classes: int, seed: int = 0, first_index: int = 0
) -> list[int]:
    """PREDICT for each image of `x`: the smoothed classifier's classes (ABSTAIN where it abstains)."""
    device = device_of(model)
    with eval_mode(model):
        return [
            predict_one(model, image, s, num_classes, noise_generator(seed + PREDICT_STREAM, first_index + i, device))
            for i, image in enumerate(x.to(device))
        ]
