"""Randomized smoothing: CERTIFY and PREDICT as Cohen et al. define them, seeded per image, and
the certified curve never above the empirical attack on the same smoothed classifier."""

from __future__ import annotations

import math

import pytest
import torch
from scipy.stats import norm

from core.contract.certify_specs import CertifySpec, EmpiricalSpec, SmoothingSpec
from core.evaluation.certification import certified_robustness
from core.evaluation.smoothing import ABSTAIN, certify, lower_confidence_bound, predict, radius_of


def test_the_bound_and_the_radius_are_the_papers():
    # all n samples agree: pA_lower = α^(1/n), the largest certifiable radius σ·Φ⁻¹(α^(1/n))
    assert lower_confidence_bound(1000, 1000, 0.001) == pytest.approx(0.001 ** (1 / 1000))
    assert radius_of(0.001 ** (1 / 1000), 0.25) == pytest.approx(0.25 * norm.ppf(0.001 ** (1 / 1000)))
    assert lower_confidence_bound(0, 100, 0.001) == 0.0 and radius_of(0.5, 0.25) == 0.0
    # the Clopper–Pearson bound holds its level: over binomial draws it exceeds p in ≤ α of them
    g, p, n, alpha = torch.Generator().manual_seed(0), 0.8, 200, 0.05
    draws = torch.binomial(torch.full((2000,), float(n)), torch.full((2000,), p), generator=g).int().tolist()
    above = sum(lower_confidence_bound(k, n, alpha) > p for k in draws) / len(draws)
    assert above <= alpha + 0.015


class Constant(torch.nn.Module):
    """Class 3 everywhere: the smoothed classifier is certified at the largest radius n allows."""

    def __init__(self):
        super().__init__()
        self.bias = torch.nn.Parameter(torch.zeros(10))

    def forward(self, x):
        return self.bias + torch.nn.functional.one_hot(torch.full((len(x),), 3), 10)


def test_a_constant_classifier_is_certified_at_the_largest_radius_and_never_abstains():
    x = torch.rand(3, 1, 8, 8)
    s = SmoothingSpec(sigma=0.5, n0=10, n=500, alpha=0.001, batch=64)
    classes, radii = certify(Constant(), x, s, num_classes=10)
    assert classes == [3, 3, 3]
    assert radii == pytest.approx([0.5 * norm.ppf(0.001 ** (1 / 500))] * 3)
    assert predict(Constant(), x, s, num_classes=10) == [3, 3, 3]


def test_the_answers_depend_on_the_seed_and_the_image_alone(trained_digits):
    model, _, ds = trained_digits
    x = ds.x_test[:6]
    s = SmoothingSpec(sigma=0.25, n0=20, n=200, batch=64)
    first = certify(model, x, s, num_classes=10, seed=1)
    again = certify(model, x, s.model_copy(update={"batch": 37}), num_classes=10, seed=1)  # other batches
    assert first == again
    tail = certify(model, x[3:], s, num_classes=10, seed=1, first_index=3)  # an image's noise is its own
    assert (first[0][3:], first[1][3:]) == tail
    assert certify(model, x, s, num_classes=10, seed=2) != first


def test_the_certified_curve_is_never_above_the_empirical_one(trained_digits):
    model, _, ds = trained_digits
    spec = CertifySpec(
        smoothing=SmoothingSpec(sigma=0.25, n0=32, n=400, batch=200),
        radii=[0.1, 0.25, 0.5],
        images=48,
        empirical=EmpiricalSpec(steps=10, eot=4),
    )
    result = certified_robustness(model, ds.x_test, ds.y_test, spec, num_classes=10)
    assert [p.radius for p in result.curve] == [0.0, 0.1, 0.25, 0.5] and result.images == 48
    assert 0 <= result.abstain_rate <= 1 and len(result.radii) == 48
    certified = [p.certified_acc for p in result.curve]
    assert certified == sorted(certified, reverse=True) and certified[1] > 0.3  # a smoothable model
    noise = 2 * math.sqrt(0.25 / 48)  # PREDICT's own Monte-Carlo noise, two standard errors
    for point in result.curve[1:]:
        assert point.certified_acc <= point.empirical_acc + noise, point
    assert result.curve[-1].empirical_acc < result.clean_acc  # the attack does something
    assert all(p == ABSTAIN or r >= 0 for p, r in zip(result.predictions, result.radii, strict=True))
    with pytest.raises(ValueError):
        CertifySpec(radii=[-1.0])
