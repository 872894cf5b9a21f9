"""robustlab's randomized-smoothing certificate against ART's (`PyTorchRandomizedSmoothing.certify`)
on the same base classifier, noise level, sample counts and Fashion-MNIST test images, side by
side in one run.

The model is the `cpu` preset's small CNN trained with Gaussian noise augmentation at σ
(`method gaussian`, trained once and kept under runs/), or a checkpoint you give. Both sides draw
their own noise, so the radii agree only within Monte-Carlo noise: the bench reports how many
images get the same answer (class or abstention), the mean and largest difference of the radii,
and the certified accuracy at each radius on both sides; then the time of each.

robustlab certifies with the model as its certification job loads it (`core.jobs.model_cache`:
weights in channels_last); ART is timed twice, given the checkpoint as a PyTorch user loads it
(plain NCHW weights, as in ART's examples) and given robustlab's channels_last copy, so the ratio
says how much comes from the memory format and how much from the loop. The three are timed in
alternating chunks of images, so a load on the machine falls on all of them alike.

    .venv/bin/python -m bench.smoothing_vs_art [--checkpoint DIR] [--sigma 0.25] [--images 100] \\
        [--n0 100] [--n 10000] [--batch 1000] [--chunk 5]

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


def noise_trained_model(checkpoint: str | None, sigma: float) -> str:
    from core.contract.presets import smoothing_training, train_preset
    from core.training import train

    if checkpoint is None:
        checkpoint = f"runs/bench-gaussian-sigma{sigma:g}"
        if not os.path.isfile(os.path.join(checkpoint, "model.safetensors")):
            train(smoothing_training(train_preset("cpu"), "gaussian", sigma), checkpoint)
    return checkpoint


def art_certifier(model, x: torch.Tensor, args):
    from art.estimators.certification.randomized_smoothing import PyTorchRandomizedSmoothing

    return PyTorchRandomizedSmoothing(
        model=model,
        loss=torch.nn.CrossEntropyLoss(),
        input_shape=tuple(x.shape[1:]),
        nb_classes=10,
        device_type="cpu",
        sample_size=args.n0,
        scale=args.sigma,
        alpha=args.alpha,
    )


def timed(run, *args) -> tuple[list, list, float]:
    t0 = time.perf_counter()
    classes, radii = run(*args)
    return [int(c) for c in classes], [float(r) for r in radii], time.perf_counter() - t0


def interleaved(sides: dict, x: torch.Tensor, chunk: int) -> dict:
    """Each side certifies `x` chunk by chunk, the sides taking turns: {side: (classes, radii, seconds)}."""
    out = {name: ([], [], 0.0) for name in sides}
    for start in range(0, len(x), chunk):
        for name, run in sides.items():
            classes, radii, seconds = timed(run, x[start : start + chunk], start)
            done = out[name]
            out[name] = (done[0] + classes, done[1] + radii, done[2] + seconds)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--sigma", type=float, default=0.25)
    parser.add_argument("--images", type=int, default=100)
    parser.add_argument("--n0", type=int, default=100)
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--alpha", type=float, default=0.001)
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--chunk", type=int, default=5, help="images per turn of the alternating timing")
    args = parser.parse_args()
    from core.models import load_model

    folder = noise_trained_model(args.checkpoint, args.sigma)
    ours_model = load_model(folder, channels_last=True)  # as the certification job loads it
    plain_model = load_model(folder)  # as a PyTorch user hands it to ART
    ds = fashion_data(args.images)
    x, y = ds.x_test[: args.images], ds.y_test[: args.images].tolist()
    spec = SmoothingSpec(sigma=args.sigma, n0=args.n0, n=args.n, alpha=args.alpha, batch=args.batch)
    art_plain, art_cl = art_certifier(plain_model, x, args), art_certifier(ours_model, x, args)
    np.random.seed(0)
    sides = {
        "robustlab": lambda xb, start: certify(ours_model, xb, spec, num_classes=10, first_index=start),
        "art": lambda xb, start: art_plain.certify(xb.numpy(), n=args.n, batch_size=args.batch),
        "art_channels_last": lambda xb, start: art_cl.certify(xb.numpy(), n=args.n, batch_size=args.batch),
    }
    interleaved(sides, x[:1], 1)  # every side warmed up on one image first
    results = interleaved(sides, x, args.chunk)
    ours, art = results["robustlab"][:2], results["art"][:2]
    seconds = {name: r[2] for name, r in results.items()}
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
        "seconds": seconds,
        "time_ratio_art_over_robustlab": seconds["art"] / seconds["robustlab"],
        "time_ratio_art_channels_last_over_robustlab": seconds["art_channels_last"] / seconds["robustlab"],
    }
    print(json.dumps(out, indent=1))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
