"""Diffusion job specs (Ho et al. 2020's DDPM): training, sampling and the forward-process explorer.
Torch-free, like every spec: bounded, documented, unknown fields refused."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from core.contract.names import DEFAULT_SAMPLER_STEPS, Device, SamplerName
from core.contract.references import ClassifierId, DiffusionId
from core.contract.spec_base import Name, Seed
from core.contract.specs import MAX_GPUS, DataSpec, Spec, check_batch_splits


class UNetSpec(Spec):
    """A diffusers `UNet2DModel`: one resolution level per entry of `block_out_channels`."""

    block_out_channels: list[Annotated[int, Field(ge=1, le=1024)]] = Field(
        default_factory=lambda: [32, 64, 64], min_length=1, max_length=5
    )
    layers_per_block: int = Field(default=1, ge=1, le=4)
    attention: bool = Field(default=False, description="self-attention at the lowest resolution")
    norm_num_groups: int = Field(default=8, ge=1, le=64)

    @model_validator(mode="after")
    def _groups_divide_channels(self) -> UNetSpec:
        if any(c % self.norm_num_groups for c in self.block_out_channels):
            raise ValueError("every block_out_channels value must be divisible by norm_num_groups")
        return self


class DDPMTrainSpec(Spec):
    """DDPM training (Ho et al. 2020): ε-prediction with the simple loss, EMA weights.

    Args:
        image_size: side the images are padded to (28 → 32 for Fashion-MNIST; a power-of-2
            multiple of the UNet's downsampling).
        schedule: `linear` β from `beta_start` to `beta_end` (Ho et al.) or `cosine` (Nichol &
            Dhariwal 2021).
        class_conditional: condition on the label; labels are dropped with probability
            `cond_drop_prob` so one model also predicts unconditionally (classifier-free guidance).
    """

    data: DataSpec = Field(default_factory=DataSpec)
    image_size: int = Field(default=32, ge=8, le=256)
    unet: UNetSpec = Field(default_factory=UNetSpec)
    schedule: Literal["linear", "cosine"] = "linear"
    num_train_timesteps: int = Field(default=1000, ge=10, le=4000)
    beta_start: float = Field(default=1e-4, gt=0, lt=1)
    beta_end: float = Field(default=0.02, gt=0, lt=1)
    class_conditional: bool = False
    cond_drop_prob: float = Field(default=0.1, ge=0, le=1)
    epochs: int = Field(default=10, ge=1, le=1000)
    batch_size: int = Field(default=128, ge=1, le=8192)
    lr: float = Field(default=2e-3, gt=0, le=1)
    ema_decay: float = Field(default=0.995, ge=0, lt=1)
    seed: Seed = 0
    device: Device = "auto"
    amp: bool = False
    channels_last: bool = False
    gpus: int = Field(default=1, ge=1, le=MAX_GPUS)  # processes, one per device (>1: torchrun, DDP)

    @model_validator(mode="after")
    def _batch_splits(self) -> DDPMTrainSpec:
        return check_batch_splits(self)


class DDPMSampleSpec(Spec):
    """Samples from a trained diffusion model.

    Args:
        model_id: the registered diffusion model (the service; the CLI passes a folder).
        n: number of images.
        sampler: `ddpm` (ancestral, the full chain), `ddim` (Song et al. 2021) or `dpm_solver`.
        steps: denoising steps; `None` gives 1000 (ddpm), 50 (ddim) or 20 (dpm_solver).
        eta: DDIM's η (0 = deterministic).
        seed: the same seed gives the same images.
        guidance_scale: classifier-free guidance weight w (1 = plain conditional sampling);
            needs a class-conditional model and `class_labels`.
        class_labels: one label per image, or one for all; `None` samples unconditionally.
        trajectory: also return `trajectory_frames` frames of x_T … x_0.
    """

    model_id: DiffusionId | None = None
    n: int = Field(default=16, ge=1, le=1024)
    sampler: SamplerName = "ddim"
    steps: int | None = Field(default=None, ge=1, le=4000)
    eta: float = Field(default=0.0, ge=0, le=1)
    seed: Seed = 0
    guidance_scale: float = Field(default=1.0, ge=0, le=50)
    class_labels: list[Annotated[int, Field(ge=0, le=999)]] | None = Field(default=None, min_length=1, max_length=1024)
    trajectory: bool = False
    trajectory_frames: int = Field(default=10, ge=2, le=100)

    @model_validator(mode="after")
    def _labels_fit(self) -> DDPMSampleSpec:
        if self.guidance_scale != 1 and self.class_labels is None:
            raise ValueError("guidance_scale other than 1 needs class_labels (guidance steers towards a class)")
        if self.class_labels is not None and len(self.class_labels) not in (1, self.n):
            raise ValueError(f"class_labels needs one label for all images or one per image (n = {self.n})")
        return self

    @property
    def num_steps(self) -> int:
        return self.steps or DEFAULT_SAMPLER_STEPS[self.sampler]


class DDPMForwardSpec(Spec):
    """The forward process made visible: one test image, noised to x_t for each t, and the
    model's prediction x̂_0 from each x_t (the dashboard's explorer).

    Args:
        model_id: the registered diffusion model.
        test_index: the image of the model's dataset's test split.
        timesteps: the t values; `None` gives ten from 0 to T−1, evenly spaced.
        seed: the noise draw (the same seed gives the same x_t).
    """

    model_id: DiffusionId
    test_index: int = Field(default=0, ge=0, le=1_000_000)
    timesteps: list[int] | None = Field(default=None, min_length=1, max_length=50)
    seed: Seed = 0

    @model_validator(mode="after")
    def _timesteps_in_range(self) -> DDPMForwardSpec:
        if self.timesteps and not all(0 <= t < 4000 for t in self.timesteps):
            raise ValueError("timesteps must lie in [0, num_train_timesteps)")
        return self


class SampleFilterSpec(Spec):
    """Which generated images to keep, judged by a registered classifier of the same data.

    Args:
        classifier_id: the registered classifier.
        mode: `agree` keeps an image when the classifier predicts the label it was generated
            for; `relabel` gives each image the classifier's prediction instead (Gowal et al.
            2021's pseudo-labels).
        confidence: either way, keep an image only when the classifier's softmax probability of
            its (kept) label is at least this (0 keeps every image `mode` keeps).
    """

    classifier_id: ClassifierId
    mode: Literal["agree", "relabel"] = "agree"
    confidence: float = Field(default=0.0, ge=0, le=1)


class DatasetGenerationSpec(Spec):
    """A labelled dataset sampled from a class-conditional diffusion model (Gowal et al. 2021,
    Wang et al. 2023): `per_class` images of each class, written in shards so a job that dies
    part-way resumes at the first shard it had not written.

    Args:
        model_id: the registered class-conditional diffusion model.
        per_class: images generated per class (before the filter).
        sampler, steps, eta: the reverse process; the default, ancestral DDPM at 50 steps, is the
            best of the fast samplers measured in docs/results.md (DDIM with η = 1 at 50 steps
            is the other stochastic one); `eta` is DDIM's.
        guidance_scale: classifier-free guidance weight w (1 = plain conditional sampling).
        seed: the same seed gives the same images (shard k draws from seed and k alone).
        filter: keep or relabel images with a registered classifier; None keeps them all.
        shard_size: images per stored shard (the unit of resumption).
        name: the catalogue name (default `<dataset>-generated-<n>`).

    The dataset's test split is the real test split of the diffusion model's dataset, so a model
    trained on it is measured on real images.
    """

    model_id: DiffusionId | None = None
    per_class: int = Field(default=1000, ge=1, le=100_000)
    sampler: SamplerName = "ddpm"
    steps: int | None = Field(default=50, ge=1, le=4000)
    eta: float = Field(default=1.0, ge=0, le=1)
    guidance_scale: float = Field(default=1.0, ge=0, le=50)
    seed: Seed = 0
    filter: SampleFilterSpec | None = None
    shard_size: int = Field(default=1000, ge=1, le=1024)
    name: Name | None = None

    @property
    def num_steps(self) -> int:
        return self.steps or DEFAULT_SAMPLER_STEPS[self.sampler]


class PurifierSpec(Spec):
    """Diffusion purification (DiffPure, Nie et al. 2022): noise the input to step `t_star` of the
    forward process, run the reverse process back to 0 in `steps` steps, classify the result.

    Args:
        t_star: the diffusion step the input is noised to (of the model's T training steps); the
            larger, the more of an attack is washed out, and of the image too.
        steps: reverse steps from t* to 0.
        sampler: `ddim` (η = 0: the only randomness is the forward noise) or `ddpm` (ancestral:
            fresh noise at every step).
    """

    t_star: int = Field(default=100, ge=1, le=4000)
    steps: int = Field(default=10, ge=1, le=1000)
    sampler: Literal["ddim", "ddpm"] = "ddim"

    @model_validator(mode="after")
    def _steps_fit(self) -> PurifierSpec:
        if self.steps > self.t_star:
            raise ValueError(f"steps ({self.steps}) cannot exceed t_star ({self.t_star})")
        return self


class DefendedModelSpec(Spec):
    """Register a defended model: a classifier behind a diffusion purifier. It is evaluated like any
    classifier, and its evaluation reports the non-adaptive, BPDA and adaptive robust accuracy
    side by side (the defense's robust accuracy is the lowest).

    Args:
        classifier_id: the registered classifier.
        diffusion_id: the registered diffusion model of the same data (unconditional use).
        purifier: t*, reverse steps and sampler.
        name: the registry name (default `<classifier name>+purify-t<t*>`).
    """

    classifier_id: ClassifierId
    diffusion_id: DiffusionId
    purifier: PurifierSpec = Field(default_factory=PurifierSpec)
    name: Name | None = None
