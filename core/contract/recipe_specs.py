"""The training recipe's extras: augmentation, weight averaging, best-checkpoint selection, label
smoothing and ε warm-up. Torch-free; `TrainSpec.recipe` holds one.

Every field is off by default, so a spec that does not name them trains exactly as before.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from core.contract.spec_base import Spec

Selection = Literal["last", "best"]


class RecipeSpec(Spec):
    """What the field's strong adversarial-training recipes add to the loop.

    Args:
        crop_pad: random crop with zero padding: each training image is padded with `crop_pad`
            zero pixels on every side and a window of its own size is cut out at a random offset
            (CIFAR-10's recipe uses 4 for 32 px; 2 suits 28-px Fashion-MNIST). 0 (default): off.
        flip: flip half the training images left to right (CIFAR, ImageNet). Default False: off
            for digits and for data whose classes are not mirror-symmetric.
        resized_crop: the random-resized crop of ImageNet training (Szegedy et al. 2015): a window
            of a random share in [resized_crop, 1] of the image's area, aspect ratio in [3/4, 4/3],
            resized back to the image's side. The ImageNet recipe uses 0.08. `None` (default): off.
            (Its evaluation counterpart, resize and centre crop, is not done: folder images are
            resized whole to `model.image_size` when read.)
        ema_decay: keep an exponential moving average of the weights, θ_ema ← d·θ_ema + (1 − d)·θ
            after every optimizer step (Gowal et al. 2020; Rebuffi et al. 2021 use d = 0.999 and
            more). `None` (default): off. d = 0 makes the average the weights themselves.
        use_ema: with `ema_decay`: the averaged weights are the model that is monitored every
            epoch, selected, evaluated and registered (default True). False keeps the average in
            the checkpoint only.
        holdout: training images set aside (drawn with `data.seed`) for the per-epoch monitor;
            they are never trained on. Rice et al. 2020 hold out 1,000 of CIFAR-10's 50,000.
            0 (default): the monitor runs on the first `eval_subset` test images, a report only.
        select: `last` (default) hands on the last epoch's weights; `best` the weights of the
            epoch with the highest monitored robust accuracy on the `holdout` images (early
            stopping against robust overfitting, Rice et al. 2020). Never chosen on test images:
            `best` needs `holdout`.
        label_smoothing: the training loss's cross-entropy against (1 − s)·one-hot + s/K
            (Szegedy et al. 2016). Default 0: off. The attack's loss is not smoothed.
        eps_warmup_epochs: the training attack's ε grows linearly, batch by batch, from 0 to
            `attack.eps` over this many epochs (its step size with it, unless set). 0 (default): off.
    """

    crop_pad: int = Field(default=0, ge=0, le=64)
    flip: bool = False
    resized_crop: float | None = Field(default=None, gt=0, le=1)
    ema_decay: float | None = Field(default=None, ge=0, lt=1)
    use_ema: bool = True
    holdout: int = Field(default=0, ge=0, le=1_000_000)
    select: Selection = "last"
    label_smoothing: float = Field(default=0.0, ge=0, lt=1)
    eps_warmup_epochs: int = Field(default=0, ge=0, le=1000)

    @model_validator(mode="after")
    def _best_needs_held_out_images(self) -> RecipeSpec:
        if self.select == "best" and self.holdout == 0:
            raise ValueError("select 'best' chooses on held-out training images: give holdout > 0")
        return self

    @property
    def augments(self) -> bool:
        return self.crop_pad > 0 or self.flip or self.resized_crop is not None

    @property
    def averaged(self) -> bool:
        """Whether the averaged weights are the run's model."""
        return self.ema_decay is not None and self.use_ema


class NoiseSpec(Spec):
    """Training for randomized smoothing (`certification` jobs): the base classifier learns under
    the noise it will be smoothed with.

    Args:
        sigma: the Gaussian noise's standard deviation σ (train at the σ you certify at; Cohen et
            al. 2019 use 0.12, 0.25, 0.5 and 1.0).
        samples: SmoothAdv only (Salman et al. 2019): the noise draws m per image that the attack
            on the smoothed classifier averages over and that the update trains on (their 1–8).
    """

    sigma: float = Field(default=0.25, gt=0, le=4)
    samples: int = Field(default=1, ge=1, le=64)
