"""PGD-20 (L∞, ε = 0.1, α = 2.5ε/20, random start) on 1,000 Fashion-MNIST test images, batch 128,
against a PGD-trained small CNN: robustlab's attack, a minimal hand-written PyTorch loop and ART's
ProjectedGradientDescent, on the same weights, side by side in one run.

robustlab runs twice: as its evaluation runs it (early stop on fooled points, channels_last
weights) and like-for-like (every point all 20 steps, NCHW), so each gain is visible.

    .venv/bin/python -m bench.pgd_vs_art [--repeats 5] [--checkpoint DIR]
"""

from __future__ import annotations

import argparse
import copy
import logging

import numpy as np
import torch
import torch.nn.functional as F

from bench.common import fashion_data, machine, report, time_interleaved, trained_model
from core.attacks import build_attack
from core.contract.attack_specs import AttackSpec

EPS, STEPS, BATCH = 0.1, 20, 128
ALPHA = 2.5 * EPS / STEPS


def minimal_pgd(model, x, y):
    """The shortest correct PGD: what a researcher would write by hand."""
    delta = torch.empty_like(x).uniform_(-EPS, EPS)
    delta = (x + delta).clamp(0, 1) - x
    for _ in range(STEPS):
        delta.requires_grad_(True)
        loss = F.cross_entropy(model(x + delta), y)
        (grad,) = torch.autograd.grad(loss, delta)
        delta = (delta.detach() + ALPHA * grad.sign()).clamp(-EPS, EPS)
        delta = (x + delta).clamp(0, 1) - x
    return (x + delta).detach()


def batched(fn, x, y):
    return torch.cat([fn(x[i : i + BATCH], y[i : i + BATCH]) for i in range(0, len(x), BATCH)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--checkpoint", help="classifier checkpoint folder (default: train one)")
    args = parser.parse_args()
    logging.getLogger("art").setLevel(logging.WARNING)
    from art.attacks.evasion import ProjectedGradientDescent
    from art.estimators.classification import PyTorchClassifier

    model = trained_model(args.checkpoint)
    model_cl = copy.deepcopy(model).to(memory_format=torch.channels_last)
    ds = fashion_data(n_test=1000)
    x, y = ds.x_test, ds.y_test
    spec = AttackSpec(eps=EPS, steps=STEPS, step_size=ALPHA)
    ours_eval = build_attack(spec.model_copy(update={"early_stop": True}))
    ours_full = build_attack(spec)
    clf = PyTorchClassifier(
        model=copy.deepcopy(model),
        loss=torch.nn.CrossEntropyLoss(),
        input_shape=(1, 28, 28),
        nb_classes=10,
        clip_values=(0.0, 1.0),
        device_type="cpu",
    )
    art_pgd = ProjectedGradientDescent(
        clf, norm=np.inf, eps=EPS, eps_step=ALPHA, max_iter=STEPS, num_random_init=1, batch_size=BATCH, verbose=False
    )
    x_np, y_np = x.numpy(), y.numpy()
    runs = {
        "robustlab PGD, evaluation mode": lambda: batched(lambda a, b: ours_eval(model_cl, a, b), x, y),
        "robustlab PGD, all steps, NCHW": lambda: batched(lambda a, b: ours_full(model, a, b), x, y),
        "minimal PyTorch loop": lambda: batched(lambda a, b: minimal_pgd(model, a, b), x, y),
        "ART ProjectedGradientDescent": lambda: torch.from_numpy(art_pgd.generate(x=x_np, y=y_np)),
    }
    results = {}
    contestants = {name: (lambda n=name, f=fn: results.__setitem__(n, f())) for name, fn in runs.items()}
    for fn in contestants.values():  # warm-up
        fn()
    times = time_interleaved(contestants, args.repeats)
    print(f"Machine: {machine()}\n")
    print(
        report(
            "PGD-20, 1,000 Fashion-MNIST images, batch 128 (vs ART)",
            times,
            len(x),
            "ART ProjectedGradientDescent",
            "images",
        )
    )
    print()
    print(report("Same run (vs the minimal loop)", times, len(x), "minimal PyTorch loop", "images"))
    with torch.no_grad():
        print(
            f"\nClean accuracy {(model(x).argmax(1) == y).float().mean():.3f}; accuracy under each attack "
            "(the same work done, a sanity check):"
        )
        for name, x_adv in results.items():
            assert (x_adv - x).abs().max() <= EPS + 1e-5
            print(f"- {name}: {(model(x_adv).argmax(1) == y).float().mean():.3f}")


if __name__ == "__main__":
    main()
