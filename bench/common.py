"""Shared set-up for the side-by-side benchmarks: the machine, the model, the data, a timer."""

from __future__ import annotations

import os
import platform
import statistics
import time

import torch

from core.contract.datasets import DATASET_INFO
from core.contract.specs import DataSpec, ModelSpec
from core.data import load_dataset
from core.models import build_model


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return (
        f"{cpu}; {os.cpu_count()} cores; torch {torch.__version__} "
        f"({torch.get_num_threads()} threads); python {platform.python_version()}"
    )


def fashion_model(width: int = 16, seed: int = 0):
    """The cpu preset's small CNN on Fashion-MNIST, freshly initialised."""
    torch.manual_seed(seed)
    info = DATASET_INFO["fashion-mnist"]
    mean, std = list(info.mean), list(info.std)
    return build_model(ModelSpec(width=width, mean=mean, std=std)).eval()


def trained_model(checkpoint: str | None, cache: str = "runs/bench-pgd-at-relu"):
    """A PGD-AT model to attack: `checkpoint` if given, else the cpu preset's ReLU model, trained
    once (about 1.5 minutes on 2 cores) and kept in `cache`."""
    from core.contract.presets import train_preset
    from core.models import load_model
    from core.training import train

    if checkpoint is None:
        checkpoint = cache
        if not os.path.isfile(os.path.join(cache, "model.safetensors")):
            train(train_preset("cpu"), cache)
    return load_model(checkpoint)


def fashion_data(n_test: int = 1000, n_train: int | None = None):
    return load_dataset(DataSpec(name="fashion-mnist", test_subset=n_test, train_subset=n_train))


def time_interleaved(contestants: dict, repeats: int) -> dict[str, list[float]]:
    """Run each contestant `repeats` times, interleaved so that drift hits all alike."""
    times = {name: [] for name in contestants}
    for _ in range(repeats):
        for name, fn in contestants.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return times


def report(title: str, times: dict[str, list[float]], items: int, reference: str, unit: str) -> str:
    """A Markdown table: median seconds, throughput, and the ratio to each reference."""
    med = {k: statistics.median(v) for k, v in times.items()}
    lines = [
        f"### {title}",
        "",
        f"| implementation | median s | {unit}/s | speed vs {reference} |",
        "|---|---|---|---|",
    ]
    for name, t in med.items():
        lines.append(f"| {name} | {t:.3f} | {items / t:,.0f} | {med[reference] / t:.2f}× |")
    return "\n".join(lines)
