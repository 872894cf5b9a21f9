"""FAB-T, the targeted Fast Adaptive Boundary attack (Croce & Hein 2020, "Minimally distorted
adversarial examples with a fast adaptive boundary attack"; the targeted version is the third
attack of AutoAttack's standard version, Croce & Hein 2020, "Reliable evaluation ...").

FAB looks for the adversarial example of least norm. For a target class t, each step linearises
the decision boundary between the label y and t at the current iterate x^(i),

    π:  f_t(x^(i)) − f_y(x^(i)) + ⟨∇(f_t − f_y)(x^(i)), z − x^(i)⟩ = 0,

projects both the iterate and the original point x_orig onto π inside the box
(`core.attacks.hyperplane`: δ^(i) = proj_p(x^(i), π) − x^(i), δ_orig = proj_p(x_orig, π) − x_orig),
and moves to a convex combination of the two projections, overshooting by η:

    x^(i+1) = clip_[0,1]((1 − α)(x^(i) + η δ^(i)) + α (x_orig + η δ_orig)),
    α = min(‖δ^(i)‖_p / (‖δ^(i)‖_p + ‖δ_orig‖_p), α_max),

so that a point close to x_orig's own projection is pulled toward x_orig (small norm). When
x^(i+1) is misclassified (any wrong class, not only t), it is recorded if its norm is the least so
far, and pushed back toward x_orig: x^(i+1) ← x_orig + β (x^(i+1) − x_orig) (the backward step).

As in AutoAttack: 100 iterations, one run per target for the 9 most likely wrong classes of the
clean input, 1 restart (a later restart starts from a random point at half the radius ε),
α_max = 0.1, η = 1.05, β = 0.9. A run attacks every point for all its iterations; between runs,
a point whose least adversarial norm is within ε leaves the batch. `attack(model, x, y)` returns
that adversarial where its norm is at most ε and x elsewhere, so the result is always inside the
ε-ball and the box.
"""

from __future__ import annotations

import torch
from torch import nn

from core.activations import gradient_phase
from core.attacks.hyperplane import lp_norm, project_onto_hyperplane
from core.attacks.judge import misclassified
from core.attacks.threat import L2Ball, LinfBall
from core.modes import eval_mode

ALPHA_MAX, ETA, BETA = 0.1, 1.05, 0.9  # the reference's defaults


class FAB:
    """`attack(model, x, y) -> x_adv` with the targeted FAB attack (FAB-T).

    Args:
        threat: `LinfBall` or `L2Ball`; its ε decides which adversarials count (and the radius
            of a restart's random start).
        steps: iterations per run (default 100).
        targets: runs per point, one for each of the most likely wrong classes (default 9).
        restarts: runs per target; the first starts at x, later ones at a random point of the
            ball of radius ε/2 (default 1).
        alpha_max, eta, beta: α_max, the overshoot η and the backward step β (0.1, 1.05, 0.9).
        eot: forward/backward passes whose logit differences and gradients are averaged at each
            linearisation, for randomized models (default 1).
        judge_passes: between runs a point leaves only when, besides its norm being within ε, it
            is misclassified in more than half of this many passes (1: one pass; for randomized
            models, whose clean points are then all attacked).
    """

    def __init__(
        self,
        threat,
        *,
        steps: int = 100,
        targets: int = 9,
        restarts: int = 1,
        alpha_max: float = ALPHA_MAX,
        eta: float = ETA,
        beta: float = BETA,
        eot: int = 1,
        judge_passes: int = 1,
    ):
        if not isinstance(threat, LinfBall | L2Ball):
            raise ValueError("FAB supports the L∞ and L2 balls")
        if steps < 1 or targets < 1 or restarts < 1 or eot < 1 or judge_passes < 1:
            raise ValueError("steps, targets, restarts, eot and judge_passes must be >= 1")
        if not 0 < alpha_max <= 1 or eta < 1 or not 0 < beta < 1:
            raise ValueError("need 0 < alpha_max <= 1, eta >= 1 and 0 < beta < 1")
        self.threat, self.steps, self.targets, self.restarts = threat, steps, targets, restarts
        self.alpha_max, self.eta, self.beta, self.eot, self.judge_passes = alpha_max, eta, beta, eot, judge_passes
        self.norm = "linf" if isinstance(threat, LinfBall) else "l2"

    @property
    def eps(self) -> float:
        return self.threat.eps

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        x, y = x.detach(), y.detach()
        x_adv = x.clone()
        if self.eps == 0:
            return x_adv
        with eval_mode(model), gradient_phase(model, "attack"):
            with torch.no_grad():
                clean_logits = model(x)
            standing = clean_logits.argmax(1) == y
            if self.judge_passes > 1:  # a randomized model: one clean pass is one draw, attack all
                standing = torch.ones_like(standing)
            # the rank-th most likely class other than the label, for rank = 1, 2, ...
            ranked = clean_logits.scatter(1, y[:, None], float("-inf")).argsort(1, descending=True)
            for rank in range(min(self.targets, clean_logits.shape[1] - 1)):
                for restart in range(self.restarts):
                    idx = standing.nonzero().flatten()
                    if len(idx) == 0:
                        return x_adv
                    found, norms = self.minimal(model, x[idx], y[idx], ranked[idx, rank], random_start=restart > 0)
                    fooled = norms <= self.eps
                    if self.judge_passes > 1:
                        fooled &= misclassified(model, found, y[idx], self.judge_passes)
                    x_adv[idx[fooled]] = found[fooled]
                    standing[idx[fooled]] = False
        return x_adv

    def minimal(
        self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, target: torch.Tensor, *, random_start: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One FAB run toward `target`: per point the least-norm adversarial found and its norm
        (∞ and x itself where no iterate was misclassified). The model's mode is the caller's."""
        n, view = len(x), (-1,) + (1,) * (x.dim() - 1)
        x_orig = x.detach()
        x_i = x_orig.clone()
        if random_start:
            x_i = (x_orig + into_half_ball(self.threat.random_start(x_orig), self.norm, self.eps)).clamp(0, 1)
        best, best_norm = x_orig.clone(), torch.full((n,), float("inf"), device=x.device, dtype=x.dtype)
        for _ in range(self.steps):
            diff, grad = self._linearise(model, x_i, y, target)
            with torch.no_grad():
                w = grad.flatten(1)
                b = (w * x_i.flatten(1)).sum(1) - diff  # π: ⟨w, z⟩ = b
                d = project_onto_hyperplane(
                    torch.cat((x_i.flatten(1), x_orig.flatten(1))), torch.cat((w, w)), torch.cat((b, b)), self.norm
                )
                d_i, d_orig = d[:n].view_as(x_i), d[n:].view_as(x_i)
                size_i = lp_norm(d_i, self.norm).clamp_min(1e-8)
                size_orig = lp_norm(d_orig, self.norm).clamp_min(1e-8)
                alpha = (size_i / (size_i + size_orig)).clamp(max=self.alpha_max).view(view)
                x_i = ((1 - alpha) * (x_i + self.eta * d_i) + alpha * (x_orig + self.eta * d_orig)).clamp(0, 1)
                adv = model(x_i).argmax(1) != y
                dist = lp_norm(x_i - x_orig, self.norm)
                better = adv & (dist < best_norm)
                best[better], best_norm[better] = x_i[better], dist[better]
                x_i[adv] = x_orig[adv] + self.beta * (x_i[adv] - x_orig[adv])  # the backward step
        return best, best_norm

    def _linearise(self, model, x_i, y, target) -> tuple[torch.Tensor, torch.Tensor]:
        """f_t − f_y at x_i and its input gradient, each averaged over `eot` passes."""
        diff, grad = torch.zeros(len(x_i), device=x_i.device, dtype=x_i.dtype), torch.zeros_like(x_i)
        rows = torch.arange(len(x_i), device=x_i.device)
        for _ in range(self.eot):
            x_req = x_i.detach().requires_grad_(True)
            logits = model(x_req)
            d = logits[rows, target] - logits[rows, y]
            (g,) = torch.autograd.grad(d.sum(), x_req)
            diff += d.detach()
            grad += g
        return diff / self.eot, grad / self.eot


def into_half_ball(delta: torch.Tensor, norm: str, eps: float) -> torch.Tensor:
    """A random start rescaled to norm ε/2 (the reference's restarts start there)."""
    size = lp_norm(delta, norm).clamp_min(1e-12).view(-1, *([1] * (delta.dim() - 1)))
    return delta / size * (eps / 2)
