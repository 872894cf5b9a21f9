"""Certified L2 robustness of a classifier under randomized smoothing (`core.evaluation.smoothing`),
with the empirical attack on the same smoothed classifier beside it.

certified accuracy(r) = share of images whose CERTIFY answer is the true class with radius ≥ r;
abstentions count as errors at every radius, r = 0 included. The empirical robust accuracy at r is
the share whose PREDICT answer on the attacked image (an L2 perturbation of norm ≤ r) is still the
true class. A certificate holds for every perturbation, so the certified curve lies below the
empirical one; a certified point above it (beyond PREDICT's own Monte-Carlo noise) is a bug.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
from pydantic import BaseModel, ConfigDict
from torch import nn

from core.activations import true_gradients
from core.attacks import build_attack
from core.contract.attack_specs import AttackSpec
from core.contract.certify_specs import CertifySpec
from core.contract.progress import Progress, ProgressFn, StopFn, never_stop, no_progress, stop_if_asked
from core.evaluation.basics import device_of
from core.evaluation.smoothing import ABSTAIN, certify, predict
from core.models.noisy import NoisyInput

CHUNK = 16  # images between two progress reports and stop checks


class RadiusPoint(BaseModel):
    model_config = ConfigDict(extra="forbid")

    radius: float
    certified_acc: float
    empirical_acc: float | None = None


class Certification(BaseModel):
    """The result of `certified_robustness`.

    Attributes:
        spec: the certification's settings (σ, n0, n, α, images, seed, radii, the attack).
        label: the settings in one line.
        images: images certified.
        clean_acc: the smoothed classifier's accuracy by PREDICT (abstentions are errors).
        abstain_rate: the share CERTIFY abstained on.
        curve: certified (and empirical) accuracy at 0 and each radius.
        predictions, radii: per image CERTIFY's class (-1: abstained) and certified radius.
        labels: per image the true class.
        seconds: wall time.
    """

    model_config = ConfigDict(extra="forbid")

    spec: dict
    label: str
    images: int
    clean_acc: float
    abstain_rate: float
    curve: list[RadiusPoint]
    predictions: list[int]
    radii: list[float]
    labels: list[int]
    seconds: float


def certified_at(predictions: list[int], radii: list[float], labels: list[int], radius: float) -> float:
    """The share of images certified correct at L2 radius `radius`."""
    hits = [p == y and r >= radius for p, r, y in zip(predictions, radii, labels, strict=True)]
    return sum(hits) / max(len(hits), 1)


def certified_robustness(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    spec: CertifySpec,
    *,
    num_classes: int,
    progress: ProgressFn = no_progress,
    should_stop: StopFn = never_stop,
) -> Certification:
    """CERTIFY and PREDICT on the first `spec.images` of (x, y), and the empirical attack if asked.

    Raises:
        Stopped: `should_stop` asked.
    """
    t0 = time.perf_counter()
    x, y = x[: spec.images], y[: spec.images]
    s, grid = spec.smoothing, sorted({0.0, *spec.radii})
    settings = {"num_classes": num_classes, "seed": spec.seed}
    predictions, radii, smoothed = [], [], []
    total, done = len(x) * (2 + (len(grid) - 1 if spec.empirical else 0)), 0

    def advance(images: int, message: str) -> None:
        nonlocal done
        done += images
        progress(Progress(fraction=done / total, message=message))

    for start in range(0, len(x), CHUNK):
        stop_if_asked(should_stop)
        xb = x[start : start + CHUNK]
        classes, r = certify(model, xb, s, first_index=start, **settings)
        predictions += classes
        radii += r
        smoothed += predict(model, xb, s, first_index=start, **settings)
        advance(2 * len(xb), f"certified {start + len(xb)} of {len(x)} images")
    labels = y.tolist()
    clean = sum(p == t for p, t in zip(smoothed, labels, strict=True)) / max(len(x), 1)
    empirical = {}
    if spec.empirical is not None:
        devices = [torch.cuda.current_device()] if torch.cuda.is_available() else []
        with torch.random.fork_rng(devices=devices):  # the attack's noise and starts, seeded
            torch.manual_seed(spec.seed)
            empirical = {0.0: clean, **empirical_accuracy(model, x, y, spec, grid, num_classes, should_stop, advance)}
    curve = [
        RadiusPoint(radius=r, certified_acc=certified_at(predictions, radii, labels, r), empirical_acc=empirical.get(r))
        for r in grid
    ]
    return Certification(
        spec=spec.model_dump(mode="json", exclude={"model_id"}),
        label=spec.label,
        images=len(x),
        clean_acc=clean,
        abstain_rate=sum(p == ABSTAIN for p in predictions) / max(len(x), 1),
        curve=curve,
        predictions=predictions,
        radii=radii,
        labels=labels,
        seconds=time.perf_counter() - t0,
    )


def empirical_accuracy(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    spec: CertifySpec,
    grid: list[float],
    num_classes: int,
    should_stop: StopFn,
    advance: Callable[[int, str], None],
) -> dict[float, float]:
    """PREDICT's accuracy on the images attacked at each radius > 0 of `grid`."""
    noisy, device = NoisyInput(model, spec.smoothing.sigma, clamp=False), device_of(model)
    out = {}
    for radius in grid:
        if radius == 0:
            continue
        attack = build_attack(  # a randomized model: every point runs all its iterations
            AttackSpec(name="apgd-ce", norm="l2", eps=radius, steps=spec.empirical.steps, eot=spec.empirical.eot),
            every_iteration=True,
        )
        correct = 0
        for start in range(0, len(x), CHUNK):
            stop_if_asked(should_stop)
            xb, yb = x[start : start + CHUNK].to(device), y[start : start + CHUNK].to(device)
            with true_gradients(model):
                x_adv = attack(noisy, xb, yb).detach()
            answers = predict(model, x_adv, spec.smoothing, num_classes=num_classes, seed=spec.seed, first_index=start)
            correct += sum(a == t for a, t in zip(answers, yb.tolist(), strict=True))
            advance(len(xb), f"attacking the smoothed classifier at r = {radius:g}")
        out[radius] = correct / max(len(x), 1)
    return out
