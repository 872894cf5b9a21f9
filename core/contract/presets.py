"""Named starting points for every job kind: `smoke` (seconds, digits), `cpu` (Fashion-MNIST on two
cores), `gpu` (bigger models, full data, bf16 and channels_last); samplers by name for sampling.
Classifier training also has recipes named after their data (`fmnist-strong`, the field's recipe
for Fashion-MNIST within 45 minutes of two cores).

Specs that act on a registered model leave `model_id` empty for the caller to fill in.
"""

from __future__ import annotations

from core.contract.attack_specs import AttackSpec, ProtocolSpec
from core.contract.certify_specs import CertifySpec, EmpiricalSpec, SmoothingSpec
from core.contract.diffusion_specs import (
    DatasetGenerationSpec,
    DDPMForwardSpec,
    DDPMSampleSpec,
    DDPMTrainSpec,
    DefendedModelSpec,
    PurifierSpec,
    UNetSpec,
)
from core.contract.field_presets import FIELD_PRESETS
from core.contract.job_specs import DatasetUploadSpec, EvalSpec, ImageAttackSpec, ModelUploadSpec
from core.contract.names import PRESET_NAMES, RECIPE_NAMES, SAMPLERS, TRAIN_PRESET_NAMES, PresetName, TrainPresetName
from core.contract.recipe_specs import RecipeSpec
from core.contract.specs import ActivationSpec, DataSpec, ModelSpec, OptimSpec, TrainSpec

# Seconds-sized, for tests and first tries: far below the field's settings, and labelled so.
SMOKE_PROTOCOL = ProtocolSpec(images=200, steps=10, queries=100)


def _known(name: str, names: tuple[str, ...] = PRESET_NAMES) -> None:
    if name not in names:
        raise ValueError(f"unknown preset {name!r}; choose from {', '.join(names)}")


def fmnist_strong(act: ActivationSpec, seed: int) -> TrainSpec:
    """PGD-3 AT (step 2.5ε/3, from a random start) of a width-32 small CNN with a 1,024-unit hidden
    layer on all of Fashion-MNIST (L∞ ε = 0.1): SGD with cosine decay and weight decay, an EMA of
    the weights (d = 0.999), and the best of 30 epochs by PGD-10 on 1,000 held-out training images
    (Rice et al. 2020). No augmentation: random crops cost this small network accuracy and
    robustness (docs/results.md, the first recipe), and Fashion-MNIST's shoes all face one way.
    Epochs of about 60 s on two idle cores (measured here, 2026-12-02; 102–107 s on the slower
    machine of 2026-12-04, about 52 minutes for the 30); the reported number:
    `standard` on the first 1,000 test images.
    """
    return TrainSpec(
        data=DataSpec(name="fashion-mnist", seed=seed),
        seed=seed,
        epochs=30,
        batch_size=128,
        model=ModelSpec(arch="small_cnn", image_size=28, width=32, hidden=1024, activation=act),
        attack=AttackSpec(eps=0.1, steps=3),
        eval_attack=AttackSpec(eps=0.1, steps=10),
        eval_subset=1_000,
        protocol=ProtocolSpec(images=1_000),
        optim=OptimSpec(name="sgd", lr=0.05, momentum=0.9, weight_decay=5e-4, schedule="cosine"),
        recipe=RecipeSpec(ema_decay=0.999, holdout=1_000, select="best"),
    )


def train_preset(name: TrainPresetName, activation: ActivationSpec | None = None, seed: int = 0) -> TrainSpec:
    """The PGD-AT recipe of preset `name` (L∞, ε = 0.1, the Fashion-MNIST convention)."""
    _known(name, TRAIN_PRESET_NAMES)
    act = activation or ActivationSpec()
    if name == "fmnist-strong":
        return fmnist_strong(act, seed)
    if name in FIELD_PRESETS:  # the published CIFAR-10 and ImageNet recipes (core/contract/field_presets.py)
        return FIELD_PRESETS[name](act, seed)
    if name == "smoke":
        return TrainSpec(
            data=DataSpec(name="digits", seed=seed),
            seed=seed,
            epochs=3,
            batch_size=64,
            model=ModelSpec(arch="small_cnn", image_size=8, width=16, activation=act),
            attack=AttackSpec(eps=0.1, steps=3),
            eval_attack=AttackSpec(eps=0.1, steps=5),
            eval_subset=200,
            protocol=SMOKE_PROTOCOL,
            optim=OptimSpec(name="adam", lr=3e-3, weight_decay=0.0),
        )
    if name == "cpu":
        return TrainSpec(
            data=DataSpec(name="fashion-mnist", train_subset=10_000, test_subset=1_000, seed=seed),
            seed=seed,
            epochs=5,
            batch_size=128,
            model=ModelSpec(arch="small_cnn", image_size=28, width=16, activation=act),
            attack=AttackSpec(eps=0.1, steps=5),
            eval_attack=AttackSpec(eps=0.1, steps=10),
            eval_subset=500,
            protocol=ProtocolSpec(images=500),
            optim=OptimSpec(name="adam", lr=2e-3, weight_decay=0.0),
        )
    return TrainSpec(
        data=DataSpec(name="fashion-mnist", seed=seed),
        seed=seed,
        epochs=30,
        batch_size=256,
        model=ModelSpec(arch="preact_resnet18", image_size=28, width=64, activation=act),
        attack=AttackSpec(eps=0.1, steps=10),
        eval_attack=AttackSpec(eps=0.1, steps=20),
        eval_subset=1_000,
        protocol=ProtocolSpec(images=10_000),
        optim=OptimSpec(name="sgd", lr=0.1, schedule="piecewise"),
        amp=True,
        channels_last=True,
    )


def eval_preset(name: TrainPresetName) -> EvalSpec:
    """The evaluation that goes with a preset: its training preset's protocol (the `standard`
    ensemble, L∞ ε = 0.1; reduced settings for `smoke`) on the same data and its test split."""
    train = train_preset(name)
    data = train.data.model_copy(update={"train_subset": None, "seed": 0})
    return EvalSpec(data=data, protocol=train.protocol)


def ddpm_preset(name: PresetName, seed: int = 0) -> DDPMTrainSpec:
    """DDPM training: smoke (digits, seconds), cpu (Fashion-MNIST, a small UNet, ≤ 30 min on two
    cores), gpu (a bigger class-conditional UNet with attention, longer, bf16)."""
    _known(name)
    if name == "smoke":
        return DDPMTrainSpec(
            data=DataSpec(name="digits", seed=seed),
            image_size=8,
            seed=seed,
            epochs=2,
            batch_size=64,
            unet=UNetSpec(block_out_channels=[16, 32], norm_num_groups=8),
        )
    if name == "cpu":
        # [16, 32, 32] trains at ~98 images/s on two idle cores (measured here on
        # 2026-11-25; [32, 64, 64] managed 33/s): three epochs of 60,000 ≈ 31 minutes.
        return DDPMTrainSpec(
            data=DataSpec(name="fashion-mnist", seed=seed),
            image_size=32,
            seed=seed,
            epochs=3,
            batch_size=128,
            lr=2e-3,
            ema_decay=0.995,
            unet=UNetSpec(block_out_channels=[16, 32, 32], layers_per_block=1),
        )
    return DDPMTrainSpec(
        data=DataSpec(name="fashion-mnist", seed=seed),
        image_size=32,
        seed=seed,
        epochs=100,
        batch_size=256,
        lr=2e-4,
        ema_decay=0.9999,
        class_conditional=True,
        amp=True,
        channels_last=True,
        unet=UNetSpec(block_out_channels=[64, 128, 256, 256], layers_per_block=2, attention=True, norm_num_groups=32),
    )


def smoothing_training(spec: TrainSpec, method: str, sigma: float = 0.25) -> TrainSpec:
    """`spec`'s recipe trained for randomized smoothing at σ: Gaussian noise augmentation, or
    SmoothAdv in a light setting of Salman et al.'s grid (two L2 PGD steps at ε = 0.5, m = 2 noise
    draws per image)."""
    update: dict = {"method": method, "noise": {"sigma": sigma, "samples": 2 if method == "smoothadv" else 1}}
    if method == "smoothadv":
        update["attack"] = {"name": "pgd", "norm": "l2", "eps": 0.5, "steps": 2}
    return TrainSpec.model_validate({**spec.model_dump(), **update})


def training_presets() -> dict[str, TrainSpec]:
    """PGD-AT at each size, and on the same recipe TRADES (β = 6, Zhang et al.'s) and the two
    trainings for randomized smoothing at σ = 0.25 (Gaussian augmentation, SmoothAdv)."""
    pgd = {name: train_preset(name) for name in PRESET_NAMES}
    trades = {f"{name}-trades": spec.model_copy(update={"method": "trades"}) for name, spec in pgd.items()}
    methods = ("gaussian", "smoothadv")
    smoothing = {f"{name}-{m}": smoothing_training(spec, m) for name, spec in pgd.items() for m in methods}
    return {**pgd, **trades, **smoothing, **{name: train_preset(name) for name in RECIPE_NAMES}}


def evaluation_presets() -> dict[str, EvalSpec]:
    return {name: eval_preset(name) for name in TRAIN_PRESET_NAMES}


def certification_preset(name: PresetName) -> CertifySpec:
    """Randomized smoothing at σ = 0.25: smoke (digits, a few hundred samples, seconds), cpu
    (Fashion-MNIST, 500 images, n = 10,000: minutes on two cores for a small CNN), gpu (Cohen et
    al.'s n = 100,000)."""
    _known(name)
    if name == "smoke":
        return CertifySpec(
            data=DataSpec(name="digits"),
            smoothing=SmoothingSpec(sigma=0.25, n0=20, n=200, batch=200),
            images=32,
            empirical=EmpiricalSpec(steps=5, eot=2),
        )
    n = 10_000 if name == "cpu" else 100_000
    return CertifySpec(
        data=DataSpec(name="fashion-mnist"),
        smoothing=SmoothingSpec(sigma=0.25, n0=100, n=n, batch=1_000 if name == "cpu" else 10_000),
        images=500,
        empirical=EmpiricalSpec(steps=20, eot=8),
    )


def certification_presets() -> dict[str, CertifySpec]:
    return {name: certification_preset(name) for name in PRESET_NAMES}


def image_attack_presets() -> dict[str, ImageAttackSpec]:
    return {"default": ImageAttackSpec(model_id="", test_index=0)}


def upload_presets() -> dict[str, ModelUploadSpec]:
    """The shape of an upload: the weights come through `POST /v1/models`."""
    return {"default": ModelUploadSpec(weights_artifact_id="", model=ModelSpec(), data=DataSpec())}


def dataset_upload_presets() -> dict[str, DatasetUploadSpec]:
    """The shape of a dataset upload: the archive comes through `POST /v1/datasets`."""
    return {"default": DatasetUploadSpec(archive_artifact_id="", name="my-dataset")}


def ddpm_presets() -> dict[str, DDPMTrainSpec]:
    return {name: ddpm_preset(name) for name in PRESET_NAMES}


def sampling_presets() -> dict[str, DDPMSampleSpec]:
    """One preset per sampler (at its usual number of steps)."""
    return {s: DDPMSampleSpec(sampler=s) for s in SAMPLERS}


def forward_presets() -> dict[str, DDPMForwardSpec]:
    return {"default": DDPMForwardSpec(model_id="")}


def generation_presets() -> dict[str, DatasetGenerationSpec]:
    """`smoke`: 20 images per class in 5 steps; `cpu`: 2,000 per class (20k for Fashion-MNIST)
    with ancestral DDPM at 50 steps; `gpu`: 5,000 per class."""
    return {
        "smoke": DatasetGenerationSpec(per_class=20, steps=5, shard_size=50),
        "cpu": DatasetGenerationSpec(per_class=2000),
        "gpu": DatasetGenerationSpec(per_class=5000, shard_size=1024),
    }


def defense_presets() -> dict[str, DefendedModelSpec]:
    """Purification at t* = 100 and t* = 200 of T = 1000 (10 DDIM steps back); ids left empty."""
    return {
        f"t{t}": DefendedModelSpec(classifier_id="", diffusion_id="", purifier=PurifierSpec(t_star=t, steps=10))
        for t in (100, 200)
    }
