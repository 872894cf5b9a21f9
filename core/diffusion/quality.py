"""Sample quality, named for what it is: the Fréchet distance between generated and test images in
the penultimate-layer feature space of a classifier trained by robustlab (not "FID", which needs
Inception weights this project cannot fetch), plus that classifier's class histogram and mean
confidence on the samples."""

from __future__ import annotations

import numpy as np
import torch
from scipy import linalg
from torch import nn

from core.modes import eval_mode


@torch.no_grad()
def penultimate_features(
    classifier: nn.Module, x: torch.Tensor, batch_size: int = 512
) -> tuple[np.ndarray, np.ndarray]:
    """(features entering the last linear layer, softmax probabilities) for images x in [0, 1]."""
    last = [m for m in classifier.modules() if isinstance(m, nn.Linear)][-1]
    captured = []
    hook = last.register_forward_hook(lambda m, inp, out: captured.append(inp[0].detach().float().cpu()))
    probs = []
    device = next(classifier.parameters()).device
    try:
        with eval_mode(classifier):
            for i in range(0, len(x), batch_size):
                probs.append(torch.softmax(classifier(x[i : i + batch_size].to(device)).float(), 1).cpu())
    finally:
        hook.remove()
    return torch.cat(captured).numpy().astype(np.float64), torch.cat(probs).numpy()


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """‖μ_a − μ_b‖² + Tr(Σ_a + Σ_b − 2 (Σ_a Σ_b)^½) between two feature sets (rows = samples)."""
    if len(a) < 2 or len(b) < 2:
        raise ValueError("the Fréchet distance needs at least two samples on each side")
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean, _ = linalg.sqrtm(cov_a @ cov_b, disp=False)
    if not np.isfinite(covmean).all():  # near-singular product: regularise (as the FID code does)
        offset = np.eye(len(cov_a)) * 1e-6
        covmean = linalg.sqrtm((cov_a + offset) @ (cov_b + offset))
    covmean = covmean.real
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(cov_a) + np.trace(cov_b) - 2 * np.trace(covmean))


def sample_quality(
    classifier: nn.Module, samples: torch.Tensor, reference: torch.Tensor, class_names: list[str] | None = None
) -> dict:
    """Fréchet distance (samples vs reference images), class histogram and mean confidence."""
    f_s, p_s = penultimate_features(classifier, samples)
    f_r, _ = penultimate_features(classifier, reference)
    counts = np.bincount(p_s.argmax(1), minlength=p_s.shape[1])
    names = class_names or [str(i) for i in range(len(counts))]
    return {
        "frechet_distance": frechet_distance(f_s, f_r),
        "feature_space": "robustlab classifier, penultimate layer",
        "samples": len(samples),
        "reference": len(reference),
        "class_histogram": {names[i]: int(c) for i, c in enumerate(counts)},
        "mean_confidence": float(p_s.max(1).mean()),
    }
