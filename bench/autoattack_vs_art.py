"""robustlab's AutoAttack-grade evaluation against ART's, on the same checkpoint and the same
Fashion-MNIST test images (L∞, ε = 0.1), one run each, side by side:

1. APGD-CE alone, 100 iterations, 1 restart: robustlab's `apgd-ce` against ART's
   AutoProjectedGradientDescent (cross-entropy, initial step 2ε as in the paper). Target: within
   1 point of each other.
2. The ensembles: robustlab's `standard` protocol (APGD-CE, APGD-T with 9 targets, Square 5,000
   queries), each attack only on the points still standing, against
   - ART's AutoAttack given APGD-CE, APGD-DLR and Square (1 restart each, 100 iterations, 5,000
     queries). ART's AutoAttack also attacks only the points still standing, but after the three
     untargeted runs it runs every member that takes a target again, targeted at each of the 9
     other classes: APGD-CE ×9 and APGD-DLR ×9 more. More work than robustlab's sequence, and
     ART offers no switch to leave it out;
   - the same work as robustlab's sequence built from ART's attacks by hand (`art_sequence`):
     APGD-CE, APGD-DLR targeted at the 9 most likely wrong classes, Square, each on the points
     still standing. This is the like-for-like time.
   Targets: robustlab's robust accuracy at most ART's AutoAttack's + 0.5 points, and at least 3×
   faster than ART on the same work.
3. `--art-default`: also ART's AutoAttack at its defaults (5 restarts of APGD-CE and APGD-DLR,
   DeepFool, 5 restarts of Square): the strongest ART offers, and the slowest.

    .venv/bin/python -m bench.autoattack_vs_art --checkpoint runs/study-sat-cpu/relu/seed0 [--images 1000] [--resume]

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
from core.contract.attack_specs import AttackSpec, ProtocolSpec
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


def measured(model, y, attack) -> dict:
    """Run `attack()` (adversarial images), timed; the model's accuracy on its output."""
    adv, t = timed(attack)
    return {"robust_acc": robust(model, adv, y), "seconds": t}


def ours_apgd_ce(model, x, y) -> dict:
    attack = build_attack(AttackSpec(name="apgd-ce", eps=EPS, steps=100))
    return measured(
        model, y, lambda: torch.cat([attack(model, x[i : i + 256], y[i : i + 256]) for i in range(0, len(x), 256)])
    )


def ours_standard(model, x, y) -> dict:
    result, t = timed(lambda: evaluate(model, x, y, ProtocolSpec(eps=EPS, images=len(x)), num_classes=10))
    return {"robust_acc": result.robust_acc, "seconds": t, "breakdown": result.model_dump()["breakdown"]}


def art_autoattack(clf, close: bool):
    """ART's AutoAttack: given our members (`close`), or at its defaults. Either way it runs each
    member untargeted, then again targeted at every other class (the members that take a target),
    on the points still standing."""
    from art.attacks.evasion import AutoAttack

    if not close:
        return AutoAttack(clf, norm=np.inf, eps=EPS, eps_step=2 * EPS, batch_size=256)
    members = [art_apgd(clf, "cross_entropy"), art_apgd(clf, "difference_logits_ratio"), art_square(clf)]
    return AutoAttack(clf, norm=np.inf, eps=EPS, eps_step=2 * EPS, batch_size=256, attacks=members)


def art_sequence(clf, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """robustlab's `standard` sequence built from ART's attacks: APGD-CE, APGD-DLR targeted at each
    of the 9 most likely wrong classes, Square; each only on the points still standing."""
    logits = clf.predict(x)
    adv, standing = x.copy(), logits.argmax(1) == y
    logits[np.arange(len(y)), y] = -np.inf
    wrong_by_likelihood = np.argsort(-logits, axis=1)[:, :9]

    def attack_standing(attack, labels: np.ndarray) -> None:
        idx = np.flatnonzero(standing)
        if len(idx):
            out = attack.generate(x=x[idx], y=labels[idx])
            broken = clf.predict(out).argmax(1) != y[idx]
            adv[idx[broken]], standing[idx[broken]] = out[broken], False

    attack_standing(art_apgd(clf, "cross_entropy"), y)
    targeted = art_apgd(clf, "difference_logits_ratio")
    targeted.set_params(targeted=True)
    for k in range(9):
        attack_standing(targeted, wrong_by_likelihood[:, k])
    attack_standing(art_square(clf), y)
    return adv


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--checkpoint", help="classifier checkpoint folder (default: train the cpu preset's)")
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--art-default", action="store_true", help="also ART's AutoAttack at its defaults")
    parser.add_argument("--resume", action="store_true", help="keep the rows already in the report; run the others")
    args = parser.parse_args()
    logging.getLogger("art").setLevel(logging.WARNING)
    model = trained_model(args.checkpoint)
    ds = fashion_data(n_test=args.images)
    x, y = ds.x_test, ds.y_test
    x_np, y_np = x.numpy(), y.numpy()
    clf = art_classifier(model)
    runs = {
        "clean": lambda: {"robust_acc": accuracy(model, x, y), "seconds": 0.0},
        "robustlab apgd-ce (100 it, 1 restart)": lambda: ours_apgd_ce(model, x, y),
        "ART AutoProjectedGradientDescent CE (100 it, 1 restart)": lambda: measured(
            model, y, lambda: art_apgd(clf, "cross_entropy").generate(x=x_np, y=y_np)
        ),
        "robustlab standard (apgd-ce, apgd-t x9, square 5000)": lambda: ours_standard(model, x, y),
        "ART, robustlab's sequence by hand (apgd-ce, apgd-dlr targeted x9, square 5000)": lambda: measured(
            model, y, lambda: art_sequence(clf, x_np, y_np)
        ),
        "ART AutoAttack (apgd-ce, apgd-dlr, square 5000; 1 restart each)": lambda: measured(
            model, y, lambda: art_autoattack(clf, close=True).generate(x=x_np, y=y_np)
        ),
    }
    if args.art_default:
        runs["ART AutoAttack (defaults: 5 restarts, DeepFool, square x5)"] = lambda: measured(
            model, y, lambda: art_autoattack(clf, close=False).generate(x=x_np, y=y_np)
        )
    report = {"machine": machine(), "checkpoint": args.checkpoint, "images": len(x), "eps": EPS, "rows": {}}
    if args.resume and OUT.is_file():
        kept = json.loads(OUT.read_text())
        if (kept["checkpoint"], kept["images"]) == (args.checkpoint, len(x)):
            report["rows"] = kept["rows"]
    rows = report["rows"]
    for name, run in runs.items():
        if name in rows:
            continue
        torch.manual_seed(0)
        rows[name] = run()
        print(f"{name}: {100 * rows[name]['robust_acc']:.1f} % in {rows[name]['seconds']:.0f} s", flush=True)
        OUT.parent.mkdir(parents=True, exist_ok=True)
        OUT.write_text(json.dumps(report, indent=1))  # after each row: a crash later loses nothing measured

    print(f"\nMachine: {machine()}\n\n| run | robust accuracy | seconds |\n|---|---|---|")
    for name, r in rows.items():
        print(f"| {name} | {100 * r['robust_acc']:.1f} % | {r['seconds']:.0f} |")


if __name__ == "__main__":
    main()
