"""The names every part of robustlab shares, defined once: job statuses, queues, model kinds, and
the vocabularies of the specs (activations, architectures, datasets, attacks, samplers, presets).

Each is a `Literal` type for the specs and a tuple of its values for menus, choices and tests.
"""

from __future__ import annotations

from typing import Literal, get_args

JobStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]
JOB_STATUSES: tuple[JobStatus, ...] = get_args(JobStatus)
FINISHED: tuple[JobStatus, ...] = ("succeeded", "failed", "cancelled")

Role = Literal["admin", "member"]  # admin: everything; member: reads what the lab shares, changes its own
ROLES: tuple[Role, ...] = get_args(Role)

Queue = Literal["train", "interactive"]
QUEUES: tuple[Queue, ...] = get_args(Queue)

ModelKind = Literal["classifier", "diffusion"]
MODEL_KINDS: tuple[ModelKind, ...] = get_args(ModelKind)

ActivationName = Literal["relu", "softplus", "silu", "gelu", "elu", "smooth_relu"]
ACTIVATIONS: tuple[ActivationName, ...] = get_args(ActivationName)
ProbePhase = Literal["attack", "update", "both"]  # where ReLU's backward is made smooth
PROBE_PHASES: tuple[ProbePhase, ...] = get_args(ProbePhase)
Probe = Literal["none", ProbePhase]

# resnet18…101: torchvision's ResNets; wrn28_10, wrn34_10: WideResNets by name; wide_resnet: any depth
# and widen factor (core/contract/architectures.py holds what each name fixes)
Architecture = Literal[
    "small_cnn",
    "preact_resnet18",
    "resnet18",
    "resnet34",
    "resnet50",
    "resnet101",
    "wrn28_10",
    "wrn34_10",
    "wide_resnet",
]
ARCHITECTURES: tuple[Architecture, ...] = get_args(Architecture)

# how a classifier's weights come: safetensors, or a PyTorch state-dict file read with
# torch.load(weights_only=True) (core/contract/weights_files.py)
WeightsFormat = Literal["safetensors", "pytorch"]
WEIGHTS_FORMATS: tuple[WeightsFormat, ...] = get_args(WeightsFormat)

DatasetName = Literal["fashion-mnist", "mnist", "cifar10", "digits", "folder", "uploaded"]
NAMED_DATASETS: tuple[DatasetName, ...] = ("fashion-mnist", "mnist", "cifar10", "digits")  # known by name alone
DATASETS: tuple[DatasetName, ...] = get_args(DatasetName)

Norm = Literal["linf", "l2"]
NORMS: tuple[Norm, ...] = get_args(Norm)
MinNorm = Literal["linf", "l2", "l1"]  # the norms of the minimum-norm attack (FMN)
MIN_NORMS: tuple[MinNorm, ...] = get_args(MinNorm)
AttackName = Literal["pgd", "fgsm", "apgd-ce", "apgd-dlr", "apgd-t", "fab-t", "fmn", "square"]
ATTACKS: tuple[AttackName, ...] = get_args(AttackName)
GRADIENT_ATTACKS: tuple[AttackName, ...] = ("pgd", "fgsm", "apgd-ce", "apgd-dlr", "apgd-t", "fab-t", "fmn")
# Named attack sets for measuring robust accuracy (AutoAttack's versions, and the cheap PGD check).
EnsembleName = Literal["standard", "rand", "pgd", "custom"]
ENSEMBLES: tuple[EnsembleName, ...] = get_args(EnsembleName)
TrainMethod = Literal["standard", "pgd", "fast", "trades", "gaussian", "smoothadv"]
TRAIN_METHODS: tuple[TrainMethod, ...] = get_args(TrainMethod)
Device = Literal["auto", "cpu", "cuda"]

SamplerName = Literal["ddim", "dpm_solver", "ddpm"]
SAMPLERS: tuple[SamplerName, ...] = get_args(SamplerName)
DEFAULT_SAMPLER_STEPS: dict[SamplerName, int] = {"ddim": 50, "dpm_solver": 20, "ddpm": 1000}

PresetName = Literal["smoke", "cpu", "gpu"]  # sizes, for every kind of job
PRESET_NAMES: tuple[PresetName, ...] = get_args(PresetName)
# Training recipes named after their data and network: a classifier's training (and its evaluation) only.
RecipeName = Literal["fmnist-strong", "cifar10-preact18", "cifar10-wrn34-trades", "imagenet-resnet50-sat"]
RECIPE_NAMES: tuple[RecipeName, ...] = get_args(RecipeName)
TrainPresetName = Literal[PresetName, RecipeName]
TRAIN_PRESET_NAMES: tuple[TrainPresetName, ...] = PRESET_NAMES + RECIPE_NAMES
