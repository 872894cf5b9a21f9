"""Is the streamed loader the bottleneck? Images/s of reading a folder dataset through
`core.data.batches.read_batches` (PNG decode in DataLoader workers) against the images/s of the
training steps that consume it, on the same machine, in one run:

- the loader: a folder of Fashion-MNIST PNGs (written once to --folder), read as the training loop
  reads it, with 0 workers (in the training process) and with `loader_workers()` workers;
- the model: the cpu preset's small CNN under PGD-5 adversarial training (the preset), and
  standard training of the same network (the cheapest step the service runs), in memory.

    .venv/bin/python -m bench.loader_speed [--images 6000] [--out bench/results/loader_speed.json]

The loader is the bottleneck when the model consumes images faster than the loader reads them;
`break_even_ms_per_image` is the training cost per image below which that happens.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from PIL import Image

from bench.common import machine
from core.contract.presets import train_preset
from core.contract.specs import DataSpec
from core.data import load_dataset
from core.data.batches import Picked, PlannedBatches, loader_workers, read_batches
from core.device import resolve_device
from core.models import build_model
from core.training.objectives import batch_objective


def write_folder(root: Path, images: int) -> Path:
    """`images` Fashion-MNIST training images as PNGs under root/train/<class>/ (and 100 test ones)."""
    if (root / "done").is_file():
        return root
    ds = load_dataset(DataSpec(name="fashion-mnist", train_subset=images, test_subset=100))
    for split, x, y in (("train", ds.x_train, ds.y_train), ("test", ds.x_test, ds.y_test)):
        for i in range(len(x)):
            folder = root / split / ds.classes[int(y[i])].replace("/", "-")
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray((x[i, 0] * 255).round().byte().numpy(), mode="L").save(folder / f"{i:06d}.png")
    (root / "done").write_text("")
    return root


def loader_rate(root: Path, batch: int, workers: int) -> float:
    ds = load_dataset(DataSpec(name="folder", root=str(root), stream=True))
    order = torch.randperm(len(ds.x_train), generator=torch.Generator().manual_seed(0))
    plan = [Picked(order[i : i + batch]) for i in range(0, len(order), batch)]
    t0 = time.perf_counter()
    seen = sum(len(y) for _, y in read_batches(PlannedBatches(plan, ds), device=torch.device("cpu"), workers=workers))
    return seen / (time.perf_counter() - t0)


def training_rate(method: str, batch: int, batches: int) -> float:
    spec = train_preset("cpu").model_copy(update={"method": method})
    torch.manual_seed(0)
    model = build_model(spec.model.model_copy(update={"mean": [0.286], "std": [0.353]}))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    objective = batch_objective(spec)
    x, y = torch.rand(batch, 1, 28, 28), torch.randint(0, 10, (batch,))
    t0 = time.perf_counter()
    for _ in range(batches):
        loss, _ = objective(model.train(), x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return batch * batches / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=6000)
    parser.add_argument("--folder", default="runs/bench-loader-folder")
    parser.add_argument("--out", default="bench/results/loader_speed.json")
    args = parser.parse_args()
    resolve_device("cpu")
    root = write_folder(Path(args.folder), args.images)
    batch, workers = train_preset("cpu").batch_size, loader_workers()
    rates = {
        "loader_in_process": loader_rate(root, batch, 0),
        f"loader_{workers}_workers": loader_rate(root, batch, workers),
        "pgd5_at_cpu_preset": training_rate("pgd", batch, 20),
        "standard_cpu_preset": training_rate("standard", batch, 50),
    }
    best_loader = max(v for k, v in rates.items() if k.startswith("loader"))
    result = {
        "machine": machine(),
        "images": args.images,
        "batch": batch,
        "images_per_s": {k: round(v, 1) for k, v in rates.items()},
        "loader_vs_pgd5_at": round(best_loader / rates["pgd5_at_cpu_preset"], 2),
        "loader_vs_standard": round(best_loader / rates["standard_cpu_preset"], 2),
        "break_even_ms_per_image": round(1000 / best_loader, 3),
    }
    print(json.dumps(result, indent=1))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
