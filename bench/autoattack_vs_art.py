"""robustlab's AutoAttack-grade evaluation against ART's, on the same checkpoint and the same
Fashion-MNIST test images (L∞, ε = 0.1), one run each, side by side:

1. APGD-CE alone, 100 iterations, 1 restart: robustlab's `apgd-ce` against ART's
   AutoProjectedGradientDescent (cross-entropy, initial step 2ε as in the paper). Target: within
   1 point of each other.
2. The ensembles: robustlab's `standard` protocol (APGD-CE, APGD-T with 9 targets, Square 5,000
   queries) against ART's AutoAttack given APGD-CE, APGD-DLR and Square (1 restart each, 100
   iterations, 5,000 queries): the closest configuration ART allows. What differs: ART's DLR
   member is untargeted (robustlab runs 9 targeted DLR runs, more work), and ART attacks each point
   with every attack while robustlab only attacks the points still standing. Targets: robustlab's
   robust accuracy at most ART's + 0.5 points, and at least 3× faster.
3. `--art-default`: also ART's AutoAttack at its defaults (5 restarts of APGD-CE and APGD-DLR,
   DeepFool, 5 restarts of Square): the strongest ART offers, and the slowest.

    .venv/bin/python -m bench.autoattack_vs_art --checkpoint runs/study-sat-cpu/relu/seed0 [--images 1000]

Writes bench/results/autoattack_vs_art.json.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import time
from pathlib import Path

import numpy as np
import torch

from bench.common import fashion_data, machine, trained_model
from core.attacks import build_attack
from core.contract.specs import AttackSpec, ProtocolSpec
from core.evaluation import accuracy, evaluate

EPS = 0.1
OUT = Path("bench/results/autoattack_vs_art.json")


def art_classifier(model):
    from art.estimators.classification import PyTorchClassifier

    return PyTorchClassifier(
        model=copy.deepcopy(model),
        loss=torch.nn.CrossEntropyLoss(),
        input_shape=(1, 28, 28),
        nb_classes=10,
        clip_values=(0.0, 1.0),
        device_type="cpu",
    )


def art_apgd(clf, loss: str, restarts: int = 1):
    from art.attacks.evasion import AutoProjectedGradientDescent

    return AutoProjectedGradientDescent(
        clf,
        norm=np.inf,
        eps=EPS,
        eps_step=2 * EPS,
        max_iter=100,
        targeted=False,
        nb_random_init=restarts,
        batch_size=256,
        loss_type=loss,
        verbose=False,
    )


def art_square(clf, restarts: int = 1):
    from art.attacks.evasion import SquareAttack

    return SquareAttack(
        clf, norm=np.inf, max_iter=5000, eps=EPS, p_init=0.8, nb_restarts=restarts, batch_size=1000, verbose=False
    )


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def robust(model, x_adv: np.ndarray | torch.Tensor, y) -> float:
    x_adv = torch.as_tensor(np.asarray(x_adv), dtype=torch.float32)
    return accuracy(model, x_adv, y)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--checkpoint", help="classifier checkpoint folder (default: train the cpu preset's)")
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--art-default", action="store_true", help="also ART's AutoAttack at its defaults")
    args = parser.parse_args()
    logging.getLogger("art").setLevel(logging.WARNING)
    from art.attacks.evasion import AutoAttack

    model = trained_model(args.checkpoint)
    ds = fashion_data(n_test=args.images)
    x, y = ds.x_test, ds.y_test
    x_np, y_np = x.numpy(), y.numpy()
    rows = {"clean": {"robust_acc": accuracy(model, x, y), "seconds": 0.0}}

    torch.manual_seed(0)
    ours, t = timed(
        lambda: torch.cat(
            [
                build_attack(AttackSpec(name="apgd-ce", eps=EPS, steps=100))(model, x[i : i + 256], y[i : i + 256])
                for i in range(0, len(x), 256)
            ]
        )
    )
    rows["robustlab apgd-ce (100 it, 1 restart)"] = {"robust_acc": robust(model, ours, y), "seconds": t}
    clf = art_classifier(model)
    adv, t = timed(lambda: art_apgd(clf, "cross_entropy").generate(x=x_np, y=y_np))
    rows["ART AutoProjectedGradientDescent CE (100 it, 1 restart)"] = {
        "robust_acc": robust(model, adv, y),
        "seconds": t,
    }

    protocol = ProtocolSpec(eps=EPS, images=len(x))
    result, t = timed(lambda: evaluate(model, x, y, protocol, num_classes=10))
    rows["robustlab standard (apgd-ce, apgd-t x9, square 5000)"] = {
        "robust_acc": result["robust_acc"],
        "seconds": t,
        "breakdown": result["breakdown"],
    }
    close = AutoAttack(
        clf,
        norm=np.inf,
        eps=EPS,
        eps_step=2 * EPS,
        batch_size=256,
        attacks=[art_apgd(clf, "cross_entropy"), art_apgd(clf, "difference_logits_ratio"), art_square(clf)],
    )
    adv, t = timed(lambda: close.generate(x=x_np, y=y_np))
    rows["ART AutoAttack (apgd-ce, apgd-dlr, square 5000; 1 restart each)"] = {
        "robust_acc": robust(model, adv, y),
        "seconds": t,
    }
    if args.art_default:
        strongest = AutoAttack(clf, norm=np.inf, eps=EPS, eps_step=2 * EPS, batch_size=256)
        adv, t = timed(lambda: strongest.generate(x=x_np, y=y_np))
        rows["ART AutoAttack (defaults: 5 restarts, DeepFool, square x5)"] = {
            "robust_acc": robust(model, adv, y),
            "seconds": t,
        }

    report = {"machine": machine(), "checkpoint": args.checkpoint, "images": len(x), "eps": EPS, "rows": rows}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(report, indent=1))
    print(f"Machine: {machine()}\n\n| run | robust accuracy | seconds |\n|---|---|---|")
    for name, r in rows.items():
        print(f"| {name} | {100 * r['robust_acc']:.1f} % | {r['seconds']:.0f} |")


if __name__ == "__main__":
    main()
