"""The field's published training recipes as presets of `adversarial_training`, for the GPU
machines (CIFAR-10 and ImageNet are not on the development machines: the tests run each one end
to end at tiny scale on files written in the datasets' real formats).

- `cifar10-preact18`: PGD-10 AT of a PreAct ResNet-18 with early stopping on held-out images
  (Rice, Wong & Kolter 2020, "Overfitting in adversarially robust deep learning").
- `cifar10-wrn34-trades`: TRADES, β = 6, on a WRN-34-10 (Zhang et al. 2019; the settings of their
  `train_trades_cifar10.py`, β of the paper's best model).
- `imagenet-resnet50-sat`: ResNet-50 on ImageNet at ε = 4/255 with a single-step PGD attacker, the
  set-up of Xie et al. 2020 ("Smooth Adversarial Training"), whose point is the activation: give
  `silu` (or another smooth one) against `relu`. The optimizer schedule is a standard ImageNet one
  (SGD 0.1 for batch 256, cosine, 100 epochs); the paper's own schedule is not reproduced here.

Their hours on a GPU: docs/benchmarks.md ("The field's presets on a GPU").
Torch-free.
"""

from __future__ import annotations

from core.contract.attack_specs import AttackSpec, ProtocolSpec
from core.contract.recipe_specs import RecipeSpec
from core.contract.specs import ActivationSpec, DataSpec, ModelSpec, OptimSpec, TrainSpec

CIFAR_EPS = 8 / 255
IMAGENET_MEAN, IMAGENET_STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


def cifar10_preact18(act: ActivationSpec, seed: int) -> TrainSpec:
    """PGD-10 (step 2/255) AT, SGD 0.1 ÷10 at 100 and 150 of 200 epochs, weight decay 5e-4, batch
    128, random crop (pad 4) and flip, the best epoch by PGD-10 on 1,000 held-out training images."""
    return TrainSpec(
        data=DataSpec(name="cifar10", seed=seed),
        seed=seed,
        epochs=200,
        batch_size=128,
        model=ModelSpec(arch="preact_resnet18", in_channels=3, image_size=32, width=64, activation=act),
        attack=AttackSpec(eps=CIFAR_EPS, steps=10, step_size=2 / 255),
        eval_attack=AttackSpec(eps=CIFAR_EPS, steps=10, step_size=2 / 255),
        eval_subset=1_000,
        protocol=ProtocolSpec(eps=CIFAR_EPS, images=10_000),
        optim=OptimSpec(name="sgd", lr=0.1, momentum=0.9, weight_decay=5e-4, schedule="piecewise"),
        recipe=RecipeSpec(crop_pad=4, flip=True, holdout=1_000, select="best"),
        amp=True,
        channels_last=True,
    )


def cifar10_wrn34_trades(act: ActivationSpec, seed: int) -> TrainSpec:
    """TRADES (β = 6; the inner maximisation: 10 steps of 0.007 in ε = 0.031), SGD 0.1 ÷10 at 75 of
    80 epochs, weight decay 2e-4, batch 128, random crop (pad 4) and flip; the last epoch, as theirs."""
    return TrainSpec(
        data=DataSpec(name="cifar10", seed=seed),
        seed=seed,
        method="trades",
        trades_beta=6.0,
        epochs=80,
        batch_size=128,
        model=ModelSpec(arch="wrn34_10", in_channels=3, image_size=32, activation=act),
        attack=AttackSpec(eps=0.031, steps=10, step_size=0.007),
        eval_attack=AttackSpec(eps=CIFAR_EPS, steps=10, step_size=2 / 255),
        eval_subset=1_000,
        protocol=ProtocolSpec(eps=CIFAR_EPS, images=10_000),
        optim=OptimSpec(name="sgd", lr=0.1, momentum=0.9, weight_decay=2e-4, schedule="piecewise", milestones=[0.9375]),
        recipe=RecipeSpec(crop_pad=4, flip=True),
        amp=True,
        channels_last=True,
    )


def imagenet_resnet50_sat(act: ActivationSpec, seed: int) -> TrainSpec:
    """ResNet-50 (torchvision's) on an ImageNet folder of the operator's data root (`imagenet`:
    train/ and test/ of class folders): images resized and centre-cropped to 224 when read,
    random-resized crops (down to 8 % of the area) and flips in training; one PGD step of 4/255 in
    ε = 4/255; SGD 0.1 for batch 256, cosine over 100 epochs, weight decay 1e-4; evaluated under
    `standard` at ε = 4/255 on 5,000 test images (RobustBench's ImageNet set size)."""
    return TrainSpec(
        data=DataSpec(name="folder", folder="imagenet", center_crop=224, seed=seed),
        seed=seed,
        epochs=100,
        batch_size=256,
        model=ModelSpec(
            arch="resnet50",
            in_channels=3,
            image_size=224,
            num_classes=1000,
            activation=act,
            mean=IMAGENET_MEAN,
            std=IMAGENET_STD,
        ),
        attack=AttackSpec(eps=4 / 255, steps=1, step_size=4 / 255),
        eval_attack=AttackSpec(eps=4 / 255, steps=10, step_size=1 / 255),
        eval_subset=1_000,
        protocol=ProtocolSpec(eps=4 / 255, images=5_000),
        optim=OptimSpec(name="sgd", lr=0.1, momentum=0.9, weight_decay=1e-4, schedule="cosine"),
        recipe=RecipeSpec(resized_crop=0.08, flip=True, holdout=10_000, select="best"),
        amp=True,
        channels_last=True,
    )


FIELD_PRESETS = {
    "cifar10-preact18": cifar10_preact18,
    "cifar10-wrn34-trades": cifar10_wrn34_trades,
    "imagenet-resnet50-sat": imagenet_resnet50_sat,
}
