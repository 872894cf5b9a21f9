"""`robustlab train | evaluate | study sat`: the library on the command line, without the service."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import get_args

from core.cli.result_table import add_json_flag, print_result
from core.contract.attack_specs import OWN_FIELDS
from core.contract.job_specs import EvalSpec
from core.contract.names import (
    ACTIVATIONS,
    ENSEMBLES,
    GRADIENT_ATTACKS,
    MIN_NORMS,
    NORMS,
    PROBE_PHASES,
    TRAIN_METHODS,
    TRAIN_PRESET_NAMES,
    Probe,
)
from core.contract.presets import eval_preset, smoothing_training, train_preset
from core.contract.progress import progress_bar
from core.contract.recipe_specs import Selection
from core.contract.specs import ActivationSpec, TrainSpec
from core.study import ABLATIONS


def floats(text: str) -> list[float]:
    """An argparse type: comma-separated numbers."""
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from e


def _names(text: str) -> list[str]:
    return [v.strip() for v in text.split(",") if v.strip()]


def _train_spec(args) -> TrainSpec:
    """The preset with the flags applied, or the spec file as it is."""
    if args.spec:
        return TrainSpec.model_validate_json(Path(args.spec).read_text())
    act = ActivationSpec(name=args.activation, probe=args.probe)
    d = train_preset(args.preset, act, seed=args.seed).model_dump()
    for key in ("epochs", "method", "device", "trades_beta"):
        if getattr(args, key) is not None:
            d[key] = getattr(args, key)
    if args.data_root:
        d["data"]["root"] = args.data_root
    if args.train_subset:
        d["data"]["train_subset"] = args.train_subset
    d["recipe"].update({k: v for k, v in recipe_flags(args).items() if v is not None})
    if args.no_ema:
        d["recipe"]["ema_decay"] = None
    if d["method"] in ("gaussian", "smoothadv") and d.get("noise") is None:  # the smoothing presets' noise and attack
        d = smoothing_training(TrainSpec.model_validate({**d, "method": "pgd"}), d["method"]).model_dump()
    if args.noise_sigma is not None or args.noise_samples is not None:
        given = {"sigma": args.noise_sigma, "samples": args.noise_samples}
        d["noise"] = {**(d.get("noise") or {}), **{k: v for k, v in given.items() if v is not None}}
    return TrainSpec.model_validate(d)


WEIGHT_SETS = ("last", "ema", "best")  # the sets a recipe's run keeps in its train state
RECIPE_FLAGS = (
    "crop_pad",
    "flip",
    "resized_crop",
    "ema_decay",
    "use_ema",
    "holdout",
    "select",
    "label_smoothing",
    "eps_warmup_epochs",
)


def recipe_flags(args) -> dict:
    """The `RecipeSpec` fields the flags set (None: the preset's)."""
    return {k: getattr(args, k) for k in RECIPE_FLAGS}


def add_recipe_flags(t) -> None:
    """The training recipe's flags (`RecipeSpec`); each left out keeps the preset's value."""
    r = t.add_argument_group("recipe", "augmentation, weight averaging, best-epoch selection (default: the preset's)")
    r.add_argument("--crop-pad", type=int, help="random crop with this zero padding (0: off)")
    r.add_argument("--flip", action=argparse.BooleanOptionalAction, help="random horizontal flip")
    r.add_argument("--resized-crop", type=float, help="random-resized crop down to this share of the area")
    r.add_argument("--ema-decay", type=float, help="EMA of the weights with this decay")
    r.add_argument("--no-ema", action="store_true", help="no weight average")
    r.add_argument("--use-ema", action=argparse.BooleanOptionalAction, help="the average is the model (default yes)")
    r.add_argument("--holdout", type=int, help="training images held out for the per-epoch monitor")
    r.add_argument("--select", choices=get_args(Selection), help="hand on the last or the best epoch's weights")
    r.add_argument("--label-smoothing", type=float, help="label smoothing of the training loss")
    r.add_argument("--eps-warmup-epochs", type=int, help="grow the training ε linearly over this many epochs")


def cmd_train(args) -> int:
    from core.data import load_dataset
    from core.training import train

    spec = _train_spec(args)
    out = Path(args.out or f"runs/{spec.data.name}-{spec.method}-{spec.model.activation.label}-seed{spec.seed}")
    ds = load_dataset(spec.data, download=args.download)
    result = train(spec, out, dataset=ds, progress=progress_bar(f"train {out.name}"))
    summary = {"status": "succeeded", "checkpoint": str(out), "final": result.final, "chosen": result.chosen}
    print_result(summary, args)
    return 0


def evaluation_spec(args) -> EvalSpec:
    """The preset's evaluation with the flags applied: the protocol (ensemble, or `--attacks` for
    a custom one), ε, norm, images, seed and attack budgets, the data and the curve."""
    base = eval_preset(args.preset)
    protocol = base.protocol.model_dump()
    if args.attacks:  # each attack takes the budgets it reads (Square its queries, the others their steps)
        budgets = {"steps": args.steps, "queries": args.queries}
        attacks = [
            {"name": a, **{k: v for k, v in budgets.items() if v is not None and a in OWN_FIELDS[k]}}
            for a in args.attacks
        ]
        if args.eot and args.eot > 1:  # EOT for the gradient attacks, in the order given
            attacks = [{**a, "eot": args.eot} if a["name"] in GRADIENT_ATTACKS else a for a in attacks]
        protocol.update(ensemble="custom", attacks=attacks)
    elif args.protocol:
        protocol.update(ensemble=args.protocol, attacks=None)
    flags = {
        "eps": args.eps,
        "norm": args.norm,
        "images": args.images,
        "seed": args.seed,
        "steps": args.steps,
        "queries": args.queries,
        "eot": args.eot,
    }
    protocol.update({k: v for k, v in flags.items() if v is not None})
    data = base.data.model_dump()
    data.update(
        {k: v for k, v in (("test_subset", args.test_subset), ("root", args.data_root), ("name", args.dataset)) if v}
    )
    min_norm = None
    if args.min_norm_steps or args.min_norm or args.min_norm_grid:
        min_norm = {"steps": args.min_norm_steps or 100, "norm": args.min_norm, "eps_grid": args.min_norm_grid}
    return EvalSpec(data=data, protocol=protocol, eps_grid=args.eps_grid, large_eps=args.large_eps, min_norm=min_norm)


def cmd_evaluate(args) -> int:
    from core.data import load_dataset
    from core.device import resolve_device
    from core.evaluation import evaluate
    from core.models import load_model

    spec = evaluation_spec(args)
    model = load_model(args.checkpoint, device=resolve_device(spec.device), channels_last=spec.channels_last)
    if args.weights != "chosen":  # another weight set the run kept beside the one it hands on
        from core.training.checkpoint import read_weight_set

        model.load_state_dict(read_weight_set(Path(args.checkpoint), args.weights))
    ds = load_dataset(spec.data, download=args.download)
    result = evaluate(
        model,
        ds.x_test,
        ds.y_test,
        spec.protocol,
        num_classes=ds.num_classes,
        eps_grid=spec.eps_grid,
        large_eps=spec.large_eps,
        min_norm=spec.min_norm,
        batch_size=spec.batch_size,
        progress=progress_bar("evaluate"),
    ).model_dump(mode="json")
    result["spec"] = spec.model_dump(mode="json")
    result["weights"] = args.weights
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1))
    printed = {k: v for k, v in result.items() if k != "broken_by"}  # per point: in --out
    print_result(printed, args, also={"checkpoint": args.checkpoint, "written to": args.out})
    return 0


def study_recipe(args):
    """The preset a study's arms start from, with its `--epochs`."""
    base = train_preset(args.preset)
    return base.model_copy(update={"epochs": args.epochs}) if args.epochs else base


def run_study_command(args, variants, out: Path, table_name: str = "table", weight_sets: bool = False) -> int:
    """Train and evaluate every arm and seed (resuming), then print and save the table as
    `<table_name>.json` (studies may share a folder, and so their runs). With `weight_sets`, the
    first arm's runs are evaluated with the other weights they keep too (`evaluate_weight_sets`)."""
    from core.study import evaluate_weight_sets, format_table, run_study, summarise

    base = study_recipe(args)

    def run_progress(i, n, label, seed):
        return progress_bar(f"[{i + 1}/{n}] {label} seed {seed}")

    rows = run_study(base, list(range(args.seeds)), out, variants, run_progress=run_progress)
    if weight_sets:
        rows += evaluate_weight_sets(base, list(range(args.seeds)), out, variants[0])
    table = summarise(rows)
    (out / f"{table_name}.json").write_text(
        json.dumps({"rows": rows, "table": table, "recipe": base.model_dump(mode="json")}, indent=1)
    )
    print(format_table(table, base.protocol.label))
    return 0


def cmd_study_sat(args) -> int:
    from core.study import sat_variants

    return run_study_command(
        args, sat_variants(args.activations, args.probes), Path(args.out or f"runs/study-sat-{args.preset}")
    )


def cmd_study_ablate(args) -> int:
    from core.study import ablation_variants

    out = Path(args.out or f"runs/study-ablate-{args.preset}")
    variants = ablation_variants(args.ablations, study_recipe(args))
    return run_study_command(args, variants, out, "table-ablate", weight_sets=True)


def cmd_study_methods(args) -> int:
    from core.study import method_variants

    return run_study_command(args, method_variants(args.methods), Path(args.out or f"runs/study-methods-{args.preset}"))


def add_commands(sub) -> None:

    t = sub.add_parser("train", help="train a classifier (standard, PGD-AT or Fast-AT)")
    t.add_argument("--preset", choices=TRAIN_PRESET_NAMES, default="smoke")
    t.add_argument("--spec", help="a TrainSpec JSON file (overrides the preset and other flags)")
    t.add_argument("--method", choices=TRAIN_METHODS)
    t.add_argument("--trades-beta", type=float, help="TRADES' β (default 6)")
    t.add_argument("--noise-sigma", type=float, help="gaussian, smoothadv: the smoothing noise's σ (default 0.25)")
    t.add_argument("--noise-samples", type=int, help="smoothadv: noise draws per image (default 1)")
    t.add_argument("--activation", default="relu", choices=ACTIVATIONS)
    t.add_argument("--probe", default="none", choices=get_args(Probe))
    t.add_argument("--epochs", type=int)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--train-subset", type=int)
    t.add_argument("--device", choices=["auto", "cpu", "cuda"])
    t.add_argument("--data-root")
    t.add_argument("--download", action="store_true", help="download missing data (needs a network)")
    t.add_argument("--out", help="checkpoint folder (resumed if it holds a checkpoint)")
    add_recipe_flags(t)
    add_json_flag(t)
    t.set_defaults(func=cmd_train)

    e = sub.add_parser("evaluate", help="clean and robust accuracy of a checkpoint under a protocol")
    e.add_argument("checkpoint")
    e.add_argument("--preset", choices=TRAIN_PRESET_NAMES, default="cpu", help="the preset's data and protocol")
    e.add_argument("--protocol", choices=[n for n in ENSEMBLES if n != "custom"], help="the attack ensemble")
    e.add_argument("--attacks", type=_names, help="a custom ensemble instead, e.g. apgd-ce,square")
    e.add_argument("--eps", type=float, help="the radius ε")
    e.add_argument("--norm", choices=NORMS)
    e.add_argument("--images", type=int, help="the first N test images")
    e.add_argument("--seed", type=int)
    e.add_argument("--steps", type=int, help="APGD iterations (PGD's for --protocol pgd)")
    e.add_argument("--queries", type=int, help="Square's queries per point")
    e.add_argument("--eot", type=int, help="EOT samples of the rand protocol")
    e.add_argument("--eps-grid", type=floats, help="also a curve at these radii, e.g. 0,0.05,0.1")
    e.add_argument("--dataset")
    e.add_argument("--data-root")
    e.add_argument("--download", action="store_true")
    e.add_argument("--test-subset", type=int)
    e.add_argument("--large-eps", type=float)
    e.add_argument("--min-norm-steps", type=int, help="also FMN's minimal-norm curve with this many iterations")
    e.add_argument("--min-norm", choices=MIN_NORMS, help="FMN's norm (default: the protocol's)")
    e.add_argument("--min-norm-grid", type=floats, help="FMN's radii (default: the curve's)")
    e.add_argument(
        "--weights",
        choices=["chosen", *WEIGHT_SETS],
        default="chosen",
        help="the weights the run hands on (default), or one of the sets it keeps beside them",
    )
    e.add_argument("--out", help="write the whole JSON result (with the per-point record) here")
    add_json_flag(e)
    e.set_defaults(func=cmd_evaluate)

    s = sub.add_parser("study", help="studies").add_subparsers(dest="study", required=True)
    sat = s.add_parser("sat", help="smooth adversarial training: activations and probes, over seeds")
    sat.add_argument("--preset", choices=TRAIN_PRESET_NAMES, default="smoke")
    sat.add_argument("--seeds", type=int, default=3)
    sat.add_argument("--epochs", type=int)
    sat.add_argument("--activations", type=_names, default=list(ACTIVATIONS), help="comma-separated")
    sat.add_argument("--probes", type=_names, default=list(PROBE_PHASES), help="comma-separated")
    sat.add_argument("--out")
    sat.set_defaults(func=cmd_study_sat)
    ablate = s.add_parser("ablate", help="the recipe, and the recipe without each of its ingredients, over seeds")
    ablate.add_argument("--preset", choices=TRAIN_PRESET_NAMES, default="fmnist-strong")
    ablate.add_argument("--seeds", type=int, default=1)
    ablate.add_argument("--epochs", type=int)
    ablate.add_argument(
        "--ablations",
        type=_names,
        help="comma-separated arms that train, of " + ", ".join(ABLATIONS) + " (default: every one that changes "
        "the preset; the weight average and the best epoch are ablated without training: the recipe's run is "
        "evaluated with its other weights)",
    )
    ablate.add_argument("--out")
    ablate.set_defaults(func=cmd_study_ablate)
    methods = s.add_parser("methods", help="training methods side by side (PGD-AT, TRADES, standard), over seeds")
    methods.add_argument("--preset", choices=TRAIN_PRESET_NAMES, default="smoke")
    methods.add_argument("--seeds", type=int, default=3)
    methods.add_argument("--epochs", type=int)
    methods.add_argument("--methods", type=_names, default=["pgd", "trades"], help="comma-separated")
    methods.add_argument("--out")
    methods.set_defaults(func=cmd_study_methods)
