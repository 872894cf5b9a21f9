"""Sampling the reverse chain p_θ(x_{t−1} | x_t) with diffusers' schedulers (DDPM, DDIM, DPM-Solver),
classifier-free guidance, the trajectory x_T … x_0, and the forward process made visible."""

from __future__ import annotations

import torch

from core.contract.diffusion_specs import DDPMSampleSpec
from core.contract.progress import Progress, ProgressFn, StopFn, never_stop, no_progress, stop_if_asked
from core.diffusion.ddpm import DiffusionModel, make_scheduler, predict_x0, q_sample, to_image_space, to_model_space

CHUNK = 256  # images denoised at once


def _labels(spec: DDPMSampleSpec, model: DiffusionModel) -> torch.Tensor | None:
    if spec.class_labels is None:
        if spec.guidance_scale != 1.0:
            raise ValueError("guidance_scale needs class_labels")
        return torch.full((spec.n,), model.null_label) if model.spec.class_conditional else None
    if not model.spec.class_conditional:
        raise ValueError("class_labels given but the model is not class-conditional")
    labels = spec.class_labels * spec.n if len(spec.class_labels) == 1 else spec.class_labels
    if len(labels) != spec.n or any(not 0 <= c < model.num_classes for c in labels):
        raise ValueError(f"class_labels needs 1 or n={spec.n} labels in [0, {model.num_classes})")
    return torch.tensor(labels)


def _eps(model: DiffusionModel, x: torch.Tensor, t, labels, w: float) -> torch.Tensor:
    """ε̂; with guidance, ε̂_uncond + w (ε̂_cond − ε̂_uncond) (Ho & Salimans 2022)."""
    if labels is None:
        return model.ema(x, t).sample
    if w == 1.0:
        return model.ema(x, t, class_labels=labels).sample
    both = model.ema(
        torch.cat([x, x]), t, class_labels=torch.cat([labels, torch.full_like(labels, model.null_label)])
    ).sample
    cond, uncond = both.chunk(2)
    return uncond + w * (cond - uncond)


@torch.no_grad()
def sample(
    model: DiffusionModel, spec: DDPMSampleSpec, *, progress: ProgressFn = no_progress, should_stop: StopFn = never_stop
) -> dict:
    """`{"images": (n, C, H, W) in [0, 1], "trajectory": [frames of (n, C, H, W)] or []}`. The same
    spec (seed included) gives the same images. Raises `Stopped` when `should_stop` asks."""
    device = next(model.parameters()).device
    labels = _labels(spec, model)
    generator = torch.Generator().manual_seed(spec.seed)
    size, c = model.spec.image_size, model.in_channels
    images, frames = [], []
    total = spec.num_steps * ((spec.n + CHUNK - 1) // CHUNK)
    done = 0
    for start in range(0, spec.n, CHUNK):
        n = min(CHUNK, spec.n - start)
        scheduler = make_scheduler(model.spec, spec.sampler)
        scheduler.set_timesteps(spec.num_steps)
        x = torch.randn(n, c, size, size, generator=generator) * scheduler.init_noise_sigma
        x = x.to(device)
        lab = labels[start : start + n].to(device) if labels is not None else None
        keep = set(torch.linspace(0, len(scheduler.timesteps) - 1, spec.trajectory_frames).round().long().tolist())
        chunk_frames = [to_image_space(x.cpu(), model.data_size)] if spec.trajectory else []
        for i, t in enumerate(scheduler.timesteps):
            stop_if_asked(should_stop)
            eps = _eps(model, scheduler.scale_model_input(x, t), t, lab, spec.guidance_scale)
            kwargs = {"eta": spec.eta, "generator": generator} if spec.sampler == "ddim" else {}
            if spec.sampler == "ddpm":
                kwargs = {"generator": generator}
            x = scheduler.step(eps.cpu() if device.type == "cpu" else eps, t, x, **kwargs).prev_sample
            if spec.trajectory and i in keep and i > 0:
                chunk_frames.append(to_image_space(x.cpu(), model.data_size))
            done += 1
            if done % 10 == 0 or done == total:
                progress(Progress(done / total, f"step {i + 1}/{spec.num_steps}"))
        images.append(to_image_space(x.cpu(), model.data_size))
        frames.append(chunk_frames)
    trajectory = [torch.cat(f) for f in zip(*frames, strict=True)] if spec.trajectory else []
    return {"images": torch.cat(images), "trajectory": trajectory}


@torch.no_grad()
def forward_explorer(model: DiffusionModel, x: torch.Tensor, t: int, seed: int = 0) -> dict:
    """For images x in [0, 1] and a timestep t: x_t ~ q(x_t | x_0) and the model's x̂_0 from it."""
    if not 0 <= t < model.spec.num_train_timesteps:
        raise ValueError(f"t must be in [0, {model.spec.num_train_timesteps}), got {t}")
    device = next(model.parameters()).device
    alphas_cumprod = make_scheduler(model.spec).alphas_cumprod
    x0 = to_model_space(x, model.spec.image_size).to(device)
    noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(seed)).to(device)
    tt = torch.full((len(x0),), t, device=device)
    x_t = q_sample(x0, tt, noise, alphas_cumprod)
    labels = torch.full((len(x0),), model.null_label, device=device) if model.spec.class_conditional else None
    eps = model.ema(x_t, tt, class_labels=labels).sample
    x0_hat = predict_x0(x_t, tt, eps, alphas_cumprod)
    return {
        "x_t": to_image_space(x_t.cpu(), model.data_size),
        "x0_pred": to_image_space(x0_hat.cpu(), model.data_size),
        "alpha_bar": float(alphas_cumprod[t]),
    }
