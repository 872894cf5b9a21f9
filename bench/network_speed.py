"""PGD-10 adversarial training images/s of the field's networks, fp32 and bf16 (+ channels_last),
and the hours each preset of theirs needs at that rate: PreAct ResNet-18 and WRN-34-10 at 32 px
(CIFAR-10), ResNet-50 at 224 px (ImageNet). One optimizer step per batch on random inputs of the
right shape (throughput does not depend on the pixels), after warm-up batches.

    .venv/bin/python -m bench.network_speed [--out FILE]

Hours of a preset = its epochs × its training images ÷ the measured rate × (its attack's steps + 1)
÷ 11, scaling the PGD-10 rate to the preset's own attack (a forward-backward per attack step and
one for the update). On a CPU the same code runs a small version (batch 2, 1 timed batch, 64 px for
the ResNet-50) to check the path; its numbers say nothing about a GPU.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from bench.common import machine
from bench.gpu_figures import seconds_per_run
from core.contract.attack_specs import AttackSpec
from core.contract.specs import ModelSpec, OptimSpec, TrainSpec
from core.device import autocast, prepare, resolve_device, to_input
from core.models import build_model
from core.training.objectives import batch_objective

# name: (ModelSpec fields, side, classes, the presets that train it: (name, epochs, images, attack steps))
NETWORKS = {
    "preact_resnet18": (
        {"arch": "preact_resnet18", "in_channels": 3, "width": 64},
        32,
        10,
        [("cifar10-preact18", 200, 50_000, 10)],
    ),
    "wrn34_10": ({"arch": "wrn34_10", "in_channels": 3}, 32, 10, [("cifar10-wrn34-trades", 100, 50_000, 10)]),
    "resnet50": ({"arch": "resnet50", "in_channels": 3}, 224, 1000, [("imagenet-resnet50-sat", 100, 1_281_167, 1)]),
}


def at_rate(fields: dict, side: int, classes: int, *, device, amp: bool, channels_last: bool, batch: int, timed: int):
    """PGD-10 AT images/s of one network."""
    model_spec = ModelSpec(image_size=side, num_classes=classes, **fields)
    spec = TrainSpec(
        model=model_spec,
        attack=AttackSpec(eps=8 / 255, steps=10),
        optim=OptimSpec(name="sgd", lr=0.1),
        batch_size=batch,
        amp=amp,
        channels_last=channels_last,
        protocol={"ensemble": "pgd"},
    )
    torch.manual_seed(0)
    model = prepare(build_model(model_spec), device, channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    objective = batch_objective(spec)
    x = to_input(torch.rand(batch, 3, side, side), device, channels_last)
    y = torch.randint(0, classes, (batch,), device=device)

    def step() -> None:
        with autocast(device, amp):
            loss, _ = objective(model.train(), x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    seconds = seconds_per_run(step, device, timed, warmup=2 if device.type == "cuda" else 1)
    return batch * timed / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="bench/results/network_speed.json")
    args = parser.parse_args()
    device = resolve_device("auto")
    gpu = device.type == "cuda"
    rows = []
    for name, (fields, side, classes, presets) in NETWORKS.items():
        side = side if gpu or side <= 32 else 64  # a CPU checks the path at a smaller ResNet-50 input
        batch = (256 if side <= 32 else 128) if gpu else 2
        for amp, channels_last in ((False, False), (True, True)):
            rate = at_rate(
                fields,
                side,
                classes,
                device=device,
                amp=amp and gpu,
                channels_last=channels_last,
                batch=batch,
                timed=10 if gpu else 1,
            )
            hours = {
                preset: round(epochs * images / (rate * (11 / (steps + 1))) / 3600, 1)
                for preset, epochs, images, steps in presets
            }
            row = {
                "network": name,
                "side": side,
                "batch": batch,
                "bf16_channels_last": amp,
                "pgd10_images_per_s": round(rate, 1),
                "preset_hours": hours,
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"machine": machine(), "device": str(device), "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
