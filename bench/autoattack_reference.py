"""robustlab's `standard` and `rand` protocols against the reference AutoAttack code (Croce & Hein,
github.com/fra31/auto-attack) and torchattacks' AutoAttack on the same checkpoint and the same
Fashion-MNIST test images (L∞ ε = 0.1 unless `--norm`/`--eps` say otherwise), side by side in one
run. Neither oracle enters this repository: give the folder that holds the reference's
`autoattack` package, and optionally a folder holding `torchattacks` (`pip install --no-deps
--target DIR torchattacks`: its wheel asks for torchvision, which would pull a CUDA torch; it
imports without it).

1. `standard` on the deterministic model: APGD-CE, APGD-T (9 targets), FAB-T (9 targets), Square,
   each on the points still standing, on every side.
2. `rand` on the same model behind Gaussian input noise (σ = 0.15, a randomized model): APGD-CE
   and APGD-DLR with EOT, every point run for all iterations (robustlab and the reference).

Every side's adversarial points are judged the same way: a point is robust when the model gets it
right (for the noisy model, in most of 15 passes and in the first, `core.attacks.judge.counted_wrong`);
each oracle's point judged in one pass is reported beside, and the reference's own number (what it
prints: its clean pass and one pass after each attack). Target: robustlab never above an oracle by
more than 0.5 points, by any of these.

robustlab attacks the model as its evaluation job loads it (`core.jobs.model_cache`: weights in
channels_last); the reference is run twice, on the checkpoint as a PyTorch user loads it (plain
NCHW weights) and on robustlab's channels_last copy, so the time ratio says how much comes from the
memory format and how much from the attacks; torchattacks on the plain model. The sides take turns
on chunks of `--chunk` images (every side the same chunks, so the same batches), so a load on the
machine falls on each alike. Times include each side's clean pass and, per attack, the seconds
until it finished.

    .venv/bin/python -m bench.autoattack_reference --reference /path/to/auto-attack \
        [--torchattacks DIR] [--checkpoint DIR] [--images 500] [--chunk 100] [--steps 100] \
        [--queries 5000] [--eot 20] [--sigma 0.15] [--norm linf|l2] [--eps 0.1] [--protocols standard,rand]

Writes bench/results/autoattack_reference.json (or `--out`). Lower --steps/--queries/--eot on a CPU: every
side gets the same reduced settings, and the JSON says which.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

import torch

from bench.common import fashion_data, machine, trained_model
from core.attacks.judge import JUDGE_PASSES, counted_wrong
from core.contract.attack_specs import ProtocolSpec
from core.evaluation import attack_in_order
from core.evaluation.curve import wrong_in_expectation
from core.models.noisy import NoisyInput

OUT = Path("bench/results/autoattack_reference.json")
REFERENCE_NORMS = {"linf": "Linf", "l2": "L2"}


class Timeline:
    """Seconds since start at each of `mark`'s calls, by name: when each attack finished."""

    def __init__(self):
        self.start, self.marks, self.reported = time.perf_counter(), {}, None

    def mark(self, name: str) -> None:
        self.marks[name] = time.perf_counter() - self.start

    def log(self, line: str) -> None:  # the reference's logger: "robust accuracy after APGD-CE: 51.00% ..."
        if line.startswith("robust accuracy after "):
            attack, rest = line.removeprefix("robust accuracy after ").split(":", 1)
            self.mark(attack.lower())
            self.reported = float(rest.strip().split("%")[0]) / 100  # its own number, after its last attack


def robustlab_side(protocol: ProtocolSpec, randomized: bool):
    passes = JUDGE_PASSES if randomized else 1

    def run(model, x, y, timeline: Timeline, chunk: int) -> dict:
        torch.manual_seed(protocol.seed + chunk)
        clean = ~wrong_in_expectation(model, x, y, passes, 256)
        robust, _ = attack_in_order(
            model,
            x,
            y,
            protocol.attack_specs(),
            clean,
            every_iteration=randomized,
            judge_passes=passes,
            on_attack_done=lambda i, label, mask: timeline.mark(label),
        )
        return {"robust": robust, "clean": clean}

    return run


def reference_side(version: str, args, randomized: bool):
    def run(model, x, y, timeline: Timeline, chunk: int) -> dict:
        from autoattack import AutoAttack

        norm = REFERENCE_NORMS[args.norm]
        adversary = AutoAttack(model, norm=norm, eps=args.eps, version=version, seed=chunk, verbose=True, device="cpu")
        adversary.logger = timeline  # verbose only for its per-attack lines; the attacks stay quiet
        adversary.apgd.n_iter = adversary.apgd_targeted.n_iter = adversary.fab.n_iter = args.steps
        adversary.square.n_queries = args.queries
        if randomized:
            adversary.apgd.eot_iter = args.eot
        return {"x_adv": adversary.run_standard_evaluation(x, y, bs=256)}

    return run


def torchattacks_side(args):
    """torchattacks' AutoAttack, standard version, at the same budgets (its attacks' own fields)."""

    def run(model, x, y, timeline: Timeline, chunk: int) -> dict:
        import torchattacks

        norm = REFERENCE_NORMS[args.norm]
        adversary = torchattacks.AutoAttack(model, norm=norm, eps=args.eps, n_classes=10, seed=chunk)
        for attack in adversary._autoattack.attacks:  # APGD, APGDT, FAB, Square: the budgets are theirs to set
            if hasattr(attack, "steps"):
                attack.steps = args.steps
            if hasattr(attack, "n_queries"):
                attack.n_queries = args.queries
        return {"x_adv": adversary(x, y)}

    return run


def judged(model, x, x_adv, y, randomized: bool, args) -> tuple[torch.Tensor, torch.Tensor]:
    """An oracle's adversarial points judged as robustlab judges its own, and in one pass."""
    flat = (x_adv - x).flatten(1)
    size = flat.abs().amax(1) if args.norm == "linf" else flat.norm(dim=1)
    assert size.max() <= args.eps + 1e-4, f"an oracle left the {args.norm} ball: {size.max():.5f}"
    passes = JUDGE_PASSES if randomized else 1
    with torch.no_grad():
        robust = ~counted_wrong(model.eval(), x_adv, y, passes)
        one_pass = model(x_adv).argmax(1) == y
    return robust, one_pass


def compare(sides: dict, x, y, args, randomized: bool) -> dict:
    """Every side on every chunk of images, the sides taking turns; totals per side."""
    out = {
        name: {"robust": [], "one_pass": [], "clean": [], "reported": [], "seconds": 0.0, "per_attack": {}}
        for name in sides
    }
    for k, start in enumerate(range(0, len(x), args.chunk)):
        xb, yb = x[start : start + args.chunk], y[start : start + args.chunk]
        for name, (run, model) in sides.items():
            timeline = Timeline()
            result = run(model, xb, yb, timeline, k)
            out[name]["seconds"] += time.perf_counter() - timeline.start
            previous = 0.0
            for attack, at in timeline.marks.items():  # seconds each attack took, its clean pass in the first
                out[name]["per_attack"][attack] = out[name]["per_attack"].get(attack, 0.0) + at - previous
                previous = at
            if "x_adv" in result:
                robust, one_pass = judged(model, xb, result["x_adv"], yb, randomized, args)
                out[name]["one_pass"].append(one_pass)
                if timeline.reported is not None:  # the reference's own number, weighted by the chunk's images
                    out[name]["reported"].append(torch.full((len(xb),), timeline.reported))
            else:
                robust = result["robust"]
                out[name]["clean"].append(result["clean"])
            out[name]["robust"].append(robust)
    for side in out.values():
        for masks, key in (
            ("robust", "robust_acc"),
            ("one_pass", "robust_acc_one_pass"),
            ("reported", "robust_acc_reported"),
            ("clean", "clean_acc"),
        ):
            if side[masks]:  # robustlab reports its clean mask, the oracles their single-pass one
                side[key] = torch.cat(side[masks]).float().mean().item()
            del side[masks]
    return out


def summarise(run: dict) -> None:
    ours = run["robustlab"]
    for oracle in [name for name in run if name != "robustlab" and isinstance(run[name], dict)]:
        theirs = [
            run[oracle][k] for k in ("robust_acc", "robust_acc_one_pass", "robust_acc_reported") if k in run[oracle]
        ]
        gap = ours["robust_acc"] - min(theirs)  # against the oracle's lowest way of counting
        ratio = run[oracle]["seconds"] / ours["seconds"]
        run[f"robustlab_minus_{oracle}_points"] = round(100 * gap, 2)
        run[f"within_target_of_{oracle}"] = gap <= 0.005
        run[f"time_ratio_{oracle}_over_robustlab"] = round(ratio, 3)
        print(f"robustlab − {oracle} = {100 * gap:+.2f} points, time ratio {ratio:.2f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", required=True, help="folder holding the reference's autoattack package")
    parser.add_argument("--torchattacks", default=None, help="folder holding the torchattacks package (optional)")
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--chunk", type=int, default=100, help="images per turn of each side")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--queries", type=int, default=5000)
    parser.add_argument("--eot", type=int, default=20)
    parser.add_argument("--sigma", type=float, default=0.15)
    parser.add_argument("--norm", choices=list(REFERENCE_NORMS), default="linf")
    parser.add_argument("--eps", type=float, default=0.1)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--protocols", default="standard,rand", help="which to run, comma-separated")
    args = parser.parse_args()
    protocols = set(args.protocols.split(","))
    for folder in filter(None, (args.reference, args.torchattacks)):
        sys.path.insert(0, str(Path(folder).resolve()))
    plain = trained_model(args.checkpoint).eval()  # as a PyTorch user loads the checkpoint
    as_the_job = copy.deepcopy(plain).to(memory_format=torch.channels_last)  # as core.jobs.model_cache does
    ds = fashion_data(args.images)
    x, y = ds.x_test[: args.images], ds.y_test[: args.images]
    common = {"norm": args.norm, "eps": args.eps, "images": args.images, "steps": args.steps, "queries": args.queries}
    out = {"machine": machine(), "settings": {**vars(args), "out": str(args.out)}, "runs": {}}

    standard = {
        "robustlab": (robustlab_side(ProtocolSpec(ensemble="standard", **common), False), as_the_job),
        "reference": (reference_side("standard", args, False), plain),
        "reference_channels_last": (reference_side("standard", args, False), as_the_job),
    }
    if args.torchattacks:
        standard["torchattacks"] = (torchattacks_side(args), plain)
    if "standard" in protocols:
        out["runs"]["standard"] = compare(standard, x, y, args, randomized=False)
        print("standard:", json.dumps(out["runs"]["standard"]), flush=True)
        summarise(out["runs"]["standard"])

    rand = ProtocolSpec(ensemble="rand", eot=args.eot, **{k: v for k, v in common.items() if k != "queries"})
    noisy_plain, noisy_job = (NoisyInput(m, args.sigma).eval() for m in (plain, as_the_job))
    randomized = {
        "robustlab": (robustlab_side(rand, True), noisy_job),
        "reference": (reference_side("rand", args, True), noisy_plain),
        "reference_channels_last": (reference_side("rand", args, True), noisy_job),
    }
    if "rand" in protocols:
        out["runs"]["rand"] = {**compare(randomized, x, y, args, randomized=True), "sigma": args.sigma}
        print("rand:", json.dumps(out["runs"]["rand"]), flush=True)
        summarise(out["runs"]["rand"])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
