"""FMN's minimal-norm curve beside the fixed-ε ensemble in `evaluate`: one run gives the whole
curve, compared radius by radius with the ensemble's, and the disagreements say what they mean."""

from __future__ import annotations

import pytest

from core.contract.attack_specs import ProtocolSpec
from core.contract.job_specs import EvalSpec, MinNormSpec
from core.evaluation import evaluate
from core.evaluation.min_norm import MinimalNormCurve, compare_with_ensemble, noise
from core.models.noisy import NoisyInput


def test_the_minimal_norm_curve_comes_beside_the_ensembles_and_is_never_above_it_beyond_noise(trained_digits):
    model, _, ds = trained_digits
    protocol = ProtocolSpec(eps=0.1, images=96, steps=20, queries=300)
    result = evaluate(
        model,
        ds.x_test,
        ds.y_test,
        protocol,
        num_classes=10,
        eps_grid=[0.03, 0.06, 0.1],
        min_norm=MinNormSpec(steps=200),
    ).model_dump()
    found = MinimalNormCurve.model_validate({k: v for k, v in result["min_norm"].items() if k != "gaps"})
    assert found.norm == "linf" and found.images == 96 and found.unconfirmed == 0
    assert [p.eps for p in found.curve] == [p["eps"] for p in result["curve"]] == [0.0, 0.03, 0.06, 0.1]
    assert found.curve[0].robust_acc == pytest.approx(result["clean_acc"])
    gaps = result["min_norm"]["gaps"]
    assert [g["eps"] for g in gaps] == [0.03, 0.06, 0.1]
    ensemble = {p["eps"]: p["robust_acc"] for p in result["curve"]}
    for gap in gaps:  # the check: FMN as strong as the ensemble at every radius, within noise
        assert gap["ensemble"] == ensemble[gap["eps"]]
        assert gap["min_norm"] <= gap["ensemble"] + gap["tolerance"], gap
    assert result["min_norm"]["curve"][-1]["robust_acc"] < result["clean_acc"] - 0.1  # a real attack


def test_an_evaluation_in_another_norm_gives_fmns_own_radii_and_no_comparison(trained_digits):
    model, _, ds = trained_digits
    protocol = ProtocolSpec(eps=0.1, images=32, steps=5, queries=50)
    spec = MinNormSpec(norm="l1", steps=30, eps_grid=[1.0, 4.0])
    result = evaluate(model, ds.x_test, ds.y_test, protocol, num_classes=10, min_norm=spec).model_dump()
    assert result["min_norm"]["norm"] == "l1" and result["min_norm"]["gaps"] == []
    assert [p["eps"] for p in result["min_norm"]["curve"]] == [0.0, 1.0, 4.0]
    with pytest.raises(ValueError, match="own eps_grid"):
        EvalSpec(min_norm={"norm": "l2"})
    assert EvalSpec(min_norm={"norm": "linf"}).min_norm.eps_grid is None  # the protocol's norm: its radii
    with pytest.raises(ValueError):
        MinNormSpec(steps=0)


def test_a_randomized_model_gets_a_warning_instead_of_a_minimal_norm_curve(trained_digits):
    base, _, ds = trained_digits
    protocol = ProtocolSpec(eps=0.1, images=32, steps=5, queries=20)
    result = evaluate(
        NoisyInput(base, 0.1), ds.x_test, ds.y_test, protocol, num_classes=10, min_norm=MinNormSpec()
    ).model_dump()
    assert result["min_norm"] is None
    assert any("randomized" in w and "FMN" in w for w in result["warnings"])


def _curve(norms: list[float | None]) -> MinimalNormCurve:
    return MinimalNormCurve(
        norm="linf", steps=10, images=len(norms), clean_acc=1.0, norms=norms, curve=[], unconfirmed=0, seconds=0.0
    )


def test_the_comparison_says_which_attack_is_weaker_and_keeps_quiet_within_noise():
    norms = [0.05] * 50 + [0.2] * 50  # FMN: half the points fall by ε = 0.1
    _, quiet = compare_with_ensemble([{"eps": 0.0, "robust_acc": 1.0}, {"eps": 0.1, "robust_acc": 0.52}], _curve(norms))
    assert quiet == []  # 2 points apart on 100 images is noise
    gaps, missed = compare_with_ensemble([{"eps": 0.1, "robust_acc": 0.8}], _curve(norms))
    assert gaps[0].min_norm == 0.5 and gaps[0].tolerance == pytest.approx(noise(0.5, 100)) == pytest.approx(0.1)
    assert len(missed) == 1 and "ensemble missed" in missed[0]
    _, weak = compare_with_ensemble([{"eps": 0.1, "robust_acc": 0.2}], _curve(norms))
    assert len(weak) == 1 and "FMN is weaker" in weak[0] and "upper bound" in weak[0]
