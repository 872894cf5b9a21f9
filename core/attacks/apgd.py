"""Auto-PGD (Croce & Hein 2020, "Reliable evaluation of adversarial robustness with an ensemble of
diverse parameter-free attacks", Alg. 1): PGD with momentum whose step size halves by itself.

One run, for each point (all per-sample):
    η⁰ = 2ε;  z^{k+1} = Π(x^k + η^k·dir(∇f(x^k)))
    x^{k+1} = Π(x^k + α(z^{k+1} − x^k) + (1 − α)(x^k − x^{k−1})),  α = 0.75 (α = 1 at k = 0)
At checkpoints w_j (after 22 % of the iterations, then windows shrinking by 3 % to at least 6 %):
η is halved and x restarts from the best point x_max when
    (1) f increased in at most ρ = 75 % of the window's steps, or
    (2) η was not halved at the last checkpoint and f_max has not improved since.
Π projects onto the ε-ball ∩ [0, 1]; dir is sign(g) for L∞ and g/‖g‖₂ for L2.

Losses: cross-entropy (APGD-CE), DLR (APGD-DLR) and targeted DLR (APGD-T, one run per target: the
`targets` most likely wrong classes of the clean input). A point is broken once any iterate fools
the model; from then on it leaves the batch (the work goes to the points still standing).
EOT (`eot` > 1) averages the loss's gradient over that many forward passes, for randomized models.

For a randomized model one fooling iterate is one lucky draw: with `every_iteration` every point
runs all its iterations, the last fooling iterate is kept (as the reference implementation
does; a point no iterate fooled gets its highest-loss iterate), and between runs a point leaves
only when it is broken in expectation (`core.attacks.judge`).
"""

from __future__ import annotations

import torch
from torch import nn

from core.activations import gradient_phase
from core.attacks.gradients import averaged_gradient
from core.attacks.judge import misclassified
from core.attacks.losses import cross_entropy, dlr, dlr_targeted
from core.attacks.threat import into_box
from core.modes import eval_mode

MOMENTUM = 0.75  # α above
RHO = 0.75  # ρ above


def checkpoints(steps: int) -> list[int]:
    """Iteration counts after which the step size is reviewed (the paper's w_j, as integers)."""
    first, shrink, least = max(int(0.22 * steps), 1), max(int(0.03 * steps), 1), max(int(0.06 * steps), 1)
    marks, window, at = [], first, first
    while at <= steps:
        marks.append(at)
        window = max(window - shrink, least)
        at += window
    return marks


class APGD:
    """`attack(model, x, y) -> x_adv` with Auto-PGD.

    Args:
        threat: a constraint object (`LinfBall`, `L2Ball`).
        steps: iterations per run (default 100, the paper's).
        loss: `ce`, `dlr` or `dlr-targeted` (APGD-T).
        restarts: runs per point (per target for APGD-T), each from a random start; a run only
            attacks the points no earlier run broke.
        targets: APGD-T's number of target classes, the most likely wrong ones (default 9).
        eot: forward/backward passes whose gradients are averaged at each step (default 1).
        every_iteration: run every point for all its iterations and keep its last fooling iterate
            (for randomized models); default False: a point stops at its first fooling iterate.
        judge_passes: with `every_iteration`, the forward passes that judge between runs whether
            a point is broken (by majority; `core.attacks.judge`).
    """

    def __init__(
        self,
        threat,
        *,
        steps: int = 100,
        loss: str = "ce",
        restarts: int = 1,
        targets: int = 9,
        eot: int = 1,
        every_iteration: bool = False,
        judge_passes: int = 1,
    ):
        if steps < 1 or restarts < 1 or targets < 1 or eot < 1:
            raise ValueError("steps, restarts, targets and eot must be >= 1")
        if loss not in ("ce", "dlr", "dlr-targeted"):
            raise ValueError(f"loss must be ce, dlr or dlr-targeted, got {loss!r}")
        self.threat, self.steps, self.loss, self.restarts = threat, steps, loss, restarts
        self.targets, self.eot = targets, eot
        self.every_iteration, self.judge_passes = every_iteration, judge_passes
        self.marks = set(checkpoints(steps))

    @property
    def eps(self) -> float:
        return self.threat.eps

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        x, y = x.detach(), y.detach()
        if self.eps == 0:
            return x.clone()
        with eval_mode(model), gradient_phase(model, "attack"):
            with torch.no_grad():
                clean_logits = model(x)
            standing = clean_logits.argmax(1) == y
            if self.every_iteration:  # one clean pass of a randomized model is one draw: attack all
                standing = torch.ones_like(standing)
            x_adv = x.clone()
            ranks = range(1, min(self.targets, clean_logits.shape[1] - 1) + 1) if self.targeted else [None]
            for rank in ranks:
                for _ in range(self.restarts):
                    idx = standing.nonzero().flatten()
                    if len(idx) == 0:
                        return x_adv
                    target = None
                    if rank is not None:  # the rank-th most likely class other than the label
                        target = clean_logits[idx].scatter(1, y[idx, None], float("-inf")).argsort(1, descending=True)
                        target = target[:, rank - 1]
                    fooled, found = self._run(model, x[idx], y[idx], target)
                    if self.every_iteration:  # broken in expectation, not by one lucky pass
                        x_adv[idx] = found
                        fooled = misclassified(model, found, y[idx], self.judge_passes)
                    else:
                        x_adv[idx[fooled]] = found[fooled]
                    standing[idx[fooled]] = False
            return x_adv

    @property
    def targeted(self) -> bool:
        return self.loss == "dlr-targeted"

    def _loss_and_grad(self, model, x_in, y, target):
        """The per-sample loss, its gradient (averaged over `eot` passes) and the last logits."""

        def loss(logits):
            if self.loss == "ce":
                return cross_entropy(logits, y)
            return dlr(logits, y) if self.loss == "dlr" else dlr_targeted(logits, y, target)

        return averaged_gradient(model, x_in, loss, self.eot)

    def _run(self, model, x, y, target) -> tuple[torch.Tensor, torch.Tensor]:
        """One APGD run; (which points some iterate fooled, that iterate: the last one with
        `every_iteration`, else the first)."""
        n, shape = len(x), (-1,) + (1,) * (x.dim() - 1)
        threat = self.threat
        delta = into_box(x, threat.random_start(x))
        step = torch.full((n,), 2.0 * self.eps, device=x.device, dtype=x.dtype)
        loss, grad, logits = self._loss_and_grad(model, x + delta, y, target)
        fooled = logits.argmax(1) != y
        found = (x + delta).detach().clone()
        best_loss, best_delta, best_grad = loss.clone(), delta.clone(), grad.clone()
        prev_delta, prev_loss = delta.clone(), loss.clone()
        increases = torch.zeros(n, device=x.device)
        loss_at_check, reduced_at_check = best_loss.clone(), torch.ones(n, dtype=torch.bool, device=x.device)
        since_check = 0
        active = torch.arange(n, device=x.device) if self.every_iteration else (~fooled).nonzero().flatten()
        for k in range(self.steps):
            if len(active) == 0:
                break
            a = active
            xa, ya, ta = x[a], y[a], None if target is None else target[a]
            with torch.no_grad():
                alpha = MOMENTUM if k > 0 else 1.0
                d, s = delta[a], step[a].view(shape)
                z = into_box(xa, threat.project(threat.step(d, grad[a], s)))
                new = into_box(xa, threat.project(d + alpha * (z - d) + (1 - alpha) * (d - prev_delta[a])))
                prev_delta[a], delta[a] = d, new
            loss_a, grad_a, logits_a = self._loss_and_grad(model, xa + new, ya, ta)
            with torch.no_grad():
                grad[a] = grad_a
                now_fooled = logits_a.argmax(1) != ya
                found[a[now_fooled]] = (xa + new)[now_fooled]
                fooled[a[now_fooled]] = True
                increases[a] += (loss_a > prev_loss[a]).float()
                prev_loss[a] = loss_a
                better = loss_a > best_loss[a]
                best_loss[a[better]], best_delta[a[better]], best_grad[a[better]] = (
                    loss_a[better],
                    new[better],
                    grad_a[better],
                )
                since_check += 1
                if k + 1 in self.marks:
                    oscillating = increases <= RHO * since_check
                    stalled = ~reduced_at_check & (loss_at_check >= best_loss)
                    reduce = oscillating | stalled
                    step[reduce] /= 2
                    delta[reduce], grad[reduce] = best_delta[reduce], best_grad[reduce]
                    reduced_at_check, loss_at_check = reduce, best_loss.clone()
                    increases.zero_()
                    since_check = 0
                if not self.every_iteration:
                    active = active[~now_fooled]
        if self.every_iteration:  # a point no iterate fooled: its highest-loss iterate, not x itself
            found[~fooled] = (x + best_delta)[~fooled]
        return fooled, found
