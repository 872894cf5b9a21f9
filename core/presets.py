"""Named starting points for training: `smoke` (seconds, digits), `cpu` (Fashion-MNIST on two
cores), `gpu` (PreAct ResNet-18, full data, bf16 and channels_last). Torch-free."""

from __future__ import annotations

from typing import Literal

from core.specs import ActivationSpec, AttackSpec, DataSpec, EvalSpec, ModelSpec, OptimSpec, TrainSpec

PresetName = Literal["smoke", "cpu", "gpu"]
PRESETS: tuple[PresetName, ...] = ("smoke", "cpu", "gpu")


def train_preset(name: PresetName, activation: ActivationSpec | None = None, seed: int = 0) -> TrainSpec:
    """The PGD-AT recipe of preset `name` (L∞, ε = 0.1, the Fashion-MNIST convention)."""
    act = activation or ActivationSpec()
    match name:
        case "smoke":
            return TrainSpec(
                data=DataSpec(name="digits", seed=seed),
                seed=seed,
                epochs=3,
                batch_size=64,
                model=ModelSpec(arch="small_cnn", image_size=8, width=16, activation=act),
                attack=AttackSpec(eps=0.1, steps=3),
                eval_attack=AttackSpec(eps=0.1, steps=5),
                eval_subset=200,
                optim=OptimSpec(name="adam", lr=3e-3, weight_decay=0.0),
            )
        case "cpu":
            return TrainSpec(
                data=DataSpec(name="fashion-mnist", train_subset=10_000, test_subset=1_000, seed=seed),
                seed=seed,
                epochs=5,
                batch_size=128,
                model=ModelSpec(arch="small_cnn", image_size=28, width=16, activation=act),
                attack=AttackSpec(eps=0.1, steps=5),
                eval_attack=AttackSpec(eps=0.1, steps=10),
                eval_subset=500,
                optim=OptimSpec(name="adam", lr=2e-3, weight_decay=0.0),
            )
        case "gpu":
            return TrainSpec(
                data=DataSpec(name="fashion-mnist", seed=seed),
                seed=seed,
                epochs=30,
                batch_size=256,
                model=ModelSpec(arch="preact_resnet18", image_size=28, width=64, activation=act),
                attack=AttackSpec(eps=0.1, steps=10),
                eval_attack=AttackSpec(eps=0.1, steps=20),
                eval_subset=1_000,
                optim=OptimSpec(name="sgd", lr=0.1, schedule="piecewise"),
                amp=True,
                channels_last=True,
            )
    raise ValueError(f"unknown preset {name!r}; choose from {PRESETS}")


def eval_preset(name: PresetName) -> EvalSpec:
    """The evaluation that goes with a preset: FGSM and PGD-20 (L∞) over the ε curve 0–0.3."""
    subset = {"smoke": 200, "cpu": 1_000, "gpu": 10_000}[name]
    dataset = "digits" if name == "smoke" else "fashion-mnist"
    return EvalSpec(data=DataSpec(name=dataset, test_subset=subset), eps_grid=[0.0, 0.05, 0.1, 0.15, 0.2, 0.3])
