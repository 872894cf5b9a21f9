"""DDIM-50 against DDPM-1000 on the same trained model: seconds per sample and the Fréchet
distance of each in a robustlab classifier's features (against the same test images). All
samplers start from the same seed; DPM-Solver-20 is measured beside them by default, and
`--samplers` takes any list of `sampler:steps[:eta]` (e.g. `ddim:50:1.0,ddpm:50`).

    .venv/bin/python -m bench.ddpm_samplers --checkpoint runs/ddpm-cpu \
        --classifier runs/fmnist-standard-relu [--n 500] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import time

from bench.common import machine
from core.contract.diffusion_specs import DDPMSampleSpec
from core.contract.specs import DataSpec
from core.data import load_dataset
from core.device import resolve_device
from core.diffusion.ddpm import load_diffusion
from core.diffusion.quality import sample_quality
from core.diffusion.sampling import sample
from core.models import load_model

DEFAULT_SAMPLERS = "ddim:50,dpm_solver:20,ddpm:1000"


def parse_samplers(text: str) -> list[tuple[str, int, float]]:
    out = []
    for item in text.split(","):
        name, steps, *eta = item.split(":")
        out.append((name, int(steps), float(eta[0]) if eta else 0.0))
    return out


def label(sampler: str, steps: int, eta: float) -> str:
    return f"{sampler}-{steps}" + (f" η={eta:g}" if eta else "")


def measure(model, classifier, ds, samplers: list[tuple[str, int, float]], n: int, seed: int) -> list[dict]:
    """Seconds and sample quality of each sampler, `n` samples from the same seed."""
    rows = []
    for sampler, steps, eta in samplers:
        t0 = time.perf_counter()
        out = sample(model, DDPMSampleSpec(n=n, sampler=sampler, steps=steps, eta=eta, seed=seed))
        seconds = time.perf_counter() - t0
        q = sample_quality(classifier, out["images"], ds.x_test[:n], ds.classes)
        rows.append(
            {
                "sampler": label(sampler, steps, eta),
                "seconds": seconds,
                "per_sample_ms": 1000 * seconds / n,
                "frechet_distance": q["frechet_distance"],
                "mean_confidence": q["mean_confidence"],
                "class_histogram": q["class_histogram"],
            }
        )
        print(f"{rows[-1]['sampler']}: {seconds:.1f} s, FD {q['frechet_distance']:.1f}", flush=True)
    return rows


def print_table(rows: list[dict], title: str) -> None:
    """A Markdown table of `rows`, each against DDPM-1000's (or the last row's) time and distance."""
    ref = next((r for r in rows if r["sampler"] == "ddpm-1000"), rows[-1])
    ref_name = ref["sampler"]
    print(f"\nMachine: {machine()}\n\n### {title}\n")
    print(
        f"| sampler | seconds | ms / sample | speed vs {ref_name} | Fréchet distance | FD / {ref_name}'s "
        "| mean confidence |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['sampler']} | {r['seconds']:.1f} | {r['per_sample_ms']:.1f} | {ref['seconds'] / r['seconds']:.1f}× "
            f"| {r['frechet_distance']:.1f} | {r['frechet_distance'] / ref['frechet_distance']:.2f} "
            f"| {r['mean_confidence']:.2f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--classifier", required=True, help="a Fashion-MNIST classifier checkpoint folder")
    parser.add_argument("--n", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="also write the measurements here")
    parser.add_argument("--samplers", default=DEFAULT_SAMPLERS, help="sampler:steps[:eta],...")
    args = parser.parse_args()
    device = resolve_device("auto")
    model, classifier = load_diffusion(args.checkpoint, device=device), load_model(args.classifier).to(device)
    ds = load_dataset(DataSpec(name=model.spec.data.name))
    rows = measure(model, classifier, ds, parse_samplers(args.samplers), args.n, args.seed)
    print_table(
        rows,
        f"Samplers on {args.checkpoint}, {args.n} samples each, seed {args.seed}; Fréchet distance in "
        f"{args.classifier}'s features against {args.n} test images",
    )
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": machine(), "n": args.n, "seed": args.seed, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
