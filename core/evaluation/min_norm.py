"""Robustness curves from minimal norms: one FMN run (`core.attacks.fmn`) gives each point's least
adversarial perturbation norm, hence the robust accuracy at every radius at once,

    robust accuracy(ε) = share of points whose minimal norm exceeds ε,

with ε = 0 giving the clean accuracy. A minimum-norm attack is a second opinion beside the
fixed-ε ensemble, not a replacement: at a given ε it is at most as strong (its curve lies on or
above the ensemble's, up to noise), and a curve far below the ensemble's means a broken claim.

Every claim is judged again by a forward pass, as in `core.evaluation.in_order`: a point's norm
counts only if the model misclassifies the returned point, and the norm is recomputed from that
point. For deterministic models (one pass is the judgement).
"""

from __future__ import annotations

import logging
import time

import torch
from pydantic import BaseModel, ConfigDict
from torch import nn

from core.activations import true_gradients
from core.attacks.fmn import FMN
from core.attacks.hyperplane import lp_norm
from core.attacks.judge import misclassified
from core.contract.names import MinNorm
from core.contract.progress import StopFn, never_stop, stop_if_asked
from core.evaluation.basics import device_of
from core.modes import eval_mode

log = logging.getLogger(__name__)


class CurvePoint(BaseModel):
    model_config = ConfigDict(extra="forbid")

    eps: float
    robust_acc: float


class MinimalNormCurve(BaseModel):
    """The result of `minimal_norm_curve`.

    Attributes:
        norm: `linf`, `l2` or `l1`.
        steps: FMN's iterations.
        images: points attacked.
        clean_acc: the share the model classifies correctly.
        norms: per point its least adversarial norm: 0 when misclassified clean, None when no
            adversarial was found (robust at every radius the attack tried).
        curve: the robust accuracy at each radius asked for (and at 0).
        unconfirmed: points whose claimed adversarial a forward pass did not confirm (counted
            as not found; 0 unless something is wrong).
        seconds: wall time.
    """

    model_config = ConfigDict(extra="forbid")

    norm: MinNorm
    steps: int
    images: int
    clean_acc: float
    norms: list[float | None]
    curve: list[CurvePoint]
    unconfirmed: int
    seconds: float


def robust_at(norms: list[float | None], eps: float) -> float:
    """The share of points whose minimal norm exceeds `eps` (None: none found, robust)."""
    return sum(n is None or n > eps for n in norms) / max(len(norms), 1)


def minimal_norm_curve(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    norm: MinNorm,
    eps_grid: list[float],
    steps: int = 100,
    batch_size: int = 256,
    should_stop: StopFn = never_stop,
) -> MinimalNormCurve:
    """FMN's minimal norms on (x, y) and the robust accuracy at each ε of `eps_grid` (0 added),
    with the network's true gradients (a smooth-backward probe is switched off).

    Raises:
        ValueError: a negative radius, or an empty grid.
        Stopped: `should_stop` asked, between two batches.
    """
    if not eps_grid or min(eps_grid) < 0:
        raise ValueError("eps_grid needs at least one radius, all >= 0")
    t0 = time.perf_counter()
    attack, device = FMN(norm, steps=steps), device_of(model)
    norms: list[float | None] = []
    unconfirmed, correct = 0, 0
    with true_gradients(model):
        for start in range(0, len(x), batch_size):
            stop_if_asked(should_stop)
            xb, yb = x[start : start + batch_size].to(device), y[start : start + batch_size].to(device)
            found, claimed = attack.minimal(model, xb, yb)
            with eval_mode(model):
                wrong_clean = misclassified(model, xb, yb)
                wrong_found = misclassified(model, found, yb)
            measured = lp_norm(found - xb, norm)
            claims = claimed.isfinite() & ~wrong_clean
            unconfirmed += int((claims & ~wrong_found).sum())
            correct += int((~wrong_clean).sum())
            hits = claims & wrong_found
            for clean_wrong, hit, n in zip(wrong_clean.tolist(), hits.tolist(), measured.tolist(), strict=True):
                norms.append(0.0 if clean_wrong else (n if hit else None))
    if unconfirmed:
        log.warning("%d adversarial points FMN claimed were not misclassified by the model", unconfirmed)
    grid = sorted({0.0, *eps_grid})
    return MinimalNormCurve(
        norm=norm,
        steps=steps,
        images=len(x),
        clean_acc=correct / max(len(x), 1),
        norms=norms,
        curve=[CurvePoint(eps=e, robust_acc=robust_at(norms, e)) for e in grid],
        unconfirmed=unconfirmed,
        seconds=time.perf_counter() - t0,
    )


class CurveGap(BaseModel):
    model_config = ConfigDict(extra="forbid")

    eps: float
    ensemble: float
    min_norm: float
    tolerance: float


def noise(accuracy: float, images: int) -> float:
    """Two standard errors of an accuracy measured on `images` points, at least one point's
    share: how far two attacks' accuracies on the same points may differ by chance alone."""
    return max(2 * (accuracy * (1 - accuracy) / max(images, 1)) ** 0.5, 1 / max(images, 1))


def compare_with_ensemble(ensemble: list[dict], curve: MinimalNormCurve) -> tuple[list[CurveGap], list[str]]:
    """The two curves side by side at the ensemble's radii, and what their disagreement means.

    A minimum-norm attack is meant to be nearly as strong as the ensemble at each ε. Its curve
    above the ensemble's by more than noise: FMN is too weak there (more steps) and its curve is
    only an upper bound. Below it: FMN found adversarials within ε that the ensemble missed, so
    the ensemble's robust accuracy is too high at that ε.
    """
    gaps, warnings = [], []
    for point in ensemble:
        eps = point["eps"]
        if eps == 0:
            continue
        ours = robust_at(curve.norms, eps)
        gap = CurveGap(eps=eps, ensemble=point["robust_acc"], min_norm=ours, tolerance=noise(ours, curve.images))
        gaps.append(gap)
        if ours < gap.ensemble - gap.tolerance:
            warnings.append(
                f"at ε = {eps:g} FMN leaves {ours:.1%} against the ensemble's {gap.ensemble:.1%}: it found "
                "adversarials the ensemble missed, so the ensemble's robust accuracy is too high there"
            )
        elif ours > gap.ensemble + gap.tolerance:
            warnings.append(
                f"at ε = {eps:g} FMN leaves {ours:.1%} against the ensemble's {gap.ensemble:.1%}: FMN is weaker "
                f"there (it ran {curve.steps} steps); its curve is an upper bound"
            )
    return gaps, warnings
