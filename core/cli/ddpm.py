"""`robustlab ddpm train | sample`: diffusion on the command line, with progress bars."""

from __future__ import annotations

from pathlib import Path

from core.cli.result_table import add_json_flag, print_result
from core.contract.diffusion_specs import DDPMSampleSpec, DDPMTrainSpec
from core.contract.names import PRESET_NAMES, SAMPLERS
from core.contract.presets import ddpm_preset
from core.contract.progress import progress_bar


def cmd_train(args) -> int:
    from core.data import load_dataset
    from core.diffusion.ddpm import load_diffusion, train_ddpm

    spec = (
        DDPMTrainSpec.model_validate_json(Path(args.spec).read_text())
        if args.spec
        else ddpm_preset(args.preset, args.seed)
    )
    if args.epochs:
        spec = spec.model_copy(update={"epochs": args.epochs})
    out = Path(args.out or f"runs/ddpm-{spec.data.name}-seed{spec.seed}")
    ds = load_dataset(spec.data)
    result = train_ddpm(spec, out, dataset=ds, progress=progress_bar(f"ddpm {out.name}"))
    report = {"status": "succeeded", "checkpoint": str(out), "final": result.final}
    if args.classifier:
        report["quality"] = _quality(load_diffusion(out), args.classifier, ds, args.quality_samples)
    print_result(report, args)
    return 0


def _quality(model, classifier_folder: str, ds, n: int) -> dict:
    from core.diffusion.quality import sample_quality
    from core.diffusion.sampling import sample
    from core.models import load_model

    gen = sample(model, DDPMSampleSpec(n=n, sampler="ddim", steps=50), progress=progress_bar("quality samples"))
    return sample_quality(load_model(classifier_folder), gen["images"], ds.x_test[:n], ds.classes)


def cmd_sample(args) -> int:
    from core.diffusion.ddpm import load_diffusion
    from core.diffusion.sampling import sample
    from core.images import grid_png

    spec = DDPMSampleSpec(
        n=args.n, sampler=args.sampler, steps=args.steps, eta=args.eta, seed=args.seed, trajectory=bool(args.trajectory)
    )
    out = sample(load_diffusion(args.checkpoint), spec, progress=progress_bar(f"{spec.sampler}-{spec.num_steps}"))
    Path(args.out).write_bytes(grid_png(out["images"]))
    if args.trajectory:
        strip = [grid_png(f) for f in out["trajectory"]]
        for i, png in enumerate(strip):
            Path(f"{args.trajectory}_{i:02d}.png").write_bytes(png)
    print_result({"grid": args.out, "n": spec.n, "sampler": spec.sampler, "steps": spec.num_steps}, args, indent=None)
    return 0


def add_commands(sub) -> None:
    d = sub.add_parser("ddpm", help="denoising diffusion: train and sample").add_subparsers(dest="ddpm", required=True)
    t = d.add_parser("train", help="train a DDPM")
    t.add_argument("--preset", choices=PRESET_NAMES, default="smoke")
    t.add_argument("--spec", help="a DDPMTrainSpec JSON file")
    t.add_argument("--epochs", type=int)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--out", help="checkpoint folder (resumed if it holds a checkpoint)")
    t.add_argument("--classifier", help="a classifier checkpoint folder: report the Fréchet distance in its features")
    t.add_argument("--quality-samples", type=int, default=500)
    add_json_flag(t)
    t.set_defaults(func=cmd_train)
    s = d.add_parser("sample", help="sample a grid from a trained DDPM")
    s.add_argument("checkpoint")
    s.add_argument("--n", type=int, default=16)
    s.add_argument("--sampler", choices=SAMPLERS, default="ddim")
    s.add_argument("--steps", type=int)
    s.add_argument("--eta", type=float, default=0.0)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--out", default="samples.png")
    s.add_argument("--trajectory", help="also write the trajectory frames as PREFIX_NN.png")
    add_json_flag(s)
    s.set_defaults(func=cmd_sample)
