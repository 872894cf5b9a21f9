"""Studies: one recipe, several arms, several seeds, every run evaluated under the same protocol;
clean and robust accuracy as mean ± std. The seed paper's comparison (Xie et al., "Smooth
Adversarial Training": the same PGD-AT model with each activation and with the ReLU-forward /
smooth-backward probes), and training methods side by side (PGD-AT, TRADES, standard).

Every run lives in `out_root/<variant>/seed<k>/`; training resumes from its checkpoint and a
finished evaluation (`eval.json`) is reused, so an interrupted study continues where it stopped.
"""

from __future__ import annotations

import json
import logging
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from core.contract.attack_specs import ProtocolSpec
from core.contract.names import ACTIVATIONS, PROBE_PHASES, TrainMethod
from core.contract.specs import ActivationSpec, TrainSpec

log = logging.getLogger("robustlab.study")

# Softplus in its parametric form with β = 10, the same sharpness as the probe's backward pass.
STUDY_PARAMS = {"softplus": {"beta": 10.0}}


@dataclass(frozen=True)
class Variant:
    """One arm: the recipe with this activation, trained with this method, and the spec fields
    `changes` names set as it says (an ablation): `{"optim": {"weight_decay": 0.0}}` changes one
    field of the recipe's `optim`, `{"epochs": 20}` a field of the spec itself."""

    label: str
    activation: ActivationSpec
    method: TrainMethod = "pgd"
    changes: dict = field(default_factory=dict)


def with_changes(spec: TrainSpec, changes: dict) -> TrainSpec:
    """`spec` with `changes` applied one level deep (a section's other fields kept), validated."""
    data = spec.model_dump()
    for key, value in changes.items():
        if key not in data:
            raise ValueError(f"a spec has no field {key!r}")
        data[key] = {**data[key], **value} if isinstance(value, dict) else value
    return TrainSpec.model_validate(data)


def sat_variants(activations=ACTIVATIONS, probes=PROBE_PHASES) -> list[Variant]:
    """The study's arms: each activation, then ReLU with a smooth backward in each probe phase."""
    arms = [Variant(a, ActivationSpec(name=a, **STUDY_PARAMS.get(a, {}))) for a in activations]
    for p in probes:
        act = ActivationSpec(name="relu", probe=p)
        arms.append(Variant(act.label, act))
    return arms


def cheap_protocol(protocol: ProtocolSpec) -> ProtocolSpec:
    """FGSM + PGD-20 on the same images: the number robustlab reported before, kept beside the
    protocol's to show the gap."""
    return protocol.model_copy(update={"ensemble": "pgd", "steps": None, "attacks": None})


def evaluate_arm(model, ds, protocol: ProtocolSpec) -> dict:
    """One run's row: clean accuracy, robust accuracy under `protocol` and under the cheap check."""
    from core.evaluation import evaluate

    headline = evaluate(model, ds.x_test, ds.y_test, protocol, num_classes=ds.num_classes)
    cheap = evaluate(model, ds.x_test, ds.y_test, cheap_protocol(protocol), num_classes=ds.num_classes)
    return {
        **headline.model_dump(
            mode="json", include={"clean_acc", "robust_acc", "protocol", "protocol_label", "breakdown", "warnings"}
        ),
        "pgd_robust_acc": cheap.robust_acc,
        "seconds": headline.seconds + cheap.seconds,
    }


# Ingredients that change what is trained: each arm trains a run of its own, the recipe with the
# spec fields named changed (`with_changes`). (The recipe's arm itself is `relu`, the folder the
# SAT study uses.) `crop-pad-2`, `hidden-default`, `no-weight-decay` and `pgd-7` set one of
# fmnist-strong's choices back to what the first strong recipe or the `cpu` network had.
NO_RECIPE = {"crop_pad": 0, "flip": False, "resized_crop": None, "ema_decay": None, "select": "last", "holdout": 0}
ABLATIONS: dict[str, dict] = {
    "no-augmentation": {"recipe": {"crop_pad": 0, "flip": False, "resized_crop": None}},
    "crop-pad-2": {"recipe": {"crop_pad": 2}},
    "none": {"recipe": NO_RECIPE},
    "hidden-default": {"model": {"hidden": None}},
    "no-weight-decay": {"optim": {"weight_decay": 0.0}},
    "pgd-7": {"attack": {"steps": 7}},
}
# Ingredients that only choose among the weights a run passes through (the weight average and the
# best epoch leave training as it is): rows of the recipe's own run, evaluated with the weights it
# keeps beside the ones it hands on. {row label: weight set}
WEIGHT_SET_ARMS: dict[str, str] = {"last-epoch": "ema", "last-epoch-no-ema": "last"}


def ablation_variants(ablations=None, base: TrainSpec | None = None) -> list[Variant]:
    """The recipe's ReLU arm (labelled `relu`, the same folder as the SAT study's), then one arm per
    ablation in `ABLATIONS` (default: every one that changes `base`). With `base`, an ablation
    that leaves it as it is (no augmentation, for a recipe without any) is refused: its row would
    be the recipe's own, trained again."""
    names = list(ABLATIONS) if ablations is None else list(ablations)
    unknown = set(names) - set(ABLATIONS)
    if unknown:
        raise ValueError(f"unknown ablations {sorted(unknown)}; known: {', '.join(ABLATIONS)}")
    if base is not None:
        same = [a for a in names if with_changes(base, ABLATIONS[a]) == base]
        if same and ablations is not None:
            raise ValueError(f"ablations {', '.join(same)} change nothing in this recipe")
        names = [a for a in names if a not in same]
    return [Variant("relu", ActivationSpec())] + [Variant(a, ActivationSpec(), changes=ABLATIONS[a]) for a in names]


def evaluate_weight_sets(base: TrainSpec, seeds: list[int], out_root: Path, variant: Variant) -> list[dict]:
    """Rows of `variant`'s finished runs evaluated, under `base.protocol`, with each weight set of
    `WEIGHT_SET_ARMS` the run keeps besides the weights it hands on (each once: `eval-<set>.json`)."""
    from core.data import load_dataset
    from core.models import load_model
    from core.training.checkpoint import read_weight_set

    rows = []
    for seed in seeds:
        folder = run_folder(out_root, variant, seed)
        if not (folder / "checkpoint.json").is_file():  # an evaluation kept without its run
            log.warning("%s: no checkpoint, so no rows for its other weights (train it again to get them)", folder)
            continue
        chosen = json.loads((folder / "checkpoint.json").read_text()).get("chosen") or {}
        for label, name in WEIGHT_SET_ARMS.items():
            if name == chosen.get("weights"):  # the weights it hands on: the arm's own row
                continue
            path = folder / f"eval-{name}.json"
            if not path.is_file() or json.loads(path.read_text()).get("protocol") != base.protocol.model_dump(
                mode="json"
            ):
                try:
                    weights = read_weight_set(folder, name)
                except ValueError:  # the recipe keeps no such set (no average; nothing chosen)
                    continue
                model = load_model(folder, channels_last=True)
                model.load_state_dict(weights)
                ds = load_dataset(base.data.model_copy(update={"seed": seed}))
                row = {"variant": label, "seed": seed, "weights": name, **evaluate_arm(model, ds, base.protocol)}
                path.write_text(json.dumps(row, indent=1))
            rows.append(json.loads(path.read_text()))
    return rows


def method_variants(methods=("pgd", "trades")) -> list[Variant]:
    """The methods study's arms: the recipe's ReLU model trained with each method."""
    return [Variant(m, ActivationSpec(), method=m) for m in methods]


def run_folder(out_root: Path, variant: Variant, seed: int) -> Path:
    return out_root / variant.label.replace("+", "_").replace("(", "_").replace(")", "") / f"seed{seed}"


def summarise(rows: list[dict]) -> list[dict]:
    """Mean ± std (sample std over seeds) of clean and robust accuracy (and the cheap PGD number,
    where rows have it) per variant, in arm order."""
    table = []
    for label in dict.fromkeys(r["variant"] for r in rows):
        mine = [r for r in rows if r["variant"] == label]
        entry = {"variant": label, "seeds": len(mine)}
        for key in ("clean_acc", "robust_acc", "pgd_robust_acc"):
            if not all(key in r for r in mine):
                continue
            values = [r[key] for r in mine]
            entry[key] = statistics.fmean(values)
            entry[f"{key}_std"] = statistics.stdev(values) if len(values) > 1 else 0.0
        table.append(entry)
    return table


def format_table(table: list[dict], protocol_label: str) -> str:
    """A Markdown table of the summary: clean, FGSM + PGD-20, the protocol's robust accuracy (mean ±
    std over seeds) and the gap between the two robust numbers, in points."""
    pct = lambda e, k: f"{100 * e[k]:.1f} ± {100 * e[k + '_std']:.1f}"  # noqa: E731
    lines = [
        f"Robust accuracy under: {protocol_label}",
        "",
        "| variant | seeds | clean | FGSM + PGD-20 | protocol | gap (points) |",
        "|---|---|---|---|---|---|",
    ]
    for e in table:
        cheap = pct(e, "pgd_robust_acc") if "pgd_robust_acc" in e else "–"
        gap = f"{100 * (e['pgd_robust_acc'] - e['robust_acc']):.1f}" if "pgd_robust_acc" in e else "–"
        lines.append(
            f"| {e['variant']} | {e['seeds']} | {pct(e, 'clean_acc')} | {cheap} | {pct(e, 'robust_acc')} | {gap} |"
        )
    return "\n".join(lines)


def run_study(
    base: TrainSpec, seeds: list[int], out_root: Path, variants: list[Variant], *, run_progress=None, should_stop=None
) -> list[dict]:
    """Train and evaluate every (variant, seed) under `base.protocol`; returns one row per run.

    A run whose `eval.json` holds an evaluation under the same protocol is not evaluated again; one
    under another protocol is (from its checkpoint: training is not repeated).

    Args:
        base: the recipe; its activation, method and seeds are replaced per run.
        seeds: training seeds (also the seed of the data subset draw).
        out_root: folder of the study.
        variants: arms from `sat_variants`.
        run_progress: called as `run_progress(i, n, label, seed)` before each run, and returns a
            progress reporter for that run (or None).
        should_stop: stop check passed to each run; when it asks, `Stopped` is raised and the
            finished runs stay on disk for the next call.
    """
    from core.contract.progress import never_stop, no_progress
    from core.data import load_dataset
    from core.device import resolve_device
    from core.models import load_model
    from core.training import train

    should_stop = should_stop or never_stop
    rows, jobs = [], [(v, s) for s in seeds for v in variants]
    for i, (variant, seed) in enumerate(jobs):
        folder = run_folder(out_root, variant, seed)
        report = (run_progress(i, len(jobs), variant.label, seed) if run_progress else None) or no_progress
        eval_path = folder / "eval.json"
        done = json.loads(eval_path.read_text()) if eval_path.is_file() else {}
        if done.get("protocol") != base.protocol.model_dump(mode="json"):
            spec = base.model_copy(
                update={
                    "seed": seed,
                    "data": base.data.model_copy(update={"seed": seed}),
                    "model": base.model.model_copy(update={"activation": variant.activation}),
                    "method": variant.method,
                }
            )
            spec = with_changes(spec, variant.changes)
            ds = load_dataset(spec.data)
            result = train(spec, folder, dataset=ds, progress=report, should_stop=should_stop)
            model = load_model(folder, device=resolve_device(spec.device), channels_last=True)
            row = {"variant": variant.label, "seed": seed, **evaluate_arm(model, ds, base.protocol)}
            row["chosen"] = result.chosen  # which weights were evaluated (None: the last epoch's)
            row["train_seconds"] = sum(r["epoch_seconds"] for r in result.history)
            eval_path.write_text(json.dumps(row, indent=1))
        rows.append({**json.loads(eval_path.read_text()), "variant": variant.label})  # a folder shared by studies
    return rows
