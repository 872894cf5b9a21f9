"""Specs of certified robustness by randomized smoothing (Cohen, Rosenfeld & Kolter 2019): the
smoothing itself, the empirical attack on the smoothed classifier shown beside the certificate,
and the certification job. Torch-free, as specs.py.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from core.contract.names import Device
from core.contract.references import ClassifierId
from core.contract.spec_base import Seed
from core.contract.specs import DataSpec, Spec


class SmoothingSpec(Spec):
    """The smoothed classifier g(x) = argmax_c P(f(x + N(0, σ²I)) = c) and how it is estimated.

    Args:
        sigma: the noise's standard deviation σ, in [0, 1] pixel units (the paper's 0.12, 0.25,
            0.5, 1.0 on images in [0, 1]).
        n0: CERTIFY's selection samples (the paper's 100).
        n: CERTIFY's estimation samples, and PREDICT's (the paper's 100,000; its smaller
            certificates, and ours on CPUs, use 10,000). The largest certifiable radius grows
            with n: σ·Φ⁻¹(α^(1/n)).
        alpha: the failure probability of each certificate and PREDICT's test level (0.001).
        batch: noisy copies per forward pass.
    """

    sigma: float = Field(default=0.25, gt=0, le=4)
    n0: int = Field(default=100, ge=1, le=100_000)
    n: int = Field(default=10_000, ge=10, le=1_000_000)
    alpha: float = Field(default=0.001, gt=0, lt=0.5)
    batch: int = Field(default=1_000, ge=1, le=100_000)


class EmpiricalSpec(Spec):
    """The L2 attack on the smoothed classifier at each radius: APGD-CE with EOT on the base
    classifier behind fresh Gaussian noise of the same σ (its expected loss, Salman et al. 2019's
    attack on the soft smoothed classifier), each result judged by PREDICT. The certificate is a
    lower bound of the accuracy this measures: it may never lie above it beyond noise.

    Args:
        steps: APGD's iterations.
        eot: noise draws averaged per gradient.
    """

    steps: int = Field(default=20, ge=1, le=1_000)
    eot: int = Field(default=8, ge=1, le=1_000)


class CertifySpec(Spec):
    """Certified L2 robustness of one classifier under randomized smoothing.

    Args:
        model_id: the registered classifier (the base f); the command line passes a checkpoint
            folder instead and leaves this empty.
        data: the held-out data (the first `images` test images are certified).
        smoothing: σ, n0, n, α.
        radii: the L2 radii at which certified accuracy is reported (0 is added: the smoothed
            classifier's accuracy counting abstentions as errors).
        images: test images certified.
        seed: the noise's seed (each image's noise depends on it and the image's index alone).
        empirical: also the empirical robust accuracy of the smoothed classifier at each radius
            (None: the certificate alone).
    """

    model_id: ClassifierId | None = None
    data: DataSpec = Field(default_factory=DataSpec)
    smoothing: SmoothingSpec = Field(default_factory=SmoothingSpec)
    radii: list[float] = Field(default_factory=lambda: [0.25, 0.5, 1.0], min_length=1, max_length=32)
    images: int = Field(default=500, ge=1, le=100_000)
    seed: Seed = 0
    empirical: EmpiricalSpec | None = None
    device: Device = "auto"

    @model_validator(mode="after")
    def _radii_non_negative(self) -> CertifySpec:
        if any(r < 0 for r in self.radii):
            raise ValueError("radii must be >= 0")
        return self

    @property
    def label(self) -> str:
        """e.g. `smoothing σ=0.25 (n0=100, n=10000, α=0.001), 500 images, seed 0`."""
        s = self.smoothing
        return f"smoothing σ={s.sigma:g} (n0={s.n0}, n={s.n}, α={s.alpha:g}), {self.images} images, seed {self.seed}"
