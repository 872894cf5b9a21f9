"""`POST /v1/attacks` end to end: a 28×28 Fashion-MNIST PNG, PGD-20 (L∞, ε = 0.1) on the cpu
preset's small CNN, the model already loaded by the interactive worker. Sequential requests,
each timed from the client's send to the answer with predictions and image URLs.

    .venv/bin/python -m bench.api_attack [--requests 200] [--checkpoint DIR]
"""

from __future__ import annotations

import argparse
import io
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from bench.common import fashion_data, machine, trained_model
from scripts.stack import Stack, free_port


def register_checkpoint(env: dict, folder: Path) -> str:
    """Put a checkpoint folder into the stack's artifact store and registry; returns the model id."""
    from core.models import load_model
    from core.settings import settings_from_env
    from core.store.artifacts import ArtifactStore
    from core.store.db import session_scope
    from core.store.registry import register_model

    settings = settings_from_env(env)
    spec = load_model(folder).spec
    with session_scope(settings.database_url) as s:
        row = register_model(s, kind="classifier", name="bench", dataset="fashion-mnist", architecture=spec.arch,
                             activation=spec.activation.label, checkpoint_uri="", summary={},
                             recipe={"model": spec.model_dump()})  # fmt: skip
        row.checkpoint_uri = f"models/{row.id}/checkpoint"
        ArtifactStore(settings.artifact_url).upload_folder(folder, row.checkpoint_uri)
        return row.id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument(
        "--checkpoint", help="classifier checkpoint folder (default: the bench's PGD-AT model)"
    )
    args = parser.parse_args()
    folder = Path(args.checkpoint or "runs/bench-pgd-at-relu")
    trained_model(args.checkpoint)  # trains the default model once if missing
    from PIL import Image

    x = fashion_data(n_test=1).x_test[0, 0]
    buf = io.BytesIO()
    Image.fromarray((x.numpy() * 255).round().astype("uint8")).save(buf, format="PNG")
    png = buf.getvalue()
    with tempfile.TemporaryDirectory() as tmp:
        stack = Stack(Path(tmp), api_port=free_port(), with_dashboard=False, embedded_redis=True,
                      extra_env={"DATABASE_URL": None, "REDIS_URL": None, "ARTIFACT_URL": None})  # fmt: skip
        try:
            stack.start(train_workers=0)
            stack.wait_for_workers(1)
            model_id = register_checkpoint(stack.env, folder)
            times, statuses = [], []
            with httpx.Client(base_url=stack.api_url, headers={"Authorization": f"Bearer {stack.key}"},
                              timeout=60) as client:  # fmt: skip
                for i in range(args.requests + 5):
                    t0 = time.perf_counter()
                    r = client.post("/v1/attacks", files={"image": ("x.png", png, "image/png")},
                                    data={"model_id": model_id})  # fmt: skip
                    elapsed = time.perf_counter() - t0
                    if i >= 5:  # the first requests load the model and warm up
                        times.append(elapsed * 1000)
                        statuses.append(r.status_code)
                last = r.json()["result"]
        finally:
            stack.stop()
    q = statistics.quantiles(times, n=100)
    print(f"Machine: {machine()}\n")
    print(
        f"### POST /v1/attacks, 28×28 PNG, PGD-20 L∞ ε=0.1, small CNN, {args.requests} sequential requests\n"
    )
    print("| p50 ms | p90 ms | p99 ms | mean ms | 200 responses |\n|---|---|---|---|---|")
    print(f"| {statistics.median(times):.0f} | {q[89]:.0f} | {q[98]:.0f} | {statistics.fmean(times):.0f} "
          f"| {statuses.count(200)}/{len(statuses)} |")  # fmt: skip
    print(f"\nLast answer: clean prediction {last['clean']['prediction']}, adversarial "
          f"{last['adversarial']['prediction']}, L∞ {last['linf']:.3f}, L2 {last['l2']:.3f}")  # fmt: skip


if __name__ == "__main__":
    main()
