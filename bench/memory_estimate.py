"""Memory admission's estimate (`core.contract.memory`) against the peak resident
memory of the real thing: each training preset (classifier and DDPM; smoke, cpu, gpu) trains in a
fresh process, as a job's child does, and its peak RSS (`ru_maxrss` from `wait4`) is compared with
the estimate. Only one epoch of one or two batches runs (peak memory is reached by the first
backward pass: the whole dataset is loaded, the batch is the preset's); the held-out check runs
on 64 images. On a CPU machine everything lives in RSS; on a GPU machine the activations live on
the GPU, so run it on CPU for the figures admission uses.

    .venv/bin/python -m bench.memory_estimate [--kinds train,ddpm] [--presets smoke,cpu,gpu]

`--networks` instead trains the ResNets and WideResNets (`NETWORK_RUNS`) on random images of
their shape (PGD-1 AT, one epoch of two batches, at two batch sizes each: the difference is what
one image's activations cost), with no dataset to load; the estimate counts no dataset either.
`--saved` counts, for the same networks, the bytes torch keeps for the backward pass of one
training forward (saved-tensor hooks, each storage once) against the count memory.py makes.

Writes bench/results/memory_estimate.json (with --networks: memory_networks.json).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import machine
from core.contract.attack_specs import AttackSpec
from core.contract.memory import RSS_PER_SAVED, classifier_numbers, ddpm_train_bytes, train_bytes
from core.contract.presets import ddpm_preset, train_preset
from core.contract.specs import DataSpec, ModelSpec, TrainSpec

OUT = Path("bench/results/memory_estimate.json")
MIB = 2**20
CHILD = """
import json, sys
from core.contract.specs import TrainSpec
from core.contract.diffusion_specs import DDPMTrainSpec
kind, spec, out = sys.argv[1], sys.argv[2], sys.argv[3]
if kind == "train":
    from core.training import train
    train(TrainSpec.model_validate_json(spec), out)
elif kind == "network":  # random images of the model's shape, nothing loaded
    import torch
    from core.data.dataset import Dataset
    from core.training import train
    spec = TrainSpec.model_validate_json(spec)
    m, n = spec.model, 2 * spec.batch_size
    x = lambda k: torch.rand(k, m.in_channels, m.image_size, m.image_size)
    y = lambda k: torch.randint(0, m.num_classes, (k,))
    classes = [str(i) for i in range(m.num_classes)]
    train(spec, out, dataset=Dataset("random", x(n), y(n), x(spec.eval_subset), y(spec.eval_subset), classes))
else:
    from core.diffusion.ddpm import train_ddpm
    train_ddpm(DDPMTrainSpec.model_validate_json(spec), out)
"""


def short_run(kind: str, preset: str):
    """The preset, cut to one epoch of at most two batches (its batch size kept)."""
    if kind == "train":
        spec = train_preset(preset)
        data = spec.data.model_copy(update={"train_subset": 2 * spec.batch_size, "test_subset": 64})
        return spec.model_copy(update={"epochs": 1, "data": data, "eval_subset": 64})
    spec = ddpm_preset(preset)
    data = spec.data.model_copy(update={"train_subset": 2 * spec.batch_size})
    return spec.model_copy(update={"epochs": 1, "data": data})


# the new networks at shapes these CPUs train in seconds: (name, model, two batch sizes)
NETWORK_RUNS = [
    ("resnet18, 64 px", ModelSpec(arch="resnet18", in_channels=3, image_size=64), (16, 48)),
    ("resnet50, 64 px", ModelSpec(arch="resnet50", in_channels=3, image_size=64, num_classes=100), (16, 48)),
    (
        "resnet50, 128 px, silu",
        ModelSpec(arch="resnet50", in_channels=3, image_size=128, num_classes=1000, activation={"name": "silu"}),
        (8, 24),
    ),
    ("resnet18 cifar stem, 32 px", ModelSpec(arch="resnet18", in_channels=3, image_size=32, stem="cifar"), (16, 48)),
    (
        "wide_resnet 16-4, 32 px",
        ModelSpec(arch="wide_resnet", depth=16, widen_factor=4, in_channels=3, image_size=32),
        (16, 96),
    ),
    (
        "wide_resnet 16-4, 32 px, silu",
        ModelSpec(
            arch="wide_resnet", depth=16, widen_factor=4, in_channels=3, image_size=32, activation={"name": "silu"}
        ),
        (16, 48),
    ),
    ("wrn28_10, 32 px", ModelSpec(arch="wrn28_10", in_channels=3, image_size=32), (8, 24)),
]


def network_run(model: ModelSpec, batch_size: int) -> TrainSpec:
    """PGD-1 AT of `model`, one epoch of two batches, a 16-image monitor (memory, not accuracy)."""
    return TrainSpec(
        data=DataSpec(name="folder"),  # a name memory admission does not size: no dataset counted
        model=model,
        attack=AttackSpec(eps=8 / 255, steps=1),
        eval_attack=AttackSpec(eps=8 / 255, steps=1),
        eval_subset=16,
        epochs=1,
        batch_size=batch_size,
        device="cpu",
    )


def networks() -> list[dict]:
    rows = []
    for name, model, batches in NETWORK_RUNS:
        measured = []
        for batch in batches:
            spec = network_run(model, batch)
            rss, seconds = peak_rss("network", spec)
            measured.append(rss)
            row = {
                "network": name,
                "batch_size": batch,
                "measured_mib": round(rss / MIB),
                "estimate_mib": round(train_bytes(spec) / MIB),
                "error_pct": round(100 * (train_bytes(spec) - rss) / rss, 1),
                "seconds": round(seconds, 1),
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
        per_image = (measured[1] - measured[0]) / (batches[1] - batches[0])
        estimated = train_bytes(network_run(model, batches[1])) - train_bytes(network_run(model, batches[0]))
        rows[-1]["per_image_mib"] = round(per_image / MIB, 2)
        rows[-1]["per_image_estimate_mib"] = round(estimated / (batches[1] - batches[0]) / MIB, 2)
    return rows


def saved_per_image(model: ModelSpec, batch: int = 2) -> float:
    """Float32 elements per image that autograd keeps from one training forward of `model`."""
    import torch

    from core.models import build_model

    net, kept = build_model(model).train(), {}
    weights = {p.untyped_storage().data_ptr() for p in net.parameters()}

    def pack(t):
        storage = t.untyped_storage()
        if storage.data_ptr() not in weights:
            kept[storage.data_ptr()] = max(kept.get(storage.data_ptr(), 0), storage.nbytes())
        return t

    x = torch.rand(batch, model.in_channels, model.image_size, model.image_size)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        net(x)
    return sum(kept.values()) / 4 / batch


def saved() -> None:
    print("| network | kept for backward (M elements per image) | memory.py's count | ratio |\n|---|---|---|---|")
    for name, model, _ in NETWORK_RUNS:
        measured, counted = saved_per_image(model), classifier_numbers(model)[1] / RSS_PER_SAVED
        print(f"| {name} | {measured / 1e6:.3f} | {counted / 1e6:.3f} | {counted / measured:.3f} |")


def peak_rss(kind: str, spec) -> tuple[int, float]:
    """(peak resident bytes, seconds) of a fresh process training `spec`."""
    with tempfile.TemporaryDirectory() as out:
        started = time.monotonic()
        proc = subprocess.Popen([sys.executable, "-c", CHILD, kind, spec.model_dump_json(), out])
        _, status, usage = os.wait4(proc.pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            raise RuntimeError(f"{kind} {spec} failed")
        return usage.ru_maxrss * 1024, time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kinds", default="train,ddpm")
    parser.add_argument("--presets", default="smoke,cpu,gpu")
    parser.add_argument("--networks", action="store_true", help="the ResNets and WideResNets instead")
    parser.add_argument("--saved", action="store_true", help="their tensors kept for backward, against the count")
    args = parser.parse_args()
    if args.saved:
        return saved()
    if args.networks:
        rows = networks()
        path = OUT.with_name("memory_networks.json")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"machine": machine(), "rows": rows}, indent=1))
        print("| network | batch | peak RSS (MiB) | estimate (MiB) | error | MiB per image (measured / estimated) |")
        print("|---|---|---|---|---|---|")
        for r in rows:
            slope = f"{r['per_image_mib']} / {r['per_image_estimate_mib']}" if "per_image_mib" in r else ""
            print(
                f"| {r['network']} | {r['batch_size']} | {r['measured_mib']} | {r['estimate_mib']} "
                f"| {r['error_pct']:+.1f} % | {slope} |"
            )
        return
    rows = []
    for kind in args.kinds.split(","):
        for preset in args.presets.split(","):
            spec = short_run(kind, preset)
            measured, seconds = peak_rss(kind, spec)
            # of the run measured (its subsets are the preset's minus a little)
            estimate = (train_bytes if kind == "train" else ddpm_train_bytes)(spec)
            row = {
                "kind": kind,
                "preset": preset,
                "batch_size": spec.batch_size,
                "measured_mib": round(measured / MIB),
                "estimate_mib": round(estimate / MIB),
                "error_pct": round(100 * (estimate - measured) / measured, 1),
                "seconds": round(seconds, 1),
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({"machine": machine(), "rows": rows}, indent=1))
    print("| job | preset | batch | peak RSS (MiB) | estimate (MiB) | error |\n|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['kind']} | {r['preset']} | {r['batch_size']} | {r['measured_mib']} | {r['estimate_mib']} "
            f"| {r['error_pct']:+.1f} % |"
        )


if __name__ == "__main__":
    main()
