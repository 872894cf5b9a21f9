"""Job specs: the one typed description of each kind of work, shared by the CLI, API, worker and dashboard.
Here the building blocks and training; evaluation and uploads in job_specs.py, diffusion in
diffusion_specs.py.

Torch-free on purpose (the API imports this module). Every spec forbids unknown fields and
bounds its numbers, so a typo or an absurd value is a clear validation error, not a silent run.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from core.contract.architectures import ARCHS, check_architecture_fields
from core.contract.names import (
    GRADIENT_ATTACKS,
    ActivationName,
    Architecture,
    AttackName,
    DatasetName,
    Device,
    EnsembleName,
    Norm,
    Probe,
    TrainMethod,
)
from core.contract.recipe_specs import NoiseSpec, RecipeSpec
from core.contract.references import DatasetId
from core.contract.spec_base import Spec


class DataSpec(Spec):
    """Which dataset, and which fixed-seed subsets of it.

    Args:
        name: `fashion-mnist`, `mnist`, `cifar10`, `digits` (by name), `folder` (class
            sub-folders) or `uploaded` (a dataset uploaded through the API).
        root: on the command line only, a local folder holding the files (`None`: the default
            search path). The service never takes a path: it refuses specs that set one.
        folder: for `folder` in the service: a folder of the operator's data root, by name.
        dataset_id: for `uploaded`: the dataset's id (`GET /v1/datasets`).
        train_subset: number of training images to keep (random, fixed by `seed`); `None` = all.
        test_subset: number of test images to keep; `None` = all.
        seed: seed of the subset draw.
        center_crop: for `folder` datasets of photographs in many sizes (ImageNet's layout): each
            image's shorter side is resized to `center_crop / 0.875` and its centre
            `center_crop`² is kept (ImageNet's evaluation transform: 256 then 224); training
            crops at random from that (`recipe.resized_crop`). `None`: images are read as they
            are (one size for all, or resized whole to the first image's).
        stream: for `folder` and `uploaded` datasets: read the images from disk batch by batch
            (DataLoader workers, bounded prefetch) instead of loading them whole; `None`
            (default) streams a split whose float images would exceed 2 GiB.
    """

    name: DatasetName = "fashion-mnist"
    root: str | None = Field(default=None, max_length=4096)
    folder: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
    dataset_id: DatasetId | None = None
    train_subset: int | None = Field(default=None, ge=1, le=10_000_000)
    test_subset: int | None = Field(default=None, ge=1, le=10_000_000)
    seed: int = Field(default=0, ge=0)
    center_crop: int | None = Field(default=None, ge=8, le=1024)
    stream: bool | None = None

    @model_validator(mode="after")
    def _source_fits_the_name(self) -> DataSpec:
        if (self.name == "uploaded") != (self.dataset_id is not None):
            raise ValueError("give dataset_id exactly for an 'uploaded' dataset")
        if self.folder is not None and self.name != "folder":
            raise ValueError("folder names a folder of the data root: only for the 'folder' dataset")
        if self.center_crop is not None and self.name != "folder":
            raise ValueError("center_crop is for 'folder' datasets (photographs in many sizes)")
        if self.stream and self.name not in ("folder", "uploaded"):
            raise ValueError(f"stream: {self.name!r} is read whole; only 'folder' and 'uploaded' datasets stream")
        return self

    @property
    def label(self) -> str:
        """How the registry names it: `fashion-mnist`, `folder:<name>`, `uploaded:<id>`."""
        if self.name == "uploaded":
            return f"uploaded:{self.dataset_id}"
        return f"folder:{self.folder}" if self.name == "folder" and self.folder else self.name

    @classmethod
    def from_label(cls, label: str) -> DataSpec:
        """The spec a registry label stands for (the inverse of `label`)."""
        kind, _, rest = label.partition(":")
        if kind == "uploaded" and rest:
            return cls(name="uploaded", dataset_id=rest)
        if kind == "folder" and rest:
            return cls(name="folder", folder=rest)
        return cls(name=label)


class ActivationSpec(Spec):
    """An activation by name, with its parameter and the ReLU-forward / smooth-backward probe.

    Args:
        name: activation name.
        alpha: α of `elu` and `smooth_relu`, and of the probe's backward 1/(1+exp(−αx)). Default 10
            for smooth_relu and the probe, 1 for elu (`None` picks these).
        beta: β of `softplus` (default 1).
        probe: only with `relu`: use the parametric-softplus derivative in the backward pass for the
            attack's gradient (`attack`), the weight update (`update`), `both`, or `none`.
    """

    name: ActivationName = "relu"
    alpha: float | None = Field(default=None, gt=0, le=1e4)
    beta: float = Field(default=1.0, gt=0, le=1e4)
    probe: Probe = "none"

    @model_validator(mode="after")
    def _probe_needs_relu(self) -> ActivationSpec:
        if self.probe != "none" and self.name != "relu":
            raise ValueError("probe is defined for relu only (ReLU forward, smooth backward)")
        return self

    @property
    def label(self) -> str:
        """Short human name, e.g. `relu`, `softplus`, `relu+smooth(attack)`."""
        return self.name if self.probe == "none" else f"relu+smooth({self.probe})"


class ModelSpec(Spec):
    """A classifier architecture; inputs are images in [0, 1], normalisation lives inside.

    Args:
        arch: the network; what each name fixes and takes is in core/contract/architectures.py.
        width: the first convolution's channels (a ResNet's first stage's); when not given, the
            architecture's default: 32, 64 for resnet18…101 (torchvision's), 16 for WideResNets.
        depth, widen_factor: `wide_resnet` only: 6n + 4 layers, stages width·k·[1, 2, 4].
        stem: resnet18…101 only: `imagenet` (7×7/2 and max-pool; None) or `cifar` (3×3/1, no pool).
        sub_block1: WideResNets only: carry TRADES' unused `sub_block1`, so its checkpoints load.
        hidden: `small_cnn` only: units of its hidden fully connected layer (None: 4·width).
        mean, std: the normalisation the weights expect, per channel (None: 0.5 each).
    """

    arch: Architecture = "small_cnn"
    activation: ActivationSpec = Field(default_factory=ActivationSpec)
    in_channels: int = Field(default=1, ge=1, le=4)
    image_size: int = Field(default=28, ge=8, le=256)
    num_classes: int = Field(default=10, ge=2, le=1000)
    width: int = Field(default=32, ge=4, le=512)
    depth: int | None = Field(default=None, ge=10, le=202)
    widen_factor: int | None = Field(default=None, ge=1, le=20)
    stem: Literal["imagenet", "cifar"] | None = None
    sub_block1: bool = False
    hidden: int | None = Field(default=None, ge=1, le=8192)
    mean: list[float] | None = None
    std: list[float] | None = None

    @model_validator(mode="before")
    @classmethod
    def _default_width_of_the_arch(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("width") is None and data.get("arch") in ARCHS:
            return {**data, "width": ARCHS[data["arch"]].default_width}
        return data

    @model_validator(mode="after")
    def _fields_fit_the_arch(self) -> ModelSpec:
        check_architecture_fields(self)
        return self


# The fields only some attacks read, and those attacks: a spec that sets one for another attack
# is refused (it would be silently ignored: an APGD sent `queries`, a Square sent `steps`).
OWN_FIELDS: dict[str, set[str]] = {
    "steps": {"pgd", "apgd-ce", "apgd-dlr", "apgd-t", "fab-t", "fmn"},
    "step_size": {"pgd", "fgsm"},
    "targets": {"apgd-t", "fab-t"},
    "queries": {"square"},
}


class AttackSpec(Spec):
    """An attack: `attack(model, x, y) -> x_adv` inside the `norm` ball of radius `eps`.

    Args:
        name: `pgd`, `fgsm` (one full step of size ε, optionally from a random start), `apgd-ce`,
            `apgd-dlr`, `apgd-t` (Auto-PGD on cross-entropy, DLR and targeted DLR; Croce & Hein
            2020), `fab-t` (the targeted Fast Adaptive Boundary attack, Croce & Hein 2020: the
            least-norm adversarial toward each target, kept where its norm is within ε), `fmn`
            (the Fast Minimum-Norm attack, Pintor et al. 2021, at the fixed ε: the least-norm
            adversarial where its norm is within ε; its L1 version and the whole curve of one run
            come from `core.evaluation.minimal_norm_curve`) or `square` (the score-based Square Attack,
            Andriushchenko et al. 2020).
        norm: `linf` or `l2`.
        eps: radius ε of the threat model (default 0.1, the Fashion-MNIST L∞ convention).
        steps: iterations; `None` gives 10 for PGD and 100 for APGD, FAB-T and FMN (ignored by
            FGSM and Square).
        step_size: PGD's step α; `None` gives 2.5·ε/steps (Madry et al.) and ε for FGSM (1.25·ε
            with a random start, Wong et al. 2020). APGD sets its own, starting at 2ε.
        random_start: start from a uniform point of the ball (PGD, FGSM; APGD always does).
        restarts: independent runs; the per-sample worst case is kept (FAB-T: runs per target;
            FMN has one run only).
        early_stop: stop moving a sample once it is misclassified (for measuring robust accuracy;
            evaluation turns it on). Training wants the highest-loss point: leave it off there.
            APGD and Square always stop on a point once it is broken, except in the evaluation
            of a randomized model, which runs every point for all its iterations. FAB-T and FMN
            look for the least norm: they run every point for all their iterations (FAB-T drops
            a point between its runs, once it is broken within ε).
        eot: gradient attacks only: average the gradient over this many forward passes
            (expectation over transformation, for randomized models). Default 1.
        targets: `apgd-t` and `fab-t` only: how many of the most likely wrong classes to target,
            one run each (default 9).
        queries: `square` only: model evaluations per point and restart (default 5,000).
    """

    name: AttackName = "pgd"
    norm: Norm = "linf"
    eps: float = Field(default=0.1, ge=0, le=100)
    steps: int | None = Field(default=None, ge=1, le=10_000)
    step_size: float | None = Field(default=None, gt=0, le=100)
    random_start: bool = True
    restarts: int = Field(default=1, ge=1, le=100)
    early_stop: bool = False
    eot: int = Field(default=1, ge=1, le=1000)
    targets: int = Field(default=9, ge=1, le=999)
    queries: int = Field(default=5000, ge=1, le=1_000_000)

    @model_validator(mode="after")
    def _eot_needs_gradients(self) -> AttackSpec:
        for name in self.model_fields_set & OWN_FIELDS.keys():
            given, default = getattr(self, name), type(self).model_fields[name].default
            if given != default and self.name not in OWN_FIELDS[name]:
                users = ", ".join(sorted(OWN_FIELDS[name]))
                raise ValueError(f"{name} is an option of {users}: {self.name} has no use for it")
        if self.eot > 1 and self.name not in GRADIENT_ATTACKS:
            raise ValueError(f"eot averages gradients: {self.name} uses none")
        if self.restarts > 1 and self.name == "fmn":
            raise ValueError("fmn makes one run (it starts at x and has no random start): give restarts 1")
        return self

    @property
    def iterations(self) -> int:
        """Gradient steps per run: 1 for FGSM, `steps` (default 10) for PGD, `steps` (default 100)
        for APGD, FAB-T and FMN, 0 for Square."""
        if self.name == "fgsm":
            return 1
        if self.name == "square":
            return 0
        return self.steps or (10 if self.name == "pgd" else 100)

    @property
    def cost(self) -> int:
        """Model evaluations per point in the worst case (forward + backward counts as one).
        FAB-T's iteration adds a forward pass (is the new iterate adversarial?) to its `eot`
        gradient passes."""
        if self.name == "square":
            return self.queries * self.restarts
        runs = self.restarts * (self.targets if self.name in ("apgd-t", "fab-t") else 1)
        return self.iterations * runs * (self.eot + (self.name == "fab-t"))

    @property
    def label(self) -> str:
        """Short name, e.g. `pgd20-linf`, `apgd-t100-linf`, `square5000-l2`, `apgd-ce100-linf-eot20`."""
        if self.name == "fgsm":
            base = "fgsm"
        elif self.name == "square":
            base = f"square{self.queries}"
        else:
            base = f"{self.name}{self.iterations}"
        extra = (f"x{self.restarts}" if self.restarts > 1 else "") + (f"-eot{self.eot}" if self.eot > 1 else "")
        return f"{base}-{self.norm}{extra}"


class OptimSpec(Spec):
    """Optimizer and learning-rate schedule (stepped every batch). `milestones`: where `piecewise`
    multiplies the rate by 0.1, as fractions of the run (default 0.5 and 0.75: Madry et al.'s, and
    Rice et al.'s 100 and 150 of 200 epochs; TRADES decays at 75 of 80 epochs: [0.9375])."""

    name: Literal["sgd", "adam"] = "sgd"
    lr: float = Field(default=0.05, gt=0, le=10)
    momentum: float = Field(default=0.9, ge=0, lt=1)
    weight_decay: float = Field(default=5e-4, ge=0, le=1)
    schedule: Literal["constant", "cosine", "piecewise", "cyclic"] = "cosine"
    milestones: list[float] = Field(default=[0.5, 0.75], min_length=1, max_length=8)

    @model_validator(mode="after")
    def _milestones_in_the_run(self) -> OptimSpec:
        if any(not 0 < m < 1 for m in self.milestones) or self.milestones != sorted(self.milestones):
            raise ValueError("milestones are increasing fractions of the run, each in (0, 1)")
        return self


class ProtocolSpec(Spec):
    """How a robust accuracy is measured: stored with every number it produces.

    Args:
        ensemble: `standard` (APGD-CE, APGD-T, FAB-T, Square: AutoAttack's standard version, in
            its order, the number to report), `rand` (APGD-CE and APGD-DLR with EOT, for randomized models, as
            AutoAttack's rand version: every point runs all its iterations and is judged by its
            expected outcome over several passes), `pgd`
            (FGSM and PGD-20: cheap, for monitoring, not a robustness claim) or `custom`
            (`attacks` as given). Attacks run in order, each on the points still standing.
        norm: `linf` or `l2`.
        eps: the radius ε.
        images: how many test images: the first ones of the test split (as `data` draws it).
        seed: seeds the attacks' random starts and searches (the same seed, the same number).
        steps: APGD's and FAB-T's iterations (default 100; PGD's for `pgd`, default 20).
        queries: Square's budget per point (default 5,000).
        eot: `rand`'s gradient samples per step (default 20).
        attacks: `custom`'s attacks; their `eps` and `norm` are the protocol's.
    """

    ensemble: EnsembleName = "standard"
    norm: Norm = "linf"
    eps: float = Field(default=0.1, ge=0, le=100)
    images: int = Field(default=1000, ge=1, le=100_000)
    seed: int = Field(default=0, ge=0)
    steps: int | None = Field(default=None, ge=1, le=10_000)
    queries: int = Field(default=5000, ge=1, le=1_000_000)
    eot: int = Field(default=20, ge=1, le=1000)
    attacks: list[AttackSpec] | None = Field(default=None, min_length=1, max_length=8)

    @model_validator(mode="after")
    def _attacks_only_for_custom(self) -> ProtocolSpec:
        if (self.ensemble == "custom") != (self.attacks is not None):
            raise ValueError("give attacks exactly when ensemble is 'custom'")
        return self

    def attack_specs(self, eps: float | None = None) -> list[AttackSpec]:
        """The attacks, in the order they run, at radius `eps` (default the protocol's)."""
        common = {"norm": self.norm, "eps": self.eps if eps is None else eps}
        steps = self.steps
        if self.ensemble == "standard":
            specs = [
                AttackSpec(name="apgd-ce", steps=steps or 100, **common),
                AttackSpec(name="apgd-t", steps=steps or 100, targets=9, **common),
                AttackSpec(name="fab-t", steps=steps or 100, targets=9, **common),
                AttackSpec(name="square", queries=self.queries, **common),
            ]
        elif self.ensemble == "rand":
            specs = [
                AttackSpec(name="apgd-ce", steps=steps or 100, eot=self.eot, **common),
                AttackSpec(name="apgd-dlr", steps=steps or 100, eot=self.eot, **common),
            ]
        elif self.ensemble == "pgd":
            specs = [
                AttackSpec(name="fgsm", random_start=False, **common),
                AttackSpec(name="pgd", steps=steps or 20, **common),
            ]
        else:
            specs = [a.model_copy(update=common) for a in self.attacks]
        return [a.model_copy(update={"early_stop": True}) for a in specs]

    @property
    def full_strength(self) -> bool:
        """The ensemble at the settings its authors use (what a paper may report as such)."""
        if self.ensemble == "standard":
            return self.steps in (None, 100) and self.queries >= 5000
        if self.ensemble == "rand":
            return self.steps in (None, 100) and self.eot >= 20
        return self.ensemble == "custom"

    @property
    def label(self) -> str:
        """E.g. `standard (apgd-ce100, apgd-t100, fab-t100, square5000), L∞ ε=0.1, 1000 images, seed 0`."""
        names = ", ".join(a.label.replace(f"-{self.norm}", "") for a in self.attack_specs())
        norm = {"linf": "L∞", "l2": "L2"}[self.norm]
        reduced = "" if self.full_strength or self.ensemble == "pgd" else " [reduced settings]"
        cheap = " [cheap check, not a robustness claim]" if self.ensemble == "pgd" else ""
        return (
            f"{self.ensemble} ({names}), {norm} ε={self.eps:g}, {self.images} images, seed {self.seed}{reduced}{cheap}"
        )


class GeneratedMixSpec(Spec):
    """Generated images mixed into training (Gowal et al. 2021 use 30 % real : 70 % generated).

    Args:
        data: the generated dataset (`{"name": "uploaded", "dataset_id": ID}`, made by a
            `dataset_generation` job); its train split is mixed in. Its images must have the real
            data's shape and classes.
        fraction: the share of each batch drawn from it.
        length: `same_steps` keeps the optimizer steps of training on the real data alone (the
            same compute; each epoch then sees a (1 − fraction) share of the real images);
            `same_epochs` makes an epoch one pass over the real images (1 / (1 − fraction) times
            the steps).
    """

    data: DataSpec
    fraction: float = Field(default=0.7, gt=0, lt=1)
    length: Literal["same_steps", "same_epochs"] = "same_steps"


MAX_GPUS = 64  # devices one job may ask for (one node)


def check_batch_splits(spec: Spec) -> Spec:
    """`spec` unchanged, or a ValueError when its batch cannot give each of its `gpus` processes an image."""
    if spec.batch_size < spec.gpus:
        raise ValueError(f"batch_size {spec.batch_size} is smaller than gpus {spec.gpus}: each process needs images")
    if spec.data.train_subset is not None and spec.data.train_subset < spec.gpus:
        raise ValueError(
            f"data.train_subset {spec.data.train_subset} is smaller than gpus {spec.gpus}: each process needs images"
        )
    return spec


class TrainSpec(Spec):
    """One training run: standard, PGD adversarial training (Madry et al. 2018), Fast-AT (Wong et
    al. 2020), TRADES (Zhang et al. 2019), or for randomized smoothing Gaussian noise augmentation
    (`gaussian`, Cohen et al. 2019) and SmoothAdv (`smoothadv`, Salman et al. 2019: PGD in L2 on the
    smoothed classifier), both at `noise`.

    `attack` builds the training examples (ignored by `standard`; for TRADES it maximises the KL
    divergence from the clean prediction); `eval_attack` measures the per-epoch robust accuracy on
    `eval_subset` held-out images, a cheap monitor; `protocol` measures the finished model (the
    robust accuracy stored with it). `trades_beta` is TRADES' β (default 6), the weight of the
    robustness term. `generated` mixes a generated dataset into every batch. `recipe` adds
    augmentation, weight averaging, best-checkpoint selection on held-out training images, label
    smoothing and ε warm-up (`RecipeSpec`; all off by default).
    """

    data: DataSpec = Field(default_factory=DataSpec)
    model: ModelSpec = Field(default_factory=ModelSpec)
    method: TrainMethod = "pgd"
    attack: AttackSpec = Field(default_factory=lambda: AttackSpec(steps=7))
    trades_beta: float = Field(default=6.0, ge=0, le=1000)
    eval_attack: AttackSpec = Field(default_factory=lambda: AttackSpec(steps=20))
    eval_subset: int = Field(default=500, ge=1, le=100_000)
    protocol: ProtocolSpec = Field(default_factory=ProtocolSpec)
    generated: GeneratedMixSpec | None = None
    recipe: RecipeSpec = Field(default_factory=RecipeSpec)
    noise: NoiseSpec | None = None

    @model_validator(mode="after")
    def _noise_fits_the_method(self) -> TrainSpec:
        smoothing = self.method in ("gaussian", "smoothadv")
        if smoothing != (self.noise is not None):
            raise ValueError("give noise (σ) exactly for the methods gaussian and smoothadv")
        if self.method == "smoothadv" and self.attack.norm != "l2":
            raise ValueError("smoothadv attacks the smoothed classifier in L2: give attack.norm 'l2'")
        return self

    @model_validator(mode="after")
    def _protocol_fits_the_classes(self) -> TrainSpec:
        if self.protocol.ensemble in ("standard", "rand") and self.model.num_classes < 4:
            raise ValueError(
                f"protocol {self.protocol.ensemble!r} uses DLR losses, which need at least 4 classes; "
                "give a 'pgd' or 'custom' protocol"
            )
        return self

    epochs: int = Field(default=5, ge=1, le=1000)
    batch_size: int = Field(default=128, ge=1, le=8192)
    optim: OptimSpec = Field(default_factory=OptimSpec)
    seed: int = Field(default=0, ge=0)
    device: Device = "auto"
    amp: bool = False
    channels_last: bool = False
    gpus: int = Field(default=1, ge=1, le=MAX_GPUS)  # processes, one per device (>1: torchrun, DDP)

    @model_validator(mode="after")
    def _batch_splits(self) -> TrainSpec:
        return check_batch_splits(self)
