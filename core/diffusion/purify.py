"""Diffusion purification (DiffPure, Nie et al. 2022) as a classifier: noise the input to step t* of
the forward process, denoise back to 0 with the diffusion model, classify the result.

`Purified` answers like any classifier (logits for images in [0, 1]) and is randomized (fresh
forward noise each call). How its gradient is taken is the evaluation's choice:

- `exact`: through the reverse sampler, each denoising step checkpointed (recomputed in the
  backward pass) so memory grows with the batch, not with the steps: the adaptive attack;
- `bpda`: the purifier's Jacobian taken as the identity (Athalye et al. 2018's BPDA): the
  classifier's gradient at the purified point, applied to the input.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from core.contract.diffusion_specs import PurifierSpec
from core.diffusion.ddpm import DiffusionModel, make_scheduler, predict_x0, q_sample, to_image_space, to_model_space

Gradient = Literal["exact", "bpda"]


def reverse_timesteps(t_star: int, steps: int) -> list[int]:
    """t* = t_0 > t_1 > … > t_steps = 0, evenly spaced."""
    return sorted({round(t_star * (1 - i / steps)) for i in range(steps + 1)}, reverse=True)


class Purified(nn.Module):
    """classifier(purify(x)) for images x in [0, 1]."""

    randomized = True

    def __init__(
        self, classifier: nn.Module, diffusion: DiffusionModel, spec: PurifierSpec, gradient: Gradient = "exact"
    ):
        super().__init__()
        big_t = diffusion.spec.num_train_timesteps
        if spec.t_star >= big_t:
            raise ValueError(f"t_star must be below the diffusion model's T = {big_t}, got {spec.t_star}")
        if classifier.spec.in_channels != diffusion.in_channels or classifier.spec.image_size != diffusion.data_size:
            raise ValueError("the classifier's and the diffusion model's images differ in channels or size")
        self.classifier, self.diffusion, self.purifier, self.gradient = classifier, diffusion, spec, gradient
        self.spec = classifier.spec  # answers like the classifier it defends
        device = next(diffusion.parameters()).device  # where its parts already are
        alpha_bar = make_scheduler(diffusion.spec).alphas_cumprod.float().to(device)
        self.register_buffer("alpha_bar", alpha_bar, persistent=False)
        self.timesteps = reverse_timesteps(spec.t_star, spec.steps)

    def with_gradient(self, gradient: Gradient) -> Purified:
        """The same defense, its gradient taken the other way (weights shared)."""
        return Purified(self.classifier, self.diffusion, self.purifier, gradient)

    def _eps(self, x: torch.Tensor, t: int) -> torch.Tensor:
        tt = torch.full((len(x),), t, device=x.device)
        labels = None
        if self.diffusion.spec.class_conditional:  # purification knows no label: the unconditional model
            labels = torch.full((len(x),), self.diffusion.null_label, device=x.device)
        return self.diffusion.ema(x, tt, class_labels=labels).sample

    def purify(self, x: torch.Tensor) -> torch.Tensor:
        """x in [0, 1] → x_{t*} ~ q(x_{t*} | x) → the reverse process (DDIM η = 0, or ancestral
        for `ddpm`) → images in [0, 1]."""
        eta = 1.0 if self.purifier.sampler == "ddpm" else 0.0
        a = self.alpha_bar
        z = to_model_space(x, self.diffusion.spec.image_size)
        start = torch.full((len(z),), self.timesteps[0], device=z.device)
        z = q_sample(z, start, torch.randn_like(z), a)
        grad = torch.is_grad_enabled() and z.requires_grad
        for t, s in zip(self.timesteps, self.timesteps[1:], strict=False):
            eps = checkpoint(self._eps, z, t, use_reentrant=False) if grad else self._eps(z, t)
            x0 = predict_x0(z, torch.full((len(z),), t, device=z.device), eps, a).clamp(-1, 1)
            sigma = eta * ((1 - a[s]) / (1 - a[t]) * (1 - a[t] / a[s])).sqrt()
            z = a[s].sqrt() * x0 + (1 - a[s] - sigma**2).clamp_min(0).sqrt() * eps
            if eta and s > 0:
                z = z + sigma * torch.randn_like(z)
        return to_image_space(z, self.diffusion.data_size).to(x.dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.gradient == "bpda" and torch.is_grad_enabled() and x.requires_grad:
            with torch.no_grad():
                purified = self.purify(x)
            return self.classifier(x + (purified - x).detach())
        return self.classifier(self.purify(x))
