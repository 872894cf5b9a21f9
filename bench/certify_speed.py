"""Randomized smoothing's throughput: noisy forward passes per second of the certification's
sampling (`core.evaluation.smoothing.class_counts`, the whole cost of CERTIFY and PREDICT but for
a binomial bound per image), fp32 and bf16, for the Fashion-MNIST small CNN (28 px) and a PreAct
ResNet-18 at 32 px (CIFAR-10), and the hours one certification of 500 images takes at n = 10,000
and at Cohen et al.'s n = 100,000 (n0 = 100 each).

    .venv/bin/python -m bench.certify_speed [--out FILE]

On a CPU a small version runs (batch 256, one timed image) to check the path.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from bench.common import machine
from core.contract.specs import ModelSpec
from core.device import autocast, resolve_device
from core.evaluation.smoothing import class_counts, noise_generator
from core.models import build_model

NETWORKS = {
    "small_cnn": ({"arch": "small_cnn", "width": 32}, 1, 28),
    "preact_resnet18": ({"arch": "preact_resnet18", "in_channels": 3, "width": 64}, 3, 32),
}
IMAGES = 500


def samples_per_second(fields: dict, channels: int, side: int, *, device, bf16: bool, batch: int, timed: int) -> float:
    model = build_model(ModelSpec(image_size=side, **fields)).to(device).eval()
    x = torch.rand(channels, side, side, device=device)
    generator = noise_generator(0, 0, device)
    with torch.no_grad(), autocast(device, bf16):
        class_counts(model, x, 0.25, batch, 10, generator, batch)  # warm-up
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        class_counts(model, x, 0.25, batch * timed, 10, generator, batch)
        if device.type == "cuda":
            torch.cuda.synchronize()
    return batch * timed / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="bench/results/certify_speed.json")
    args = parser.parse_args()
    device = resolve_device("auto")
    gpu = device.type == "cuda"
    batch, timed = (10_000, 20) if gpu else (256, 2)
    out = {"machine": machine(), "device": torch.cuda.get_device_name() if gpu else "cpu", "networks": {}}
    for name, (fields, channels, side) in NETWORKS.items():
        for bf16 in (False, True) if gpu else (False,):
            rate = samples_per_second(fields, channels, side, device=device, bf16=bf16, batch=batch, timed=timed)
            hours = {f"n{n}": IMAGES * (100 + n) / rate / 3600 for n in (10_000, 100_000)}
            precision = "bf16" if bf16 else "fp32"
            out["networks"][f"{name}-{precision}"] = {"samples_per_second": rate, "hours_500_images": hours}
            print(name, precision, f"{rate:,.0f} samples/s", hours, flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
