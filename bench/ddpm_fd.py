"""The diffusion issue's open target, in one command: DDIM-50's Fréchet distance within 25 % of
DDPM-1000's on a preset's DDPM, with both numbers and the training time. Trains (or resumes, from
`--out`) the preset's DDPM and a standard classifier of the same preset for the features, then
draws `--n` samples each way from the same seed and measures both against `--n` test images.

    python -m bench.ddpm_fd --preset gpu --out runs/ddpm-fd --json bench/results/ddpm_fd_gpu.json

The gpu preset wants a GPU and longer than a lent machine's 15 minutes (bench/gpu_figures.py's
`ddpm_training` says how long); `bash bench/gpu.sh ddpm-fd` runs it there. On a CPU, `--preset
smoke` checks the path in a minute; its numbers say nothing about the target.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from bench.common import machine
from bench.ddpm_samplers import measure, parse_samplers, print_table
from core.contract.names import PRESET_NAMES
from core.contract.presets import ddpm_preset, train_preset
from core.data import load_dataset
from core.device import resolve_device
from core.diffusion.ddpm import load_diffusion, train_ddpm
from core.models import load_model
from core.training import train

TARGET = 1.25  # DDIM-50's distance at most 25 % above DDPM-1000's


def trained(what: str, run, folder: Path) -> list[dict]:
    """Train (or resume) into `folder`; the per-epoch history, each epoch's seconds in it."""
    t0 = time.perf_counter()
    result = run(folder)
    print(f"{what}: {len(result.history)} epochs in {folder}, {time.perf_counter() - t0:.0f} s this run", flush=True)
    return result.history


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--preset", choices=PRESET_NAMES, default="gpu")
    parser.add_argument("--out", default="runs/ddpm-fd", help="checkpoints go here (a second run resumes)")
    parser.add_argument("--n", type=int, default=1000, help="samples per sampler, and test images")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="also write the measurements here")
    args = parser.parse_args()
    out = Path(args.out)
    diffusion_spec = ddpm_preset(args.preset, args.seed)
    classifier_spec = train_preset(args.preset, args.seed).model_copy(
        update={"method": "standard", "data": diffusion_spec.data}
    )
    ds = load_dataset(diffusion_spec.data)
    classifier_history = trained("classifier", lambda f: train(classifier_spec, f, dataset=ds), out / "classifier")
    ddpm_history = trained("DDPM", lambda f: train_ddpm(diffusion_spec, f, dataset=ds), out / "ddpm")
    device = resolve_device("auto")
    model = load_diffusion(out / "ddpm", device=device)
    classifier = load_model(out / "classifier").to(device)
    rows = measure(model, classifier, ds, parse_samplers("ddim:50,ddpm:1000"), args.n, args.seed)
    ratio = rows[0]["frechet_distance"] / rows[1]["frechet_distance"]
    training_seconds = sum(r.get("epoch_seconds", 0.0) for r in ddpm_history)
    print_table(rows, f"{args.preset} preset's DDPM ({len(ddpm_history)} epochs, {training_seconds / 60:.1f} min)")
    verdict = "met" if ratio <= TARGET else "not met"
    print(f"\nDDIM-50 / DDPM-1000 Fréchet distance: {ratio:.2f} (target ≤ {TARGET}: {verdict})")
    if args.json:
        report = {
            "machine": machine(),
            "preset": args.preset,
            "n": args.n,
            "seed": args.seed,
            "ddpm_epochs": len(ddpm_history),
            "ddpm_training_seconds": round(training_seconds, 1),
            "classifier_final": classifier_history[-1] if classifier_history else {},
            "rows": rows,
            "fd_ratio": round(ratio, 3),
            "target_met": ratio <= TARGET,
        }
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
