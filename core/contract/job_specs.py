"""Specs of the jobs that use a classifier rather than train one: its evaluation under a protocol,
an attack on one image, and the two uploads that register a model or a dataset.

Torch-free, as specs.py, whose base and building blocks they use.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from core.contract.attack_specs import AttackSpec, ProtocolSpec
from core.contract.names import Device, MinNorm, WeightsFormat
from core.contract.references import ClassifierId, ConsumedUploadId, ImageArtifactId
from core.contract.spec_base import Name, Seed
from core.contract.specs import DataSpec, ModelSpec, Spec


class MinNormSpec(Spec):
    """A minimum-norm attack (FMN, Pintor et al. 2021) beside the fixed-ε ensemble: each point's
    least adversarial perturbation, hence the robust accuracy at every radius from one run.

    Args:
        norm: `linf`, `l2` or `l1`; None: the protocol's norm (then its curve is compared with
            the ensemble's at each radius).
        steps: FMN's iterations (Pintor et al. use 1,000 for their tables; 100 is the usual
            check).
        eps_grid: the radii of its curve; None: the evaluation's (the protocol's norm only).
    """

    norm: MinNorm | None = None
    steps: int = Field(default=100, ge=1, le=2_000)
    eps_grid: list[float] | None = Field(default=None, min_length=1, max_length=64)

    @model_validator(mode="after")
    def _radii_non_negative(self) -> MinNormSpec:
        if any(e < 0 for e in self.eps_grid or []):
            raise ValueError("min_norm.eps_grid values must be >= 0")
        return self


class EvalSpec(Spec):
    """Clean and robust accuracy of one classifier under a protocol, with the attack breakdown and
    the checks for gradient masking; optionally a robustness curve.

    Args:
        model_id: the registered model to evaluate (the service); the command line passes a
            checkpoint folder instead and leaves this empty.
        data: the held-out data (the protocol takes the first `protocol.images` test images).
        protocol: the attacks, threat model, images and seed (default: `standard`, L∞ ε = 0.1).
        eps_grid: also the robust accuracy at these radii under the same attacks (0 is added:
            it must equal the clean accuracy); None for the protocol's ε alone.
        large_eps: the sanity check's radius at which accuracy should fall to about chance.
        min_norm: also FMN's minimal-norm robustness curve on the same images, at the same
            radii (`core.evaluation.min_norm`); a deterministic classifier only.
    """

    model_id: ClassifierId | None = None
    data: DataSpec = Field(default_factory=DataSpec)
    protocol: ProtocolSpec = Field(default_factory=ProtocolSpec)
    eps_grid: list[float] | None = Field(default=None, min_length=1, max_length=32)
    large_eps: float | None = Field(default=None, gt=0, le=100)
    min_norm: MinNormSpec | None = None
    batch_size: int = Field(default=256, ge=1, le=8192)
    device: Device = "auto"
    channels_last: bool = True

    @model_validator(mode="after")
    def _eps_non_negative(self) -> EvalSpec:
        if any(e < 0 for e in self.eps_grid or []):
            raise ValueError("eps_grid values must be >= 0")
        other_norm = self.min_norm is not None and self.min_norm.norm not in (None, self.protocol.norm)
        if other_norm and self.min_norm.eps_grid is None:
            raise ValueError("min_norm in another norm than the protocol's needs its own eps_grid")
        return self


class ImageAttackSpec(Spec):
    """Attack one image (the interactive queue's job): an upload or an image of the test set.

    Args:
        model_id: registered classifier.
        input_artifact_id: the upload, already converted to the model's input size and channels.
        test_index: instead of an upload, this image of the model's dataset's test split.
        label: the true class, if known (a test image's own label by default); else the model's
            clean prediction is attacked.
        attack: the attack (PGD-20, L∞ ε = 0.1 by default).
    """

    model_id: ClassifierId
    input_artifact_id: ImageArtifactId | None = None
    test_index: int | None = Field(default=None, ge=0, le=1_000_000)
    label: int | None = Field(default=None, ge=0, le=999)
    attack: AttackSpec = Field(default_factory=lambda: AttackSpec(steps=20))

    @model_validator(mode="after")
    def _one_image(self) -> ImageAttackSpec:
        if (self.input_artifact_id is None) == (self.test_index is None):
            raise ValueError("give exactly one of input_artifact_id (an upload) and test_index")
        return self


class ModelUploadSpec(Spec):
    """Register a classifier a researcher brings (the job behind `POST /v1/models`).

    Args:
        weights_artifact_id: the uploaded weights.
        weights_format: `safetensors`, or `pytorch`: a state-dict file read with
            `torch.load(weights_only=True)` only, in torchvision's, TRADES' or RobustBench's layout
            (core/models/state_dicts.py). The registry keeps safetensors either way.
        model: an architecture robustlab knows; `mean` and `std` are the normalisation the weights
            expect (None: 0.5 per channel). Inputs are images in [0, 1].
        data: the dataset it classifies (of the catalogue); its test split gives the clean accuracy.
        name: the registry name (default `<dataset>-upload-<arch>`).
    """

    weights_artifact_id: ConsumedUploadId
    weights_format: WeightsFormat = "safetensors"
    model: ModelSpec
    data: DataSpec
    name: Name | None = None


class DatasetUploadSpec(Spec):
    """Register a dataset uploaded as a zip of class folders (the job behind `POST /v1/datasets`).

    Args:
        archive_artifact_id: the uploaded zip archive.
        name: the catalogue name (shown beside its id).
        seed: the draw of the test split when the archive has none (a fifth of each class).
    """

    archive_artifact_id: ConsumedUploadId
    name: Name
    seed: Seed = 0
