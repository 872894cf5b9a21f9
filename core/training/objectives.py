"""What one training batch minimises, per method: the outer step of min_θ E[max_δ L(θ, x+δ, y)].

- `standard`: CE(f(x), y).
- `pgd` (Madry et al. 2018): CE(f(x_adv), y), x_adv from PGD on CE.
- `fast` (Wong et al. 2020): the same with one FGSM step from a random start.
- `trades` (Zhang et al. 2019, Eq. 5): CE(f(x), y) + β·KL(f(x) ‖ f(x_adv)), x_adv maximising that
  KL inside the ε-ball, from x + 0.001·N(0, I).
- `gaussian` (Cohen et al. 2019): CE(f(x + δ), y), δ ~ N(0, σ²I): the base classifier of
  randomized smoothing learns under the noise it is smoothed with.
- `smoothadv` (Salman et al. 2019, SmoothAdv-PGD): x_adv maximises the loss of the soft smoothed
  classifier, −log (1/m)·Σᵢ softmax(f(x' + δᵢ))_y over m fixed noise draws δᵢ, by L2 PGD in the
  ε-ball; the update is CE(f(x_adv + δᵢ), y) averaged over the same draws.

The inner maximisation runs in the probe's `attack` phase, the loss in its `update` phase.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from core.activations import gradient_phase
from core.attacks import build_attack, default_step_size
from core.attacks.pgd import PGD
from core.attacks.threat import THREATS
from core.contract.attack_specs import AttackSpec
from core.contract.specs import TrainSpec
from core.modes import eval_mode

TRADES_INIT = 0.001  # the scale of the random start of TRADES' inner maximisation

BatchLoss = Callable[[nn.Module, torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def _pgd(spec: AttackSpec, **kwargs) -> PGD:
    """PGD at `spec`'s threat, iterations and step size (default 2.5ε/steps), from no random start."""
    step_size = spec.step_size or default_step_size(spec.model_copy(update={"name": "pgd"}))
    return PGD(THREATS[spec.norm](spec.eps), steps=spec.iterations, step_size=step_size, random_start=False, **kwargs)


def _kl_from(logits: torch.Tensor, p_clean: torch.Tensor) -> torch.Tensor:
    """KL(p_clean ‖ softmax(logits)) per sample."""
    return F.kl_div(F.log_softmax(logits.float(), 1), p_clean, reduction="none").sum(1)


def trades_adversary(model: nn.Module, x: torch.Tensor, spec: AttackSpec) -> torch.Tensor:
    """argmax over the ε-ball (∩ box) of KL(f(x) ‖ f(x')): PGD on that loss from x + 0.001·N(0, I)."""
    x = x.detach()
    with eval_mode(model), gradient_phase(model, "attack"), torch.no_grad():
        p_clean = F.softmax(model(x).float(), 1)
    return _pgd(spec, loss=_kl_from, start=lambda x: TRADES_INIT * torch.randn_like(x))(model, x, p_clean)


class SoftSmoothed(nn.Module):
    """log of the soft smoothed classifier's probabilities, mean_i softmax(f(x + δᵢ)), over fixed
    noise draws δ (m per image, image-major: N·m × C×H×W)."""

    def __init__(self, model: nn.Module, noise: torch.Tensor):
        super().__init__()
        self.model, self.noise = model, noise

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = len(self.noise) // len(x)
        probs = F.softmax(self.model(x.repeat_interleave(m, 0) + self.noise).float(), 1).view(len(x), m, -1).mean(1)
        return probs.clamp_min(1e-12).log()


def smoothadv_adversary(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, spec: AttackSpec, noise: torch.Tensor
) -> torch.Tensor:
    """argmax over the L2 ε-ball (∩ box) of −log mean_i softmax(f(x' + δᵢ))_y: PGD from x on the
    soft smoothed classifier (`noise`: the draws, see `SoftSmoothed`)."""
    nll = lambda log_probs, y: F.nll_loss(log_probs, y, reduction="none")  # noqa: E731
    return _pgd(spec, loss=nll)(SoftSmoothed(model, noise), x.detach(), y)


def unwrapped(model: nn.Module) -> nn.Module:
    """The network inside a DistributedDataParallel wrapper (the attack runs on it: its backward
    passes must not start DDP's gradient all-reduce); `model` itself otherwise."""
    return getattr(model, "module", model)


def batch_objective(spec: TrainSpec, eps: float | None = None) -> BatchLoss:
    """`objective(model, x, y) -> (loss, logits the train accuracy is counted on)` for `spec.method`.
    `model` may be wrapped in DDP: the attack then runs on each rank's own share, on the bare network.

    Args:
        spec: the run; its cross-entropy uses `spec.recipe.label_smoothing`.
        eps: the attack's radius, if not `spec.attack.eps` (ε warm-up); its default step size
            2.5ε/steps follows it.
    """
    smoothing = spec.recipe.label_smoothing
    attack_spec = spec.attack if eps is None else spec.attack.model_copy(update={"eps": eps})
    if spec.method == "trades":

        def trades(model, x, y):
            x_adv = trades_adversary(unwrapped(model), x, attack_spec)
            with gradient_phase(model, "update"):
                logits, logits_adv = model(x), model(x_adv)
                kl = F.kl_div(F.log_softmax(logits_adv.float(), 1), F.softmax(logits.float(), 1), reduction="batchmean")
                return F.cross_entropy(logits, y, label_smoothing=smoothing) + spec.trades_beta * kl, logits

        return trades
    if spec.method in ("gaussian", "smoothadv"):
        return smoothing_objective(spec, attack_spec)
    attack = None
    if spec.method == "pgd":
        attack = build_attack(attack_spec)
    elif spec.method == "fast":  # α = 1.25ε unless set
        attack = build_attack(attack_spec.model_copy(update={"name": "fgsm", "random_start": True}))

    def cross_entropy(model, x, y):
        x_in = attack(unwrapped(model), x, y) if attack else x
        with gradient_phase(model, "update"):
            logits = model(x_in)
            return F.cross_entropy(logits, y, label_smoothing=smoothing), logits

    return cross_entropy


def smoothing_objective(spec: TrainSpec, attack_spec: AttackSpec) -> BatchLoss:
    """`gaussian` and `smoothadv`: CE on m noisy copies per image (m = 1 for `gaussian`); the
    accuracy is counted on the copies' mean logits."""
    sigma, m = spec.noise.sigma, spec.noise.samples if spec.method == "smoothadv" else 1
    smoothing = spec.recipe.label_smoothing

    def noisy(model, x, y):
        noise = sigma * torch.randn((len(x) * m, *x.shape[1:]), device=x.device, dtype=x.dtype)
        if spec.method == "smoothadv":
            x = smoothadv_adversary(unwrapped(model), x, y, attack_spec, noise)
        with gradient_phase(model, "update"):
            logits = model(x.repeat_interleave(m, 0) + noise)
            loss = F.cross_entropy(logits, y.repeat_interleave(m), label_smoothing=smoothing)
            return loss, logits.detach().view(len(x), m, -1).mean(1)

    return noisy
