"""robustlab's randomized-smoothing certificate against ART's (`PyTorchRandomizedSmoothing.certify`)
on the same base classifier, noise level, sample counts and Fashion-MNIST test images, side by
side in one run.

The model is the `cpu` preset's small CNN trained with Gaussian noise augmentation at σ
(`method gaussian`, trained once and kept under runs/), or a checkpoint you give. Both sides draw
their own noise, so the radii agree only within Monte-Carlo noise: the bench reports how many
images get the same answer (class or abstention), the mean and largest difference of the radii,
and the certified accuracy at each radius on both sides; then the time of each (the ratio
ART / robustlab).

    .venv/bin/python -m bench.smoothing_vs_art [--checkpoint DIR] [--sigma 0.25] [--images 100] \\
        [--n0 100] [--n 10000] [--batch 1000]

Writes bench/results/smoothing_vs_art.json.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch

from bench.common import fashion_data, machine
from core.contract.certify_specs import SmoothingSpec
from core.evaluation.certification import certified_at
from core.evaluation.smoothing import certify

OUT = Path("bench/results/smoothing_vs_art.json")
RADII = (0.0, 0.25, 0.5, 0.75, 1.0)


def noise_trained_model(checkpoint: str | None, sigma: float):
    from core.contract.presets import smoothing_training, train_preset
    from core.models import load_model
    from core.training import train

    if checkpoint is None:
        checkpoint = f"runs/bench-gaussian-sigma{sigma:g}"
        if not os.path.isfile(os.path.join(checkpoint, "model.safetensors")):
            train(smoothing_training(train_preset("cpu"), "gaussian", sigma), checkpoint)
    return load_model(checkpoint).eval()


def art_certify(model, x: torch.Tensor, args) -> tuple[list[int], list[float], float]:
    from art.estimators.certification.randomized_smoothing import PyTorchRandomizedSmoothing

    smoothed = PyTorchRandomizedSmoothing(
        model=model,
        loss=torch.nn.CrossEntropyLoss(),
        input_shape=tuple(x.shape[1:]),
        nb_classes=10,
        device_type="cpu",
        sample_size=args.n0,
        scale=args.sigma,
        alpha=args.alpha,
    )
    np.random.seed(0)
    t0 = time.perf_counter()
    classes, radii = smoothed.certify(x.numpy(), n=args.n, batch_size=args.batch)
    return [int(c) for c in classes], [float(r) for r in radii], time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--sigma", type=float, default=0.25)
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--n0", type=int, default=100)
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--alpha", type=float, default=0.001)
    parser.add_argument("--batch", type=int, default=1_000)
    args = parser.parse_args()
    model = noise_trained_model(args.checkpoint, args.sigma)
    ds = fashion_data(args.images)
    x, y = ds.x_test[: args.images], ds.y_test[: args.images].tolist()
    spec = SmoothingSpec(sigma=args.sigma, n0=args.n0, n=args.n, alpha=args.alpha, batch=args.batch)

    warm = spec.model_copy(update={"n0": 10, "n": args.batch})  # both sides warmed up before timing
    certify(model, x[:1], warm, num_classes=10)
    art_certify(model, x[:1], argparse.Namespace(**{**vars(args), "n0": 10, "n": args.batch}))
    t0 = time.perf_counter()
    ours = certify(model, x, spec, num_classes=10)
    ours_seconds = time.perf_counter() - t0
    *art, art_seconds = art_certify(model, x, args)

    same = sum(a == b for a, b in zip(ours[0], art[0], strict=True))
    both = [(a, b) for ca, a, cb, b in zip(ours[0], ours[1], art[0], art[1], strict=True) if ca == cb != -1]
    gaps = [abs(a - b) for a, b in both]
    out = {
        "machine": machine(),
        "settings": vars(args),
        "same_answer": same / len(y),
        "radius_gap_mean": float(np.mean(gaps)) if gaps else None,
        "radius_gap_max": float(np.max(gaps)) if gaps else None,
        "certified": {
            f"{r:g}": {"robustlab": certified_at(*ours, y, r), "art": certified_at(*art, y, r)} for r in RADII
        },
        "seconds": {"robustlab": ours_seconds, "art": art_seconds},
        "time_ratio_art_over_robustlab": art_seconds / ours_seconds,
    }
    print(json.dumps(out, indent=1))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
