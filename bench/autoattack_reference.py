"""robustlab's `standard` and `rand` protocols against the reference AutoAttack code (Croce & Hein,
github.com/fra31/auto-attack) and torchattacks' AutoAttack on the same checkpoint and the same
Fashion-MNIST test images, L∞ ε = 0.1, side by side in one run. Neither oracle enters this
repository: give the folder that holds the reference's `autoattack` package, and optionally a
folder holding `torchattacks` (`pip install --no-deps --target DIR torchattacks`: its wheel asks
for torchvision, which would pull a CUDA torch; it imports without it).

1. `standard` on the deterministic model: APGD-CE, APGD-T (9 targets), FAB-T (9 targets), Square,
   each on the points still standing, on every side.
2. `rand` on the same model behind Gaussian input noise (σ = 0.15, a randomized model): APGD-CE
   and APGD-DLR with EOT, every point run for all iterations (robustlab and the reference).

Every side's adversarial points are judged the same way: a point is robust when the model gets it
right (for the noisy model, in most of 15 passes, `core.attacks.judge`); each oracle's own number
(one pass) is reported beside. Target: robustlab never above an oracle by more than 0.5 points.
Times are the attacks' alone, measured in the same run (ratio oracle / robustlab).

    .venv/bin/python -m bench.autoattack_reference --reference /path/to/auto-attack \
        [--torchattacks DIR] [--checkpoint DIR] [--images 500] [--steps 100] [--queries 5000] \
        [--eot 20] [--sigma 0.15]

Writes bench/results/autoattack_reference.json. Lower --steps/--queries/--eot on a CPU: every
side gets the same reduced settings, and the JSON says which.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from bench.common import fashion_data, machine, trained_model
from core.attacks.judge import JUDGE_PASSES, misclassified
from core.contract.specs import ProtocolSpec
from core.evaluation import attack_in_order
from core.evaluation.curve import wrong_in_expectation
from core.models.noisy import NoisyInput

EPS = 0.1
OUT = Path("bench/results/autoattack_reference.json")


def robustlab_run(model, x, y, protocol: ProtocolSpec, randomized: bool) -> dict:
    passes = JUDGE_PASSES if randomized else 1
    torch.manual_seed(protocol.seed)
    clean = ~wrong_in_expectation(model, x, y, passes, 256)
    t0 = time.perf_counter()
    robust, _ = attack_in_order(
        model, x, y, protocol.attack_specs(), clean, every_iteration=randomized, judge_passes=passes
    )
    return {
        "robust_acc": robust.float().mean().item(),
        "clean_acc": clean.float().mean().item(),
        "seconds": time.perf_counter() - t0,
        "attacks": [a.label for a in protocol.attack_specs()],
    }


def judged(model, x, x_adv, y, seconds: float, randomized: bool, attacks: list[str]) -> dict:
    """An oracle's adversarial points judged as robustlab judges its own."""
    assert (x_adv - x).abs().max() <= EPS + 1e-5
    passes = JUDGE_PASSES if randomized else 1
    with torch.no_grad():
        robust = (~misclassified(model.eval(), x_adv, y, passes)).float().mean().item()
        one_pass = (model(x_adv).argmax(1) == y).float().mean().item()
    return {"robust_acc": robust, "robust_acc_one_pass": one_pass, "seconds": seconds, "attacks": attacks}


def reference_run(model, x, y, version: str, args, randomized: bool) -> dict:
    from autoattack import AutoAttack

    adversary = AutoAttack(model, norm="Linf", eps=EPS, version=version, seed=0, verbose=False, device="cpu")
    adversary.apgd.n_iter = adversary.apgd_targeted.n_iter = adversary.fab.n_iter = args.steps
    adversary.square.n_queries = args.queries
    if randomized:
        adversary.apgd.eot_iter = args.eot
    t0 = time.perf_counter()
    x_adv = adversary.run_standard_evaluation(x, y, bs=256)
    return judged(model, x, x_adv, y, time.perf_counter() - t0, randomized, adversary.attacks_to_run)


def torchattacks_run(model, x, y, args) -> dict:
    """torchattacks' AutoAttack, standard version, at the same budgets (its attacks' own fields)."""
    import torchattacks

    adversary = torchattacks.AutoAttack(model, norm="Linf", eps=EPS, version="standard", n_classes=10, seed=0)
    attacks = adversary._autoattack.attacks  # APGD, APGDT, FAB, Square: the budgets are theirs to set
    for attack in attacks:
        if hasattr(attack, "steps"):
            attack.steps = args.steps
        if hasattr(attack, "n_queries"):
            attack.n_queries = args.queries
    t0 = time.perf_counter()
    x_adv = torch.cat([adversary(x[i : i + 256], y[i : i + 256]) for i in range(0, len(x), 256)])
    return judged(model, x, x_adv, y, time.perf_counter() - t0, False, [type(a).__name__ for a in attacks])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", required=True, help="folder holding the reference's autoattack package")
    parser.add_argument("--torchattacks", default=None, help="folder holding the torchattacks package (optional)")
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--images", type=int, default=500)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--queries", type=int, default=5000)
    parser.add_argument("--eot", type=int, default=20)
    parser.add_argument("--sigma", type=float, default=0.15)
    args = parser.parse_args()
    for folder in filter(None, (args.reference, args.torchattacks)):
        sys.path.insert(0, str(Path(folder).resolve()))
    torch.set_num_threads(max(torch.get_num_threads(), 1))
    model = trained_model(args.checkpoint).eval()
    ds = fashion_data(args.images)
    x, y = ds.x_test[: args.images], ds.y_test[: args.images]
    common = {"eps": EPS, "images": args.images, "steps": args.steps, "queries": args.queries}
    out = {"machine": machine(), "settings": {**vars(args), "eps": EPS}, "runs": {}}

    standard = ProtocolSpec(ensemble="standard", **common)
    ours = robustlab_run(model, x, y, standard, randomized=False)
    ref = reference_run(model, x, y, "standard", args, randomized=False)
    out["runs"]["standard"] = {"robustlab": ours, "reference": ref}
    if args.torchattacks:
        out["runs"]["standard"]["torchattacks"] = torchattacks_run(model, x, y, args)
    print(json.dumps(out["runs"]["standard"]), flush=True)

    noisy = NoisyInput(model, args.sigma).eval()
    rand = ProtocolSpec(ensemble="rand", eot=args.eot, **{k: v for k, v in common.items() if k != "queries"})
    ours = robustlab_run(noisy, x, y, rand, randomized=True)
    ref = reference_run(noisy, x, y, "rand", args, randomized=True)
    out["runs"]["rand"] = {"robustlab": ours, "reference": ref, "sigma": args.sigma}
    print(json.dumps(out["runs"]["rand"]), flush=True)

    for name, run in out["runs"].items():
        for oracle in ("reference", "torchattacks"):
            if oracle not in run:
                continue
            gap = run["robustlab"]["robust_acc"] - run[oracle]["robust_acc"]
            ratio = run[oracle]["seconds"] / run["robustlab"]["seconds"]
            run[f"robustlab_minus_{oracle}_points"] = round(100 * gap, 2)
            run[f"within_target_of_{oracle}"] = gap <= 0.005
            run[f"time_ratio_{oracle}_over_robustlab"] = ratio
            print(f"{name}: robustlab − {oracle} = {100 * gap:+.2f} points, time ratio {ratio:.2f}")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
