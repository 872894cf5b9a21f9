"""Training for randomized smoothing: Gaussian noise augmentation (Cohen et al. 2019) and
SmoothAdv (Salman et al. 2019), and what they buy under the certificate."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from core.contract.attack_specs import AttackSpec
from core.contract.certify_specs import SmoothingSpec
from core.evaluation.smoothing import certify
from core.models import load_model
from core.training import train
from core.training.objectives import smoothadv_adversary
from tests.conftest import tiny_spec


def test_smoothadv_stays_in_the_l2_ball_and_raises_the_smoothed_loss(trained_digits):
    model, _, ds = trained_digits
    x, y, m = ds.x_test[:32], ds.y_test[:32], 4
    noise = 0.25 * torch.randn(len(x) * m, *x.shape[1:])
    x_adv = smoothadv_adversary(model, x, y, AttackSpec(norm="l2", eps=0.5, steps=5), noise)
    assert ((x_adv - x).flatten(1).norm(dim=1) <= 0.5 + 1e-5).all() and x_adv.min() >= 0 and x_adv.max() <= 1

    def smoothed_loss(z):
        with torch.no_grad():
            p = F.softmax(model(z.repeat_interleave(m, 0) + noise), 1).view(len(x), m, -1).mean(1)
        return F.nll_loss(p.log(), y).item()

    direction = torch.randn_like(x)
    rand = (x + 0.5 * direction / direction.flatten(1).norm(dim=1).view(-1, 1, 1, 1)).clamp(0, 1)
    assert smoothed_loss(x_adv) > smoothed_loss(rand) > 0


def test_the_methods_need_their_noise_and_smoothadv_an_l2_attack():
    with pytest.raises(ValueError, match="noise"):
        tiny_spec(method="standard").model_validate({**tiny_spec().model_dump(), "method": "gaussian"})
    with pytest.raises(ValueError, match="l2"):
        tiny_spec().model_validate({**tiny_spec().model_dump(), "method": "smoothadv", "noise": {"sigma": 0.25}})
    with pytest.raises(ValueError, match="noise"):
        tiny_spec().model_validate({**tiny_spec().model_dump(), "noise": {"sigma": 0.25}})  # pgd: no noise


def test_noise_training_makes_the_smoothed_classifier_certifiable(tmp_path):
    """σ = 0.5 on 8×8 digits: a standard model's smoothed classifier certifies few images at
    radius 0.25; trained under the noise (either way) it certifies many more."""
    from core.data import load_dataset

    base = tiny_spec(epochs=8).model_dump()
    base["data"].update(train_subset=None, test_subset=None)
    base["model"]["width"] = 16
    base["optim"] = {"name": "adam", "lr": 3e-3, "weight_decay": 0.0}
    s = SmoothingSpec(sigma=0.5, n0=20, n=200, batch=200)
    runs = {
        "standard": {"method": "standard"},
        "gaussian": {"method": "gaussian", "noise": {"sigma": 0.5}},
        "smoothadv": {
            "method": "smoothadv",
            "noise": {"sigma": 0.5, "samples": 2},
            "attack": {"name": "pgd", "norm": "l2", "eps": 0.25, "steps": 2},
        },
    }
    certified = {}
    for name, update in runs.items():
        spec = tiny_spec().model_validate({**base, **update})
        result = train(spec, tmp_path / name)
        assert math.isfinite(result.final["train_loss"]) and result.epochs_done == 8
        ds = load_dataset(spec.data)
        x, y = ds.x_test[:64], ds.y_test[:64].tolist()
        classes, radii = certify(load_model(tmp_path / name), x, s, num_classes=10)
        certified[name] = sum(c == t and r >= 0.25 for c, t, r in zip(classes, y, radii, strict=True)) / len(y)
    assert certified["gaussian"] > certified["standard"] + 0.1, certified
    assert certified["smoothadv"] > certified["standard"] + 0.1, certified


def test_the_command_line_trains_for_smoothing_with_the_presets_noise_and_attack():
    from core.cli.local import _train_spec
    from core.cli.main import build_parser

    def parsed(*flags):
        return _train_spec(build_parser().parse_args(["train", "--preset", "smoke", *flags]))

    gaussian = parsed("--method", "gaussian")
    assert gaussian.noise.sigma == 0.25 and gaussian.attack.norm == "linf"
    smoothadv = parsed("--method", "smoothadv", "--noise-sigma", "0.5", "--noise-samples", "4")
    assert smoothadv.noise.sigma == 0.5 and smoothadv.noise.samples == 4 and smoothadv.attack.norm == "l2"
    with pytest.raises(ValueError, match="noise"):
        parsed("--noise-sigma", "0.5")  # PGD-AT takes no smoothing noise
