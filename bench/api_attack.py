"""`POST /v1/attacks` end to end: a 28×28 Fashion-MNIST PNG, PGD-20 (L∞, ε = 0.1) on the cpu
preset's small CNN, the model already loaded by the interactive worker. Sequential requests,
each timed from the client's send to the answer with predictions and image URLs.

    .venv/bin/python -m bench.api_attack [--requests 200] [--checkpoint DIR]
"""

from __future__ import annotations

import argparse
import io
from pathlib import Path

from bench.common import fashion_data, machine, trained_model
from bench.serving import import_into, latency_table, serving_stack, time_requests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--checkpoint", help="classifier checkpoint folder (default: the bench's PGD-AT model)")
    args = parser.parse_args()
    folder = Path(args.checkpoint or "runs/bench-pgd-at-relu")
    trained_model(args.checkpoint)  # trains the default model once if missing
    from PIL import Image

    x = fashion_data(n_test=1).x_test[0, 0]
    buf = io.BytesIO()
    Image.fromarray((x.numpy() * 255).round().astype("uint8")).save(buf, format="PNG")
    png = buf.getvalue()
    with serving_stack() as (stack, client):
        model_id = import_into(stack, folder)

        def send():
            return client.post("/v1/attacks", files={"image": ("x.png", png, "image/png")}, data={"model_id": model_id})

        times, statuses, last = time_requests(send, args.requests, warmup=5)
    result = last["result"]
    print(f"Machine: {machine()}\n")
    print(f"### POST /v1/attacks, 28×28 PNG, PGD-20 L∞ ε=0.1, small CNN, {args.requests} sequential requests\n")
    print(latency_table(times, statuses))
    print(
        f"\nLast answer: clean prediction {result['clean']['prediction']}, adversarial "
        f"{result['adversarial']['prediction']}, L∞ {result['linf']:.3f}, L2 {result['l2']:.3f}"
    )


if __name__ == "__main__":
    main()
