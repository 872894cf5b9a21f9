"""One epoch of PGD adversarial training (PGD-7, L∞, ε = 0.1, α = 2.5ε/7, random start, SGD,
batch 128) on the same 2,000 Fashion-MNIST images and the same initial model: robustlab's
`train` against ART's AdversarialTrainerMadryPGD, side by side in one run.

robustlab's epoch includes what it always does: writing the checkpoint and a (one-image,
one-step) held-out evaluation.

    .venv/bin/python bench/adv_training_vs_art.py [--repeats 3] [--n 2000]
"""

from __future__ import annotations

import argparse
import logging
import tempfile

import torch

from bench.common import fashion_data, fashion_model, machine, report, time_interleaved
from core.contract.attack_specs import AttackSpec
from core.contract.specs import DataSpec, ModelSpec, OptimSpec, TrainSpec
from core.training import train

EPS, STEPS, BATCH = 0.1, 7, 128
ALPHA = 2.5 * EPS / STEPS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--n", type=int, default=2000)
    args = parser.parse_args()
    logging.getLogger("art").setLevel(logging.WARNING)
    from art.defences.trainer import AdversarialTrainerMadryPGD
    from art.estimators.classification import PyTorchClassifier

    ds = fashion_data(n_test=1, n_train=args.n)
    init = fashion_model().state_dict()
    spec = TrainSpec(
        data=DataSpec(name="fashion-mnist", train_subset=args.n, test_subset=1),
        method="pgd",
        epochs=1,
        batch_size=BATCH,
        model=ModelSpec(width=16),
        attack=AttackSpec(eps=EPS, steps=STEPS, step_size=ALPHA),
        eval_attack=AttackSpec(eps=EPS, steps=1),
        eval_subset=1,
        optim=OptimSpec(name="sgd", lr=0.01, momentum=0.9, weight_decay=0.0, schedule="constant"),
    )

    def ours():
        with tempfile.TemporaryDirectory() as d:
            train(spec, d, dataset=ds, resume=False)

    def art():
        model = fashion_model()
        model.load_state_dict(init)
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        clf = PyTorchClassifier(
            model=model,
            loss=torch.nn.CrossEntropyLoss(),
            optimizer=opt,
            input_shape=(1, 28, 28),
            nb_classes=10,
            clip_values=(0.0, 1.0),
            device_type="cpu",
        )
        trainer = AdversarialTrainerMadryPGD(
            clf, nb_epochs=1, batch_size=BATCH, eps=EPS, eps_step=ALPHA, max_iter=STEPS, num_random_init=1
        )
        trainer.fit(ds.x_train.numpy(), ds.y_train.numpy())

    contestants = {"robustlab train (PGD-AT)": ours, "ART AdversarialTrainerMadryPGD": art}
    for fn in contestants.values():  # warm-up
        fn()
    times = time_interleaved(contestants, args.repeats)
    print(f"Machine: {machine()}\n")
    print(
        report(
            f"One PGD-7 AT epoch, {args.n:,} Fashion-MNIST images, batch 128",
            times,
            args.n,
            "ART AdversarialTrainerMadryPGD",
            "images",
        )
    )


if __name__ == "__main__":
    main()
