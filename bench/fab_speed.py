"""What FAB-T costs beside APGD-T at the same iterations and targets: seconds per image, side by
side in one run (interleaved repeats), on the tests' 8×8 digits CNN and on the cpu preset's small
CNN at 28 px (Fashion-MNIST).

    .venv/bin/python -m bench.fab_speed [--steps 100] [--targets 9] [--images 64] [--repeats 2]

The worst case, the one the server limits bound: every point is attacked through all its
targets and iterations. The labels are the model's own predictions (every point starts correct)
and ε is tiny (1e-4), so no point is broken early and both attacks do their full work. Then a
typical run: the digits model at L∞ ε = 0.1, where points leave once broken.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import torch

from bench.common import fashion_data, fashion_model, machine, time_interleaved
from core.attacks import build_attack
from core.contract.attack_specs import AttackSpec
from core.contract.specs import DataSpec, ModelSpec, OptimSpec, TrainSpec
from core.data import load_dataset


def digits_model():
    """The tests' standard-trained digits CNN (`tests/conftest.py`), trained in a few seconds."""
    from core.training import train

    spec = TrainSpec(
        data=DataSpec(name="digits"),
        method="standard",
        epochs=4,
        batch_size=64,
        model=ModelSpec(image_size=8, width=16),
        eval_subset=64,
        optim=OptimSpec(name="adam", lr=3e-3, weight_decay=0.0),
    )
    from core.models import load_model

    ds = load_dataset(spec.data)
    folder = Path("runs/bench-fab-digits")
    if not (folder / "model.safetensors").is_file():
        torch.manual_seed(0)
        train(spec, folder, dataset=ds)
    return load_model(folder).eval(), ds


def per_image(model, x, y, steps: int, targets: int, eps: float, repeats: int) -> dict[str, float]:
    """Median seconds per image of APGD-T and FAB-T on (x, y)."""
    specs = {name: AttackSpec(name=name, eps=eps, steps=steps, targets=targets) for name in ("apgd-t", "fab-t")}

    def run(spec):
        torch.manual_seed(0)
        return lambda: build_attack(spec)(model, x, y)

    times = time_interleaved({name: run(spec) for name, spec in specs.items()}, repeats)
    return {name: statistics.median(t) / len(x) for name, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--targets", type=int, default=9)
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--out", default="bench/results/fab_speed.json")
    args = parser.parse_args()
    digits, ds = digits_model()
    fashion = fashion_model()
    fx = fashion_data(n_test=args.images).x_test[: args.images]
    rows = {}
    for name, model, x in (("digits 8×8", digits, ds.x_test[: args.images]), ("fashion-mnist 28×28", fashion, fx)):
        with torch.no_grad():
            own = model(x).argmax(1)
        rows[f"{name}, worst case"] = per_image(model, x, own, args.steps, args.targets, 1e-4, args.repeats)
    x, y = ds.x_test[: args.images], ds.y_test[: args.images]
    rows["digits 8×8, L∞ ε=0.1"] = per_image(digits, x, y, args.steps, args.targets, 0.1, args.repeats)
    print(f"{machine()}; {args.steps} iterations, {args.targets} targets, {args.images} images")
    print("| model | APGD-T s/image | FAB-T s/image | FAB-T / APGD-T |")
    print("|---|---|---|---|")
    for name, t in rows.items():
        print(f"| {name} | {t['apgd-t']:.4f} | {t['fab-t']:.4f} | {t['fab-t'] / t['apgd-t']:.2f}× |")
    report = {"machine": machine(), "steps": args.steps, "targets": args.targets, "images": args.images, "rows": rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
