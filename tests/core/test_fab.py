"""FAB-T: the projection it takes at every step, and the least-norm adversarials it keeps."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from scipy.optimize import linprog

from core.attacks import FAB, build_attack
from core.attacks.hyperplane import lp_norm, project_onto_hyperplane
from core.attacks.threat import L2Ball, LinfBall
from core.contract.attack_specs import AttackSpec
from core.evaluation import accuracy


def _least_norm_by_solver(t: np.ndarray, w: np.ndarray, b: float, norm: str) -> float:
    """min ‖d‖ s.t. ⟨w, t + d⟩ = b, 0 ≤ t + d ≤ 1, without the projection's reasoning: for L∞ an
    LP (variables d and λ, |d_i| ≤ λ); for L2 a brute force over which coordinates sit at a
    bound (lower, upper) and which are free (d_F = −μ w_F, μ fixed by the constraint), every
    feasible candidate a point of the set, the KKT point among them."""
    n = len(t)
    lo, hi = -t, 1 - t
    if norm == "linf":
        a_ub = np.vstack([np.c_[np.eye(n), -np.ones(n)], np.c_[-np.eye(n), -np.ones(n)]])
        res = linprog(
            np.r_[np.zeros(n), 1.0],
            A_ub=a_ub,
            b_ub=np.zeros(2 * n),
            A_eq=np.r_[w, 0.0][None],
            b_eq=[b - w @ t],
            bounds=[*zip(lo, hi, strict=True), (0, None)],
        )
        assert res.status == 0
        return res.fun
    best = np.inf
    for assignment in itertools.product((0, 1, 2), repeat=n):  # 0 free, 1 at lower, 2 at upper
        a = np.array(assignment)
        d = np.where(a == 1, lo, np.where(a == 2, hi, 0.0))
        free = a == 0
        rest = b - w @ t - w[~free] @ d[~free]
        if not free.any() or w[free] @ w[free] == 0:
            continue
        d[free] = rest / (w[free] @ w[free]) * w[free]
        if (d >= lo - 1e-12).all() and (d <= hi + 1e-12).all():
            best = min(best, float(np.linalg.norm(d)))
    return best


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_the_projection_lands_on_the_hyperplane_in_the_box_with_the_least_norm(norm):
    g = torch.Generator().manual_seed(0)
    n, dim = 60, 4
    t = torch.rand(n, dim, generator=g, dtype=torch.float64)
    w = torch.randn(n, dim, generator=g, dtype=torch.float64)
    w[0, 1] = 0.0  # a coordinate with no weight must not move
    t[1, 2] = 0.0  # a coordinate on the box's bound
    b = (w * torch.rand(n, dim, generator=g, dtype=torch.float64)).sum(1)  # a plane through the box
    d = project_onto_hyperplane(t, w, b, norm)
    assert ((w * (t + d)).sum(1) - b).abs().max() < 1e-10
    assert (t + d).min() >= -1e-12 and (t + d).max() <= 1 + 1e-12
    assert d[0, 1] == 0
    ours = lp_norm(d, norm)
    for i in range(n):
        best = _least_norm_by_solver(t[i].numpy(), w[i].numpy(), b[i].item(), norm)
        assert ours[i].item() <= best + 1e-7, f"row {i}: {ours[i].item()} > the solver's {best}"
        assert ours[i].item() >= best - 1e-6  # and it is a feasible point, so no better than the optimum
    # a plane the box cannot reach: the box's nearest corner (each coordinate at its bound against w)
    far = (w.clamp_min(0)).sum(1) + 1.0
    corner = project_onto_hyperplane(t, w, far, norm) + t
    assert torch.allclose(corner[w != 0], (w > 0).to(t.dtype)[w != 0])
    with pytest.raises(ValueError, match="norm"):
        project_onto_hyperplane(t, w, b, "l1")


def test_the_projection_is_accurate_in_float32_at_image_size():
    g = torch.Generator().manual_seed(1)
    t, w = torch.rand(8, 784, generator=g), torch.randn(8, 784, generator=g)
    b = (w * torch.rand(8, 784, generator=g)).sum(1)
    for norm in ("linf", "l2"):
        d = project_onto_hyperplane(t, w, b, norm)
        assert ((w * (t + d)).sum(1) - b).abs().max() < 1e-3 * w.abs().sum(1).max()
        assert (t + d).min() >= 0 and (t + d).max() <= 1


@pytest.mark.parametrize("norm,eps", [("linf", 0.1), ("l2", 0.5)])
def test_fab_t_is_close_to_apgd_t_and_stays_in_the_ball(trained_digits, norm, eps):
    model, _, ds = trained_digits
    x, y = ds.x_test[:96], ds.y_test[:96]
    spec = AttackSpec(name="fab-t", norm=norm, eps=eps, steps=20, targets=3)
    torch.manual_seed(0)
    fab = build_attack(spec)(model, x, y)
    torch.manual_seed(0)
    apgd = build_attack(spec.model_copy(update={"name": "apgd-t"}))(model, x, y)
    assert (lp_norm(fab - x, norm) <= eps + 1e-6).all() and fab.min() >= 0 and fab.max() <= 1
    clean, acc_fab, acc_apgd = accuracy(model, x, y), accuracy(model, fab, y), accuracy(model, apgd, y)
    assert acc_fab <= clean - 0.25  # it breaks a substantial share of a standard model
    assert abs(acc_fab - acc_apgd) <= 0.05  # as strong as APGD-T, within a few points
    with torch.no_grad():
        moved = lp_norm(fab - x, norm) > 0
        assert (model(fab[moved]).argmax(1) != y[moved]).all()  # it only returns adversarials
    assert accuracy(model, build_attack(spec.model_copy(update={"eps": 0.0}))(model, x, y), y) == clean


def test_fab_keeps_each_points_least_norm_adversarial(trained_digits):
    model, _, ds = trained_digits
    x, y = ds.x_test[:48], ds.y_test[:48]
    with torch.no_grad():
        logits = model(x)
    target = logits.scatter(1, y[:, None], float("-inf")).argmax(1)
    fab = FAB(LinfBall(1.0), steps=20)
    found, norms = fab.minimal(model.eval(), x, y, target)
    hit = norms.isfinite()
    assert hit.float().mean() > 0.9
    assert torch.allclose(lp_norm(found - x, "linf")[hit], norms[hit])
    with torch.no_grad():
        assert (model(found[hit]).argmax(1) != y[hit]).all()
    # more iterations can only lower the least norm of the same deterministic run
    longer, longer_norms = FAB(LinfBall(1.0), steps=40).minimal(model, x, y, target)
    assert (longer_norms[hit] <= norms[hit] + 1e-6).all()
    with pytest.raises(ValueError, match="L∞ and L2"):
        FAB(object())
    built = build_attack(AttackSpec(name="fab-t", norm="l2", eps=0.5, steps=7, targets=4))
    assert isinstance(built, FAB) and isinstance(built.threat, L2Ball) and (built.steps, built.targets) == (7, 4)
