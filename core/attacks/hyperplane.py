"""The projection FAB takes at every step (Croce & Hein 2020, "Minimally distorted adversarial
examples with a fast adaptive boundary attack"; the paper's box-constrained projection onto a
hyperplane, which it solves by a bisection): the smallest perturbation that carries a point t
of the box onto a hyperplane,

    d* = argmin_d ‖d‖_p   subject to   ⟨w, t + d⟩ = b,   0 ≤ t + d ≤ 1,        p ∈ {∞, 2},

for every row of a batch at once, solved exactly (no inner iterations).

Why the closed form holds. Flip the signs of w and b so that c = ⟨w, t⟩ − b ≥ 0: the constraint
asks ⟨w, d⟩ = −c, so each coordinate moves against sign(w_i), by at most its room in the box,
r_i = t_i where w_i > 0 and 1 − t_i where w_i < 0.
- L∞: for a radius λ the most ⟨w, d⟩ can fall with |d_i| ≤ λ is g(λ) = Σ_i |w_i|·min(λ, r_i),
  reached by |d_i| = min(λ, r_i); the least λ with g(λ) = c is the optimum.
- L2: the problem is a convex QP; its KKT conditions give d_i = −sign(w_i)·min(μ|w_i|, r_i) for a
  multiplier μ ≥ 0 with g(μ) = Σ_i |w_i|·min(μ|w_i|, r_i) = c.
In both cases g(s) = Σ_i min(s·a_i, u_i) with a_i = |w_i| (L∞) or w_i² (L2) and u_i = |w_i|·r_i:
continuous, piecewise linear and nondecreasing, with a kink at s_i = u_i / a_i. Sorting the kinks,
g at each of them is a cumulative sum; the segment where g crosses c is found by counting, and s
is solved on it in closed form: s = (c − Σ_{saturated} u_j) / Σ_{not saturated} a_j.

When even g(∞) = Σ_i u_i < c, no point of the box lies on the hyperplane; the answer is then the
box point nearest to it (every coordinate moved to its bound against sign(w_i)), which is what
FAB's step needs: progress toward the decision boundary.
"""

from __future__ import annotations

from typing import Literal

import torch

PlaneNorm = Literal["linf", "l2"]


def project_onto_hyperplane(t: torch.Tensor, w: torch.Tensor, b: torch.Tensor, norm: PlaneNorm) -> torch.Tensor:
    """The minimal-norm `d` with ⟨w, t + d⟩ = b and t + d in [0, 1], row by row.

    Args:
        t: points, shape (n, d), inside [0, 1].
        w: the hyperplanes' normals, shape (n, d).
        b: their offsets, shape (n,).
        norm: `linf` or `l2`, the norm of d that is minimised.

    Returns:
        d, shape (n, d). Where no point of the box reaches the hyperplane, the move to the box's
        point nearest to it.
    """
    if norm not in ("linf", "l2"):
        raise ValueError(f"norm must be linf or l2, got {norm!r}")
    if t.dim() != 2 or w.shape != t.shape or b.shape != t.shape[:1]:
        shapes = f"{tuple(t.shape)}, {tuple(w.shape)}, {tuple(b.shape)}"
        raise ValueError(f"need t and w of shape (n, d) and b of shape (n,), got {shapes}")
    c = (w * t).sum(1) - b
    w = torch.where(c[:, None] < 0, -w, w)  # now ⟨w, d⟩ = −|c| is asked: every move is against sign(w)
    c = c.abs()
    aw = w.abs()
    moves = aw > torch.finfo(t.dtype).tiny ** 0.5  # a coordinate with no weight does not move
    room = torch.where(w > 0, t, 1 - t).clamp_min(0)
    a = aw if norm == "linf" else aw * aw
    u = aw * room
    kink = torch.where(moves, room if norm == "linf" else room / aw.clamp_min(1e-30), torch.zeros_like(t))
    a, u = torch.where(moves, a, torch.zeros_like(a)), torch.where(moves, u, torch.zeros_like(u))

    order = kink.argsort(1)
    kink_s, a_s, u_s = kink.gather(1, order), a.gather(1, order), u.gather(1, order)
    saturated_u = u_s.cumsum(1) - u_s  # Σ_{j<k} u_(j): the coordinates already at their bound
    free_a = a_s.flip(1).cumsum(1).flip(1)  # Σ_{j≥k} a_(j): the ones still growing with s
    g_at_kinks = saturated_u + kink_s * free_a
    k = (g_at_kinks < c[:, None]).sum(1)  # the first kink where g reaches c (g is nondecreasing)
    feasible = k < t.shape[1]
    kk = k.clamp(max=t.shape[1] - 1)[:, None]
    s = (c - saturated_u.gather(1, kk)[:, 0]) / free_a.gather(1, kk)[:, 0].clamp_min(torch.finfo(t.dtype).tiny)
    s = torch.where(feasible, s.clamp_min(0), torch.full_like(s, float("inf")))[:, None]

    step = s if norm == "linf" else s * aw
    size = torch.where(moves, torch.minimum(step, room), torch.zeros_like(t))
    return -torch.sign(w) * size


def lp_norm(delta: torch.Tensor, norm: str) -> torch.Tensor:
    """Per-sample ‖delta‖_p of a batch of any shape, for `linf`, `l2` or `l1`."""
    flat = delta.flatten(1)
    if norm == "linf":
        return flat.abs().amax(1)
    if norm == "l2":
        return flat.norm(dim=1)
    if norm == "l1":
        return flat.abs().sum(1)
    raise ValueError(f"norm must be linf, l2 or l1, got {norm!r}")
