"""`POST /v1/samples` end to end: 16 samples with DDIM-50 from a trained diffusion model (the cpu
preset's), the model already loaded by the interactive worker. Sequential requests, each timed
from the client's send to the answer with the grid's and every image's URL.

    .venv/bin/python -m bench.api_samples --checkpoint runs/ddpm-cpu [--requests 20]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.common import machine
from bench.serving import import_into, latency_table, serving_stack, time_requests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--checkpoint", required=True, help="a diffusion checkpoint folder")
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--n", type=int, default=16)
    args = parser.parse_args()
    with serving_stack() as (stack, client):
        model_id = import_into(stack, Path(args.checkpoint), name="bench-ddpm")
        body = {"model_id": model_id, "n": args.n, "sampler": "ddim", "steps": 50}
        seeds = iter(range(10_000))  # a new seed per request: no cache can answer

        def send():
            return client.post("/v1/samples", json={**body, "seed": next(seeds)}, params={"wait": 60})

        times, statuses, last = time_requests(send, args.requests, warmup=2)
    print(f"Machine: {machine()}\n")
    print(f"### POST /v1/samples, {args.n} samples, DDIM-50, {args.checkpoint}, {args.requests} sequential requests\n")
    print(latency_table(times, statuses))
    result = last["result"]
    print(
        f"\nLast answer: {len(result['sample_urls'])} sample URLs and a grid; {result['seconds']:.2f} s of it "
        "sampling on the worker"
    )


if __name__ == "__main__":
    main()
