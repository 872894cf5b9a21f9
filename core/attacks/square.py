"""Square Attack (Andriushchenko et al. 2020, "Square Attack: a query-efficient black-box
adversarial attack via random search"): score-based, no gradients, so gradient masking cannot fool
it. It is the black-box member of the ensemble.

Random search on the margin m(x) = z_y − max_{i≠y} z_i: each query changes the perturbation in one
random square window (side √(p·H·W), with p halving on a fixed schedule as queries go by), and the
change is kept when the margin falls. A point is broken when m < 0, and then leaves the batch.
- L∞: start from vertical stripes of ±ε; a window is set to ±ε per channel.
- L2: start from a grid of ±"meta" patterns (Eq. 3 of the paper: concentric rectangles with weights
  1/(r+1)², opposite signs in the two halves); a query moves the mass of a second window into the
  first, rescaled so that ‖δ‖₂ stays ε.
The window position is drawn once per query for the whole batch (each point still sees a uniform
random window at every query), as in the reference implementation. On a randomized model
(`every_iteration`) no point leaves at a margin one noisy pass put below 0: every point searches
for all its queries, and between restarts a point leaves when it is wrong in most of `judge_passes`
passes.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from core.attacks.judge import misclassified
from core.attacks.losses import margin
from core.attacks.threat import L2Ball, LinfBall
from core.modes import eval_mode

P_INIT = 0.8  # the initial share of pixels a window covers
# (queries out of 10,000 up to which, the divisor of P_INIT): the paper's schedule, rescaled to the budget
P_SCHEDULE = ((10, 1), (50, 2), (200, 4), (500, 8), (1000, 16), (2000, 32), (4000, 64), (6000, 128), (8000, 256))


def p_at(query: int, budget: int) -> float:
    """The share of pixels the window covers at `query` of `budget` queries."""
    scaled = int(query / budget * 10_000)
    for bound, divisor in P_SCHEDULE:
        if scaled <= bound:
            return P_INIT / divisor
    return P_INIT / 512


def _signs(*shape: int, device) -> torch.Tensor:
    return torch.randint(0, 2, shape, device=device).float() * 2 - 1


def meta_pattern(side: int, device=None) -> torch.Tensor:
    """The L2 square's s×s pattern: two halves of concentric rectangles with weights 1/(r+1)²,
    of opposite sign, with unit L2 norm; randomly transposed."""

    def rectangles(h: int, w: int) -> torch.Tensor:
        out = torch.zeros(h, w, device=device)
        ch, cw = h // 2, w // 2
        for r in range(max(ch, cw) + 1):
            out[max(ch - r, 0) : min(ch + r + 1, h), max(cw - r, 0) : min(cw + r + 1, w)] += 1.0 / (r + 1) ** 2
        return out / out.norm().clamp_min(1e-12)

    half = side // 2
    pattern = torch.cat([rectangles(half, side), -rectangles(side - half, side)]) if half else rectangles(side, side)
    pattern = pattern / pattern.norm().clamp_min(1e-12)
    return pattern.T if torch.rand(()) > 0.5 else pattern


class Square:
    """`attack(model, x, y) -> x_adv` by random search (no gradients).

    Args:
        threat: `LinfBall` or `L2Ball`.
        queries: model evaluations per point and restart (default 5,000, the paper's budget).
        restarts: independent runs on the points still standing.
        every_iteration: every point runs all its queries (a randomized model: no stop at one
            lucky pass), and `judge_passes` passes decide between restarts whether it still stands.
    """

    def __init__(
        self, threat, *, queries: int = 5000, restarts: int = 1, every_iteration: bool = False, judge_passes: int = 1
    ):
        if queries < 1 or restarts < 1 or judge_passes < 1:
            raise ValueError("queries, restarts and judge_passes must be >= 1")
        if not isinstance(threat, LinfBall | L2Ball):
            raise ValueError("Square supports the L∞ and L2 balls")
        self.threat, self.queries, self.restarts = threat, queries, restarts
        self.every_iteration, self.judge_passes = every_iteration, judge_passes

    @property
    def eps(self) -> float:
        return self.threat.eps

    @torch.no_grad()
    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        x, y = x.detach(), y.detach()
        x_adv = x.clone()
        if self.eps == 0:
            return x_adv
        with eval_mode(model):
            standing = model(x).argmax(1) == y
            if self.every_iteration:  # one clean pass of a randomized model is one draw: attack all
                standing = torch.ones_like(standing)
            for _ in range(self.restarts):
                idx = standing.nonzero().flatten()
                if len(idx) == 0:
                    break
                fooled, found = self._run(model, x[idx], y[idx])
                if self.every_iteration:  # the lowest margin found, broken in expectation
                    x_adv[idx] = found
                    fooled = misclassified(model, found, y[idx], self.judge_passes)
                else:
                    x_adv[idx[fooled]] = found[fooled]
                standing[idx[fooled]] = False
        return x_adv

    def _run(self, model, x, y) -> tuple[torch.Tensor, torch.Tensor]:
        n, c, h, w = x.shape
        linf = isinstance(self.threat, LinfBall)
        delta = self._start(x)
        best = (x + delta).clamp(0, 1)
        m = margin(model(best), y)
        active = torch.arange(n, device=x.device) if self.every_iteration else (m > 0).nonzero().flatten()
        for q in range(1, self.queries):
            if len(active) == 0:
                break
            side = max(int(round(math.sqrt(p_at(q, self.queries) * h * w))), 1 if linf else 3)
            side = min(side if linf or side % 2 else side + 1, h, w)
            xa, ba = x[active], best[active]
            candidate = self._linf_step(xa, ba, side) if linf else self._l2_step(xa, ba, side)
            m_new = margin(model(candidate), y[active])
            better = m_new < m[active]
            best[active[better]], m[active[better]] = candidate[better], m_new[better]
            if not self.every_iteration:
                active = active[m[active] > 0]
        return m <= 0, best

    def _start(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        eps = self.eps
        if isinstance(self.threat, LinfBall):
            return eps * _signs(n, c, 1, w, device=x.device).expand(n, c, h, w)
        side = max(h // 5, 1)
        delta = torch.zeros_like(x)
        start = (h - side * 5) // 2
        for i in range(start, h - side + 1, side):
            for j in range(start, w - side + 1, side):
                pattern = meta_pattern(side, x.device).view(1, 1, side, side)
                delta[:, :, i : i + side, j : j + side] += pattern * _signs(n, c, 1, 1, device=x.device)
        return delta / delta.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, 1, 1, 1) * eps

    def _window(self, h: int, w: int, side: int) -> tuple[int, int]:
        return int(torch.randint(0, h - side + 1, ())), int(torch.randint(0, w - side + 1, ()))

    def _linf_step(self, x: torch.Tensor, best: torch.Tensor, side: int) -> torch.Tensor:
        """Set one window to x ± ε per channel (then back into the ball and the box)."""
        n, c, h, w = x.shape
        i, j = self._window(h, w, side)
        candidate = best.clone()
        signs = _signs(n, c, 1, 1, device=x.device) * self.eps
        candidate[:, :, i : i + side, j : j + side] = x[:, :, i : i + side, j : j + side] + signs
        return candidate.clamp(0, 1)

    def _l2_step(self, x: torch.Tensor, best: torch.Tensor, side: int) -> torch.Tensor:
        """Move the perturbation's mass from a second window into the first, plus a new ±meta
        pattern there, rescaled so that the image's ‖δ‖₂ stays at most ε."""
        n, c, h, w = x.shape
        eps = self.eps
        delta = best - x
        (i, j), (i2, j2) = self._window(h, w, side), self._window(h, w, side)
        both = torch.zeros(1, 1, h, w, device=x.device)
        both[..., i : i + side, j : j + side] = 1
        both[..., i2 : i2 + side, j2 : j2 + side] = 1
        window = delta[:, :, i : i + side, j : j + side]
        norm_window = window.flatten(2).norm(dim=2).view(n, c, 1, 1)
        norm_both = (delta * both).flatten(2).norm(dim=2).view(n, c, 1, 1)
        norm_image = delta.flatten(1).norm(dim=1).view(n, 1, 1, 1)
        pattern = meta_pattern(side, x.device).view(1, 1, side, side) * _signs(n, c, 1, 1, device=x.device)
        new = pattern + window / norm_window.clamp_min(1e-12)
        room = ((eps**2 - norm_image**2).clamp_min(0) / c + norm_both**2).sqrt()  # the budget the two windows had
        new = new / new.flatten(2).norm(dim=2).view(n, c, 1, 1).clamp_min(1e-12) * room
        delta = delta.clone()
        delta[:, :, i2 : i2 + side, j2 : j2 + side] = 0
        delta[:, :, i : i + side, j : j + side] = new
        delta = delta / delta.flatten(1).norm(dim=1).view(n, 1, 1, 1).clamp_min(1e-12) * eps
        return (x + delta).clamp(0, 1)
