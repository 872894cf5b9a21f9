"""Diffusion for robustness, costs: generated images/s (class-conditional, the generation spec's
default sampler: ancestral DDPM, 50 steps),
purified predictions/s, and the cost of one attack step on the defended model (adaptive: exact
gradients through the checkpointed sampler; BPDA) relative to one on the bare classifier.

    .venv/bin/python -m bench.purification_speed [--batch 256] [--out FILE]

Speed does not depend on what the weights learned, so the models are freshly initialised at the
cpu presets' shapes: the UNet [16, 32, 32] at 32 px (class-conditional), the small CNN at 28 px.
On a GPU it also times bf16 autocast (`--bf16`, used by bench/gpu.sh).
"""

from __future__ import annotations

import argparse
import json
import statistics
from contextlib import nullcontext
from pathlib import Path

import torch
import torch.nn.functional as F

from bench.common import fashion_model, machine, time_interleaved
from core.contract.diffusion_specs import DatasetGenerationSpec, PurifierSpec
from core.contract.presets import ddpm_preset
from core.device import resolve_device
from core.diffusion.ddpm import DiffusionModel
from core.diffusion.generate import generate_shard
from core.diffusion.purify import Purified


def timed(fn, repeats: int) -> float:
    """Median seconds of `fn()` over `repeats` runs after one warm-up."""
    fn()
    return statistics.median(time_interleaved({"fn": fn}, repeats)["fn"])


@torch.no_grad()
def predict(model, x):
    return model(x).argmax(1)


def attack_step(model, x, y):
    """One gradient step of an attack: forward, loss, input gradient."""
    x = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(F.cross_entropy(model(x), y), x)
    return grad


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--generate", type=int, default=256, help="images generated for the images/s figure")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--bf16", action="store_true", help="also time bf16 autocast (GPU)")
    ap.add_argument("--out", default="bench/results/purification_speed.json")
    args = ap.parse_args(argv)
    device = resolve_device("auto")
    torch.manual_seed(0)
    spec = ddpm_preset("cpu").model_copy(update={"class_conditional": True})
    diffusion = DiffusionModel(spec, in_channels=1, data_size=28, num_classes=10).to(device).eval()
    classifier = fashion_model().to(device)
    x = torch.rand(args.batch, 1, 28, 28, device=device)
    y = torch.randint(0, 10, (args.batch,), device=device)
    rows = []
    for precision in ["fp32", "bf16"] if args.bf16 else ["fp32"]:
        cast = torch.autocast(device.type, dtype=torch.bfloat16) if precision == "bf16" else nullcontext()
        with cast:
            gen = DatasetGenerationSpec(per_class=max(1, args.generate // 10), shard_size=min(args.generate, 1024))
            seconds = timed(lambda gen=gen: generate_shard(diffusion, gen, 0, (0, args.generate)), 1)
            row = {"precision": precision, "sampler": f"{gen.sampler}-{gen.num_steps}"}
            row["generated_images_per_s"] = args.generate / seconds
            contestants = {"bare attack step": lambda: attack_step(classifier, x, y)}
            for t_star in (100, 200):
                defended = Purified(classifier, diffusion, PurifierSpec(t_star=t_star, steps=10))
                contestants[f"t{t_star} purified prediction"] = lambda d=defended: predict(d, x)
                contestants[f"t{t_star} adaptive step"] = lambda d=defended: attack_step(d, x, y)
                contestants[f"t{t_star} bpda step"] = lambda d=defended: attack_step(d.with_gradient("bpda"), x, y)
            for fn in contestants.values():  # warm-up
                fn()
            times = {k: statistics.median(v) for k, v in time_interleaved(contestants, args.repeats).items()}
            row["median_s"] = times
            bare = times["bare attack step"]
            for t_star in (100, 200):
                row[f"t{t_star}"] = {
                    "purified_predictions_per_s": args.batch / times[f"t{t_star} purified prediction"],
                    "adaptive_step_vs_bare": times[f"t{t_star} adaptive step"] / bare,
                    "bpda_step_vs_bare": times[f"t{t_star} bpda step"] / bare,
                    "adaptive_step_vs_bpda": times[f"t{t_star} adaptive step"] / times[f"t{t_star} bpda step"],
                }
            rows.append(row)
            print(json.dumps(row, indent=1), flush=True)
    out = {"machine": machine(), "device": str(device), "batch": args.batch, "reverse_steps": 10, "rows": rows}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
