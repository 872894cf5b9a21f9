"""The seed paper's comparison (Xie et al., "Smooth Adversarial Training"): one PGD-AT recipe,
the same model with each activation and with the ReLU-forward / smooth-backward probes, several
seeds, all evaluated with the same attacks; clean and robust accuracy as mean ± std.

Every run lives in `out_root/<variant>/seed<k>/`; training resumes from its checkpoint and a
finished evaluation (`eval.json`) is reused, so an interrupted study continues where it stopped.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass
from pathlib import Path

from core.contract.names import ACTIVATIONS, PROBE_PHASES
from core.contract.specs import ActivationSpec, AttackSpec, TrainSpec

# Softplus in its parametric form with β = 10, the same sharpness as the probe's backward pass.
STUDY_PARAMS = {"softplus": {"beta": 10.0}}


@dataclass(frozen=True)
class Variant:
    label: str
    activation: ActivationSpec


def sat_variants(activations=ACTIVATIONS, probes=PROBE_PHASES) -> list[Variant]:
    """The study's arms: each activation, then ReLU with a smooth backward in each probe phase."""
    arms = [Variant(a, ActivationSpec(name=a, **STUDY_PARAMS.get(a, {}))) for a in activations]
    for p in probes:
        act = ActivationSpec(name="relu", probe=p)
        arms.append(Variant(act.label, act))
    return arms


def study_attacks(eps: float) -> list[AttackSpec]:
    """The attacks every arm is evaluated with: FGSM and PGD-20 (L∞) at `eps`."""
    return [AttackSpec(name="fgsm", eps=eps, random_start=False), AttackSpec(eps=eps, steps=20)]


def run_folder(out_root: Path, variant: Variant, seed: int) -> Path:
    return out_root / variant.label.replace("+", "_").replace("(", "_").replace(")", "") / f"seed{seed}"


def summarise(rows: list[dict]) -> list[dict]:
    """Mean ± std (sample std over seeds) of clean and robust accuracy per variant, in arm order."""
    table = []
    for label in dict.fromkeys(r["variant"] for r in rows):
        mine = [r for r in rows if r["variant"] == label]
        entry = {"variant": label, "seeds": len(mine)}
        for key in ("clean_acc", "robust_acc"):
            values = [r[key] for r in mine]
            entry[key] = statistics.fmean(values)
            entry[f"{key}_std"] = statistics.stdev(values) if len(values) > 1 else 0.0
        table.append(entry)
    return table


def format_table(table: list[dict], attack_note: str) -> str:
    """A Markdown table of the summary."""
    lines = [f"| variant | seeds | clean accuracy | robust accuracy ({attack_note}) |", "|---|---|---|---|"]
    for e in table:
        lines.append(
            f"| {e['variant']} | {e['seeds']} | {100 * e['clean_acc']:.1f} ± {100 * e['clean_acc_std']:.1f} "
            f"| {100 * e['robust_acc']:.1f} ± {100 * e['robust_acc_std']:.1f} |"
        )
    return "\n".join(lines)


def run_sat_study(
    base: TrainSpec, seeds: list[int], out_root: Path, variants: list[Variant], *, run_progress=None, should_stop=None
) -> list[dict]:
    """Train and evaluate every (variant, seed); returns one row per run.

    Args:
        base: the PGD-AT recipe; its activation and seeds are replaced per run.
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
    from core.evaluation import robustness_curve
    from core.models import load_model
    from core.training import train

    should_stop = should_stop or never_stop
    eps = base.eval_attack.eps
    attacks = study_attacks(eps)
    rows, jobs = [], [(v, s) for s in seeds for v in variants]
    for i, (variant, seed) in enumerate(jobs):
        folder = run_folder(out_root, variant, seed)
        report = (run_progress(i, len(jobs), variant.label, seed) if run_progress else None) or no_progress
        eval_path = folder / "eval.json"
        if not eval_path.is_file():
            spec = base.model_copy(
                update={
                    "seed": seed,
                    "data": base.data.model_copy(update={"seed": seed}),
                    "model": base.model.model_copy(update={"activation": variant.activation}),
                }
            )
            ds = load_dataset(spec.data)
            train(spec, folder, dataset=ds, progress=report, should_stop=should_stop)
            model = load_model(folder, device=resolve_device(spec.device), channels_last=True)
            ev = robustness_curve(model, ds.x_test, ds.y_test, attacks, [eps], num_classes=ds.num_classes)
            point = next(p for p in ev["curve"] if p["eps"] == eps)
            eval_path.write_text(
                json.dumps(
                    {
                        "variant": variant.label,
                        "seed": seed,
                        "clean_acc": ev["clean_acc"],
                        "robust_acc": point["robust_acc"],
                        "per_attack": point["per_attack"],
                        "warnings": ev["warnings"],
                    },
                    indent=1,
                )
            )
        rows.append(json.loads(eval_path.read_text()))
    return rows
