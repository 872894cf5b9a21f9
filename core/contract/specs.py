"""Job specs: the one typed description of each kind of work, shared by the CLI, API, worker and dashboard.
Here the building blocks and training; attacks and protocols in attack_specs.py, evaluation and
uploads in job_specs.py, diffusion in diffusion_specs.py.

Torch-free on purpose (the API imports this module). Every spec forbids unknown fields and
bounds its numbers, so a typo or an absurd value is a clear validation error, not a silent run.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from core.contract.architectures import ARCHS, check_architecture_fields
from core.contract.attack_specs import AttackSpec, ProtocolSpec
from core.contract.names import ActivationName, Architecture, DatasetName, Device, Probe, TrainMethod
from core.contract.recipe_specs import NoiseSpec, RecipeSpec
from core.contract.references import DatasetId
from core.contract.spec_base import Seed, Spec


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
    seed: Seed = 0
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
        mean, std: the normalisation the weights expect, one value per channel or one for all
            (None: 0.5 each).
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
    mean: list[Annotated[float, Field(ge=-10, le=10)]] | None = Field(default=None, min_length=1, max_length=4)
    std: list[Annotated[float, Field(ge=1e-4, le=100)]] | None = Field(default=None, min_length=1, max_length=4)

    @model_validator(mode="before")
    @classmethod
    def _default_width_of_the_arch(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("width") is None and data.get("arch") in ARCHS:
            return {**data, "width": ARCHS[data["arch"]].default_width}
        return data

    @model_validator(mode="after")
    def _fields_fit_the_arch(self) -> ModelSpec:
        check_architecture_fields(self)
        given = {name: len(v) for name in ("mean", "std") if (v := getattr(self, name)) is not None}
        one_for_all = given == {"mean": 1, "std": 1}
        if not one_for_all and any(n != self.in_channels for n in given.values()):
            raise ValueError(
                f"mean and std need one value per channel (in_channels {self.in_channels}), or both one "
                f"value for all; got {', '.join(f'{k} of {n}' for k, n in given.items())}"
            )
        return self


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
        if self.model.num_classes < self.protocol.least_classes:
            raise ValueError(
                f"protocol {self.protocol.ensemble!r} uses DLR losses, which need at least "
                f"{self.protocol.least_classes} classes; give a 'pgd' or 'custom' protocol"
            )
        return self

    epochs: int = Field(default=5, ge=1, le=1000)
    batch_size: int = Field(default=128, ge=1, le=8192)
    optim: OptimSpec = Field(default_factory=OptimSpec)
    seed: Seed = 0
    device: Device = "auto"
    amp: bool = False
    channels_last: bool = False
    gpus: int = Field(default=1, ge=1, le=MAX_GPUS)  # processes, one per device (>1: torchrun, DDP)

    @model_validator(mode="after")
    def _batch_splits(self) -> TrainSpec:
        return check_batch_splits(self)
