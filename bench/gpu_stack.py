"""The GPU path of the whole stack, not only of core: embedded Redis, SQLite, the API, an
interactive and a train worker (Celery, on CUDA when there is one), and one short CIFAR-shaped
PGD-10 training run of a PreAct ResNet-18 submitted over HTTP, waited for, and read back: its
status, epoch seconds, images/s and the device its worker announced.

    .venv/bin/python -m bench.gpu_stack [--out FILE] [--images 4096]

The CIFAR-10 files are the real format (python batches) filled with random pixels, written to a
temporary data folder the workers are pointed at (throughput does not depend on the pixels; the
accuracy says nothing). On a CPU the same run is smaller (512 images) and checks the path.
"""

from __future__ import annotations

import argparse
import json
import pickle
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
import torch

from bench.common import machine
from scripts.stack import Stack, free_port


def write_cifar_batches(root: Path, images: int, seed: int = 0) -> None:
    """CIFAR-10's python batches (5 train, 1 test) under `root/cifar10/cifar-10-batches-py`."""
    folder = root / "cifar10" / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    per = max(images // 5, 10)
    for name, n in [*[(f"data_batch_{i}", per) for i in range(1, 6)], ("test_batch", max(images // 10, 10))]:
        batch = {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), b"labels": rng.integers(0, 10, n).tolist()}
        (folder / name).write_bytes(pickle.dumps(batch))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="bench/results/gpu_stack.json")
    parser.add_argument("--images", type=int, default=None)
    args = parser.parse_args()
    gpu = torch.cuda.is_available()
    images = args.images or (4096 if gpu else 512)
    folder = Path(tempfile.mkdtemp(prefix="robustlab-gpu-stack-"))
    write_cifar_batches(folder / "data", images)
    env = {"ROBUSTLAB_DATA_DIR": str(folder / "data"), "DATABASE_URL": None, "REDIS_URL": None, "ARTIFACT_URL": None}
    stack = Stack(
        folder / "var",
        api_port=free_port(),
        dashboard_port=free_port(),
        with_dashboard=False,
        embedded_redis=True,
        extra_env=env,
    )
    spec = {
        "data": {"name": "cifar10"},
        "model": {"arch": "preact_resnet18", "in_channels": 3, "image_size": 32, "width": 64},
        "attack": {"eps": 8 / 255, "steps": 10},
        "eval_attack": {"eps": 8 / 255, "steps": 2},
        "eval_subset": 64,
        "protocol": {"ensemble": "pgd", "eps": 8 / 255, "images": 64, "steps": 2},
        "epochs": 1,
        "batch_size": 256 if gpu else 32,
        "amp": gpu,
        "channels_last": gpu,
        "optim": {"name": "sgd", "lr": 0.1},
    }
    out = {"machine": machine(), "gpu": gpu, "images": images}
    try:
        stack.start(train_workers=1)
        stack.wait_for_workers(2)
        with httpx.Client(base_url=stack.api_url, headers={"Authorization": f"Bearer {stack.key}"}, timeout=60) as c:
            out["announced"] = c.get("/healthz").json().get("workers")
            t0 = time.monotonic()
            job = c.post("/v1/jobs", json={"kind": "adversarial_training", "spec": spec}).json()
            while job["status"] not in ("succeeded", "failed", "cancelled"):
                time.sleep(1)
                job = c.get(f"/v1/jobs/{job['id']}").json()
            final = (job.get("result") or {}).get("final") or {}
            out |= {
                "status": job["status"],
                "error": job["error"],
                "wall_seconds": round(time.monotonic() - t0, 1),
                "epoch_seconds": final.get("epoch_seconds"),
                "train_images_per_s": round(images / final["epoch_seconds"], 1) if final.get("epoch_seconds") else None,
            }
    finally:
        stack.stop()
    print(json.dumps(out), flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
