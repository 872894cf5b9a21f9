"""The evaluation ensemble's throughput: images per second of the `standard` protocol (APGD-CE,
APGD-T, Square) on a PreAct ResNet-18 that was PGD-trained briefly (so that the attacks have
points to work on), in fp32 and, on a GPU, bf16 autocast; channels_last weights.

    .venv/bin/python -m bench.eval_speed [--images 1000] [--train-batches 200] [--out FILE]

On a CPU it runs a small version (64 images, APGD 10 iterations, Square 100 queries) to check the
path; the numbers that matter come from a GPU (bench/gpu.sh).
"""

from __future__ import annotations

import argparse
import json
import time
from contextlib import nullcontext
from pathlib import Path

import torch

from bench.common import machine
from core.contract.attack_specs import ProtocolSpec
from core.contract.presets import train_preset
from core.contract.specs import DataSpec
from core.data import load_dataset
from core.device import prepare, resolve_device
from core.evaluation import evaluate
from core.models import build_model
from core.training.objectives import batch_objective


def briefly_trained(device: torch.device, batches: int, ds):
    """The gpu preset's PreAct ResNet-18, PGD-10-trained for `batches` batches of 256."""
    spec = train_preset("gpu")
    torch.manual_seed(0)
    model = prepare(build_model(spec.model.model_copy(update={"mean": [0.286], "std": [0.353]})), device, True)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    objective = batch_objective(spec)
    for _ in range(batches):
        idx = torch.randint(0, len(ds.x_train), (256,))
        x, y = ds.x_train[idx].to(device), ds.y_train[idx].to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            loss, _ = objective(model.train(), x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return model.eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int)
    parser.add_argument("--train-batches", type=int)
    parser.add_argument("--out", default="bench/results/eval_speed.json")
    args = parser.parse_args()
    device = resolve_device("auto")
    gpu = device.type == "cuda"
    images = args.images or (1000 if gpu else 64)
    ds = load_dataset(DataSpec(name="fashion-mnist", test_subset=max(images, 1000)))
    model = briefly_trained(device, args.train_batches or (200 if gpu else 2), ds)
    protocol = ProtocolSpec(images=images) if gpu else ProtocolSpec(images=images, steps=10, queries=100)
    rows = {}
    for precision in ("fp32", "bf16") if gpu else ("fp32",):
        autocast = torch.autocast("cuda", dtype=torch.bfloat16) if precision == "bf16" else nullcontext()
        with autocast:
            if gpu:
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            result = evaluate(
                model, ds.x_test, ds.y_test, protocol, num_classes=10, batch_size=500 if gpu else 64
            ).model_dump()
            if gpu:
                torch.cuda.synchronize()
            seconds = time.perf_counter() - t0
        rows[precision] = {
            "images_per_s": images / seconds,
            "seconds": seconds,
            "clean_acc": result["clean_acc"],
            "robust_acc": result["robust_acc"],
            "breakdown": result["breakdown"],
        }
        print(f"{precision}: {images / seconds:,.1f} images/s ({seconds:.1f} s), robust {result['robust_acc']:.3f}")
    device_name = torch.cuda.get_device_name() if gpu else "cpu"
    report = {"machine": machine(), "device": device_name, "protocol": protocol.label, "rows": rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
