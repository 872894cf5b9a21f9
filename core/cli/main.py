"""`robustlab` on the command line: train, evaluate and the SAT study, without the service."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from pydantic import ValidationError

from core.cli.admin import add_commands as add_admin_commands
from core.cli.client import ApiError, add_commands
from core.cli.ddpm import add_commands as add_ddpm_commands
from core.presets import PRESETS, eval_preset, train_preset
from core.specs import ActivationSpec, AttackSpec, EvalSpec, TrainSpec

log = logging.getLogger("robustlab")


def _floats(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from e


def _names(text: str) -> list[str]:
    return [v.strip() for v in text.split(",") if v.strip()]


def progress_bar(desc: str, leave: bool = True):
    """A tqdm bar on stderr driven by `Progress` reports (fraction → percent)."""
    from tqdm import tqdm

    bar = tqdm(
        total=100,
        desc=desc,
        leave=leave,
        unit="%",
        bar_format="{l_bar}{bar}| {n:.0f}% [{elapsed}<{remaining}] {postfix}",
    )

    def report(p) -> None:
        bar.n = round(100 * p.fraction, 1)
        if p.metrics:
            bar.set_postfix(
                {k: f"{v:.3f}" for k, v in p.metrics.items() if k in ("clean_acc", "robust_acc", "train_loss")}
            )
        bar.refresh()
        if p.fraction >= 1:
            bar.close()

    return report


def _train_spec(args) -> TrainSpec:
    """The preset with the flags applied, or the spec file as it is."""
    if args.spec:
        return TrainSpec.model_validate_json(Path(args.spec).read_text())
    act = ActivationSpec(name=args.activation, probe=args.probe)
    d = train_preset(args.preset, act, seed=args.seed).model_dump()
    for key in ("epochs", "method", "device"):
        if getattr(args, key):
            d[key] = getattr(args, key)
    if args.data_root:
        d["data"]["root"] = args.data_root
    if args.train_subset:
        d["data"]["train_subset"] = args.train_subset
    return TrainSpec.model_validate(d)


def cmd_train(args) -> int:
    from core.data import load_dataset
    from core.training import train

    spec = _train_spec(args)
    out = Path(args.out or f"runs/{spec.data.name}-{spec.method}-{spec.model.activation.label}-seed{spec.seed}")
    ds = load_dataset(spec.data, download=args.download)
    result = train(spec, out, dataset=ds, progress=progress_bar(f"train {out.name}"))
    print(json.dumps({"status": result.status, "checkpoint": str(out), "final": result.final}, indent=1))
    return 0


def cmd_evaluate(args) -> int:
    from core.data import load_dataset
    from core.device import resolve_device
    from core.evaluation import robustness_curve
    from core.models import load_model

    base = eval_preset(args.preset)
    attacks = [
        AttackSpec(name=a, steps=args.steps, random_start=(a == "pgd"), restarts=args.restarts) for a in args.attacks
    ]
    data = base.data.model_copy(
        update={
            k: v for k, v in (("test_subset", args.test_subset), ("root", args.data_root), ("name", args.dataset)) if v
        }
    )
    spec = EvalSpec(data=data, attacks=attacks, eps_grid=args.eps or base.eps_grid, large_eps=args.large_eps)
    model = load_model(args.checkpoint, device=resolve_device(spec.device), channels_last=spec.channels_last)
    ds = load_dataset(spec.data, download=args.download)
    result = robustness_curve(
        model,
        ds.x_test,
        ds.y_test,
        spec.attacks,
        spec.eps_grid,
        num_classes=ds.num_classes,
        large_eps=spec.large_eps,
        batch_size=spec.batch_size,
        progress=progress_bar("evaluate"),
    )
    result["spec"] = spec.model_dump(mode="json")
    text = json.dumps(result, indent=1)
    if args.out:
        Path(args.out).write_text(text)
    print(text)
    return 0


def cmd_study_sat(args) -> int:
    from core.study import format_table, run_sat_study, sat_variants, summarise

    base = train_preset(args.preset)
    if args.epochs:
        base = base.model_copy(update={"epochs": args.epochs})
    variants = sat_variants(args.activations, args.probes)
    out = Path(args.out or f"runs/study-sat-{args.preset}")
    seeds = list(range(args.seeds))

    def run_progress(i, n, label, seed):
        return progress_bar(f"[{i + 1}/{n}] {label} seed {seed}")

    rows = run_sat_study(base, seeds, out, variants, run_progress=run_progress)
    table = summarise(rows)
    note = f"FGSM + PGD-20 worst case, L∞ ε={base.eval_attack.eps:g}"
    (out / "table.json").write_text(
        json.dumps({"rows": rows, "table": table, "recipe": base.model_dump(mode="json")}, indent=1)
    )
    print(format_table(table, note))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="robustlab", description=__doc__)
    p.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train a classifier (standard, PGD-AT or Fast-AT)")
    t.add_argument("--preset", choices=PRESETS, default="smoke")
    t.add_argument("--spec", help="a TrainSpec JSON file (overrides the preset and other flags)")
    t.add_argument("--method", choices=["standard", "pgd", "fast"])
    t.add_argument(
        "--activation", default="relu", choices=list(ActivationSpec.model_fields["name"].annotation.__args__)
    )
    t.add_argument("--probe", default="none", choices=["none", "attack", "update", "both"])
    t.add_argument("--epochs", type=int)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--train-subset", type=int)
    t.add_argument("--device", choices=["auto", "cpu", "cuda"])
    t.add_argument("--data-root")
    t.add_argument("--download", action="store_true", help="download missing data (needs a network)")
    t.add_argument("--out", help="checkpoint folder (resumed if it holds a checkpoint)")
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("evaluate", help="clean accuracy and robustness curve of a checkpoint")
    e.add_argument("checkpoint")
    e.add_argument("--preset", choices=PRESETS, default="cpu")
    e.add_argument("--dataset")
    e.add_argument("--data-root")
    e.add_argument("--download", action="store_true")
    e.add_argument("--eps", type=_floats, help="comma-separated radii, e.g. 0,0.05,0.1")
    e.add_argument("--attacks", type=_names, default=["fgsm", "pgd"])
    e.add_argument("--steps", type=int, default=20)
    e.add_argument("--restarts", type=int, default=1)
    e.add_argument("--test-subset", type=int)
    e.add_argument("--large-eps", type=float)
    e.add_argument("--out", help="write the JSON result here too")
    e.set_defaults(func=cmd_evaluate)

    s = sub.add_parser("study", help="studies").add_subparsers(dest="study", required=True)
    sat = s.add_parser("sat", help="smooth adversarial training: activations and probes, over seeds")
    sat.add_argument("--preset", choices=PRESETS, default="smoke")
    sat.add_argument("--seeds", type=int, default=3)
    sat.add_argument("--epochs", type=int)
    sat.add_argument("--activations", type=_names, default=None)
    sat.add_argument("--probes", type=_names, default=None)
    sat.add_argument("--out")
    sat.set_defaults(func=cmd_study_sat)
    add_commands(sub)
    add_ddpm_commands(sub)
    add_admin_commands(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    if getattr(args, "study", None) == "sat":
        from core.study import SAT_ACTIVATIONS, SAT_PROBES

        args.activations = SAT_ACTIVATIONS if args.activations is None else args.activations
        args.probes = SAT_PROBES if args.probes is None else args.probes
    try:
        return args.func(args)
    except (ValueError, ValidationError, FileNotFoundError, ApiError) as e:
        print(f"robustlab: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
