"""FMN: per-point minimal norms, the fixed-ε attack, and the robustness curve of one run."""

from __future__ import annotations

import pytest
import torch

from core.attacks import build_attack
from core.attacks.fmn import FMN, minimal_norms, project_l1_ball
from core.attacks.hyperplane import lp_norm
from core.contract.attack_specs import AttackSpec, ProtocolSpec
from core.evaluation import accuracy, attack_in_order, minimal_norm_curve


def test_the_l1_ball_projection_is_the_nearest_point_of_the_ball():
    g = torch.Generator().manual_seed(2)
    delta, eps = torch.randn(64, 5, generator=g, dtype=torch.float64), torch.rand(64, dtype=torch.float64) * 3
    p = project_l1_ball(delta, eps)
    assert (lp_norm(p, "l1") <= eps + 1e-9).all()
    inside = lp_norm(delta, "l1") <= eps
    assert torch.equal(p[inside], delta[inside]) and (lp_norm(p[~inside], "l1") - eps[~inside]).abs().max() < 1e-9
    # nearer than any other point of the ball: random points of the ball, and p nudged inside it
    for _ in range(200):
        other = project_l1_ball(p + 0.3 * torch.randn(64, 5, generator=g, dtype=torch.float64), eps)
        assert ((delta - p).norm(dim=1) <= (delta - other).norm(dim=1) + 1e-9).all()


@pytest.mark.parametrize("norm", ["linf", "l2", "l1"])
def test_fmn_claims_are_true_adversarials_with_the_norms_it_says(trained_digits, norm):
    model, _, ds = trained_digits
    x, y = ds.x_test[:64], ds.y_test[:64]
    found, norms = minimal_norms(model, x, y, norm, steps=50, batch_size=40)
    with torch.no_grad():
        wrong = model(found).argmax(1) != y
        clean_wrong = model(x).argmax(1) != y
    assert (norms[clean_wrong] == 0).all() and (norms[~clean_wrong] > 0).all()
    hit = norms.isfinite()
    assert hit.float().mean() > 0.95  # a standard model: nearly every point has a near adversarial
    assert wrong[hit].all() and torch.allclose(lp_norm(found - x, norm)[hit], norms[hit], atol=1e-6)
    assert found.min() >= 0 and found.max() <= 1
    eps = norms[hit & ~clean_wrong].median().item()
    x_adv = FMN(norm, eps=eps, steps=50)(model, x, y)  # the fixed-ε attack: within ε or x
    assert (lp_norm(x_adv - x, norm) <= eps + 1e-6).all()
    assert accuracy(model, x_adv, y) == pytest.approx((norms > eps).float().mean().item(), abs=1e-6)


def test_the_minimal_norm_curve_agrees_with_the_standard_ensemble(trained_digits):
    """A minimum-norm attack is at most as strong as the ensemble at each ε: its curve is never
    below the ensemble's (beyond 2 points of noise, or FMN claims what is not there), and not far
    above it (or FMN is too weak to be a useful second opinion)."""
    model, _, ds = trained_digits
    x, y = ds.x_test[:96], ds.y_test[:96]
    clean = accuracy(model, x, y)
    for norm, grid in (("linf", [0.1]), ("l2", [0.5])):
        result = minimal_norm_curve(model, x, y, norm=norm, eps_grid=grid, steps=100)
        assert result.unconfirmed == 0 and result.clean_acc == pytest.approx(clean)
        curve = {p.eps: p.robust_acc for p in result.curve}
        assert curve[0.0] == pytest.approx(clean)
        for eps in grid:
            protocol = ProtocolSpec(norm=norm, eps=eps, images=96, steps=10, queries=300)
            torch.manual_seed(0)
            with torch.no_grad():
                correct = model(x).argmax(1) == y
            robust, _ = attack_in_order(model, x, y, protocol.attack_specs(), correct)
            ensemble = robust.float().mean().item()
            assert curve[eps] >= ensemble - 0.02, f"{norm} ε={eps}: FMN {curve[eps]} below the ensemble {ensemble}"
            assert curve[eps] <= ensemble + 0.12, f"{norm} ε={eps}: FMN {curve[eps]} far above {ensemble}"
            assert curve[eps] < clean - 0.1


def test_fmn_refuses_bad_input_and_is_built_by_name(trained_digits):
    with pytest.raises(ValueError, match="restarts"):
        AttackSpec(name="fmn", restarts=2)
    with pytest.raises(ValueError, match="norm"):
        FMN("l0")
    model, _, ds = trained_digits
    with pytest.raises(ValueError, match="eps_grid"):
        minimal_norm_curve(model, ds.x_test[:4], ds.y_test[:4], norm="l2", eps_grid=[])
    assert isinstance(build_attack(AttackSpec(name="fmn", norm="l2", eps=0.5)), FMN)
