"""Projected gradient descent (Madry et al. 2018); FGSM (Goodfellow et al. 2015) is its one-step
case. Each step ascends the loss, δ ← Π_{B(ε) ∩ box}(δ + α·dir(∇_δ L(f(x+δ), y))). The loss is
cross-entropy unless another is given: TRADES' inner maximisation and SmoothAdv's are this loop
with their own loss and start (`core.training.objectives`)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from core.activations import gradient_phase
from core.attacks.gradients import averaged_gradient
from core.attacks.losses import cross_entropy
from core.attacks.threat import into_box
from core.modes import eval_mode


class PGD:
    """`attack(model, x, y) -> x_adv`, the per-sample worst case over `restarts` runs.

    Args:
        threat: a constraint object (`LinfBall`, `L2Ball`).
        steps: iterations per run (1 with `step_size = ε` is FGSM).
        step_size: α.
        random_start: start each run from a random point of the ball (else from x).
        restarts: independent runs; a sample keeps the run that fools the model, else the one
            with the highest loss.
        early_stop: stop moving a sample once the model misclassifies it, and keep that point.
            Right for measuring robust accuracy (a fooled point stays fooled, and the work goes
            to the points still standing); wrong for adversarial training, which wants the
            highest-loss point. Default False.
        eot: average each step's gradient over this many forward passes (expectation over
            transformation, for randomized models). Default 1.
        loss: `loss(logits, y) -> per-sample loss` to ascend (default cross-entropy); `y` is what
            the attack is called with (labels, or TRADES' clean probabilities).
        start: `start(x) -> δ`, the first point of each run (default: a uniform point of the ball
            with `random_start`, else 0); projected onto the ball and the box.
    """

    def __init__(
        self,
        threat,
        *,
        steps: int,
        step_size: float,
        random_start: bool,
        restarts: int = 1,
        early_stop: bool = False,
        eot: int = 1,
        loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = cross_entropy,
        start: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ):
        if steps < 1 or restarts < 1 or eot < 1 or step_size <= 0:
            raise ValueError("steps, restarts and eot must be >= 1 and step_size > 0")
        self.eot, self.loss, self.start = eot, loss, start
        self.threat, self.steps, self.step_size = threat, steps, step_size
        self.random_start, self.restarts, self.early_stop = random_start, restarts, early_stop

    @property
    def eps(self) -> float:
        return self.threat.eps

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.threat.eps == 0:
            return x.detach().clone()
        with eval_mode(model), gradient_phase(model, "attack"):
            best = self._run(model, x, y)
            if self.restarts == 1:
                return best
            best_score = self._score(model, best, y)
            for _ in range(self.restarts - 1):
                x_adv = self._run(model, x, y)
                score = self._score(model, x_adv, y)
                better = score > best_score
                best[better], best_score[better] = x_adv[better], score[better]
            return best

    def _run(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        x = x.detach()
        if self.start is not None:
            delta = self.threat.project(self.start(x))
        else:
            delta = self.threat.random_start(x) if self.random_start else torch.zeros_like(x)
        delta = into_box(x, delta)
        if self.early_stop:
            return self._run_early_stop(model, x, y, delta)
        for _ in range(self.steps):
            grad, _ = self._gradient(model, x, y, delta)
            with torch.no_grad():
                delta = into_box(x, self.threat.project(self.threat.step(delta, grad, self.step_size)))
        return (x + delta).detach()

    def _run_early_stop(self, model, x, y, delta):
        """The same iteration on the still-correct samples only; fooled ones keep their point."""
        delta = delta.clone()
        active = torch.arange(len(x), device=x.device)
        for _ in range(self.steps):
            xa, ya, da = x[active], y[active], delta[active]
            grad, logits = self._gradient(model, xa, ya, da)
            with torch.no_grad():
                going = logits.argmax(1) == ya
                da = into_box(xa, self.threat.project(self.threat.step(da, grad, self.step_size)))
                delta[active[going]] = da[going]
                active = active[going]
            if len(active) == 0:
                break
        return (x + delta).detach()

    def _gradient(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, delta: torch.Tensor):
        """∇_δ of the summed loss at x + δ, averaged over `eot` passes, and the last logits."""
        _, grad, logits = averaged_gradient(model, x + delta, lambda z: self.loss(z, y), self.eot)
        return grad, logits

    @torch.no_grad()
    def _score(self, model: nn.Module, x_adv: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Per-sample badness: the loss, and where `y` are labels, any misclassification beats any loss."""
        logits = model(x_adv)
        loss = self.loss(logits, y).float()
        return loss + 1e6 * (logits.argmax(1) != y).float() if y.dtype == torch.long else loss
