"""DDPM (Ho et al., "Denoising Diffusion Probabilistic Models", 2020): the network, the schedules
and the training loop. The UNet and the schedulers are diffusers'; the loop, EMA, checkpoints
and exact resume are ours: the epochs run on the classifiers' harness (`core.training.harness`:
seeding, batch shares, stop check, progress, a checkpoint every epoch).

Forward process, Eq. 4: q(x_t | x_0) = N(√ᾱ_t x_0, (1 − ᾱ_t) I), ᾱ_t = ∏_{s≤t} (1 − β_s).
Simple loss, Eq. 14: E_{t, x_0, ε} ‖ε − ε_θ(√ᾱ_t x_0 + √(1 − ᾱ_t) ε, t)‖².
"""

from __future__ import annotations

import copy
import math
from pathlib import Path

import torch
import torch.nn.functional as F
from diffusers import DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler, UNet2DModel
from safetensors.torch import load_file
from torch import nn

import core.training.distributed as ddp
from core.contract.checkpoint import MODEL_FILE, read_meta
from core.contract.diffusion_specs import DDPMTrainSpec
from core.contract.progress import ProgressFn, StopFn, never_stop, no_progress
from core.data import Dataset, load_dataset
from core.data.batches import Picked
from core.device import autocast, resolve_device
from core.training.checkpoint import drop_previous, resume_from
from core.training.harness import Epochs, run_epochs
from core.training.loop import TrainResult

SCHEDULERS = {"ddpm": DDPMScheduler, "ddim": DDIMScheduler, "dpm_solver": DPMSolverMultistepScheduler}


class DiffusionModel(nn.Module):
    """The noise predictor ε_θ and its EMA copy (the one sampled from), with the spec and data
    facts (channels, original size, classes) needed to rebuild it from a checkpoint alone."""

    def __init__(self, spec: DDPMTrainSpec, in_channels: int, data_size: int, num_classes: int):
        super().__init__()
        self.spec, self.in_channels, self.data_size, self.num_classes = (spec, in_channels, data_size, num_classes)
        levels = len(spec.unet.block_out_channels)
        down, up = ["DownBlock2D"] * levels, ["UpBlock2D"] * levels
        if spec.unet.attention:
            down[-1], up[0] = "AttnDownBlock2D", "AttnUpBlock2D"
        self.unet = UNet2DModel(
            sample_size=spec.image_size,
            in_channels=in_channels,
            out_channels=in_channels,
            block_out_channels=tuple(spec.unet.block_out_channels),
            layers_per_block=spec.unet.layers_per_block,
            down_block_types=tuple(down),
            up_block_types=tuple(up),
            norm_num_groups=spec.unet.norm_num_groups,
            add_attention=spec.unet.attention,
            num_class_embeds=num_classes + 1 if spec.class_conditional else None,  # last = "no label"
        )
        self.ema = copy.deepcopy(self.unet).requires_grad_(False)

    @property
    def null_label(self) -> int:
        return self.num_classes

    def facts(self) -> dict:
        return {"in_channels": self.in_channels, "data_size": self.data_size, "num_classes": self.num_classes}

    @torch.no_grad()
    def update_ema(self, decay: float) -> None:
        """θ_ema ← decay·θ_ema + (1 − decay)·θ."""
        torch._foreach_lerp_(list(self.ema.parameters()), list(self.unet.parameters()), 1.0 - decay)
        for b_ema, b in zip(self.ema.buffers(), self.unet.buffers(), strict=True):
            b_ema.copy_(b)


def make_scheduler(spec: DDPMTrainSpec, sampler: str = "ddpm"):
    """A diffusers scheduler on the model's β schedule (ε-prediction). DDIM and DPM-Solver use
    `trailing` timestep spacing, so that their last step lands on t = 0 from t = T − 1."""
    config = {
        "num_train_timesteps": spec.num_train_timesteps,
        "beta_start": spec.beta_start,
        "beta_end": spec.beta_end,
        "prediction_type": "epsilon",
        "beta_schedule": "linear" if spec.schedule == "linear" else "squaredcos_cap_v2",
    }
    if sampler != "ddpm":
        config["timestep_spacing"] = "trailing"
    return SCHEDULERS[sampler](**config)


def to_model_space(x: torch.Tensor, image_size: int) -> torch.Tensor:
    """Images in [0, 1] → [−1, 1], padded with black (−1) to `image_size` (28 → 32)."""
    pad = image_size - x.shape[-1]
    if pad < 0:
        raise ValueError(f"images of side {x.shape[-1]} are larger than image_size {image_size}")
    x = x * 2 - 1
    return F.pad(x, (pad // 2, pad - pad // 2, pad // 2, pad - pad // 2), value=-1.0) if pad else x


def to_image_space(x: torch.Tensor, data_size: int) -> torch.Tensor:
    """[−1, 1] model space → [0, 1], the padding cropped away."""
    pad = x.shape[-1] - data_size
    if pad:
        x = x[..., pad // 2 : pad // 2 + data_size, pad // 2 : pad // 2 + data_size]
    return ((x.clamp(-1, 1) + 1) / 2).float()


def q_sample(x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor, alphas_cumprod: torch.Tensor) -> torch.Tensor:
    """x_t = √ᾱ_t x_0 + √(1 − ᾱ_t) ε (Ho et al., Eq. 4)."""
    a = alphas_cumprod.to(x0.device)[t].view(-1, 1, 1, 1)
    return a.sqrt() * x0 + (1 - a).sqrt() * noise


def predict_x0(x_t: torch.Tensor, t: torch.Tensor, eps: torch.Tensor, alphas_cumprod: torch.Tensor) -> torch.Tensor:
    """x̂_0 = (x_t − √(1 − ᾱ_t) ε̂) / √ᾱ_t (Eq. 4 solved for x_0)."""
    a = alphas_cumprod.to(x_t.device)[t].view(-1, 1, 1, 1)
    return (x_t - (1 - a).sqrt() * eps) / a.sqrt()


def denoising_loss(
    unet: nn.Module, x0: torch.Tensor, labels: torch.Tensor | None, alphas_cumprod: torch.Tensor, spec: DDPMTrainSpec
) -> torch.Tensor:
    """The simple loss of one batch: ε_θ's mean squared error at a random t per image."""
    t = torch.randint(0, spec.num_train_timesteps, (len(x0),), device=x0.device)
    noise = torch.randn_like(x0)
    with autocast(x0.device, spec.amp):
        eps = unet(q_sample(x0, t, noise, alphas_cumprod), t, class_labels=labels).sample
        return F.mse_loss(eps.float(), noise)


def train_ddpm(
    spec: DDPMTrainSpec,
    out_dir: str | Path,
    *,
    dataset: Dataset | None = None,
    progress: ProgressFn = no_progress,
    should_stop: StopFn = never_stop,
    resume: bool = True,
) -> TrainResult:
    """Train ε_θ with the simple loss, keeping EMA weights; a checkpoint every epoch in `out_dir`.

    Returns the run's `TrainResult`; raises `Stopped` when `should_stop` asks (the last epoch's
    checkpoint stays). In a torch.distributed process group each rank trains on its share of
    every batch, as `core.training.train` does.
    """
    out_dir = Path(out_dir)
    device = resolve_device(spec.device)
    ds = dataset or load_dataset(spec.data)
    torch.manual_seed(spec.seed)
    model = DiffusionModel(spec, ds.in_channels, ds.image_size, ds.num_classes).to(device)
    if spec.channels_last:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.Adam(model.unet.parameters(), lr=spec.lr)
    alphas_cumprod = make_scheduler(spec).alphas_cumprod
    start_epoch, history = resume_from(out_dir, model, opt, spec) if resume else (0, [])
    rank, ranks = ddp.world()
    ddp.warn_if_alone(spec.gpus)
    unet = ddp.wrap(model.unet, device)  # the update runs through it (`model.unet` in one process)
    if rank:
        progress = no_progress
    n = len(ds.x_train)
    batches = math.ceil(n / spec.batch_size)

    def plan_of(epoch: int) -> tuple[list[Picked], dict[int, int]]:
        order = torch.randperm(n, generator=torch.Generator().manual_seed(spec.seed * 100_003 + epoch))
        plan = [order[b * spec.batch_size : (b + 1) * spec.batch_size] for b in range(batches)]
        kept = [b for b in range(batches) if len(plan[b]) >= ranks]  # a batch smaller than the world: all skip it
        return [Picked(ddp.share(plan[b])) for b in kept], {b: len(plan[b]) for b in kept}

    def batch_loss(epoch: int, b: int, step: int, x_batch: torch.Tensor, y_batch: torch.Tensor):
        x0 = to_model_space(x_batch, spec.image_size).to(device)
        labels = None
        if spec.class_conditional:  # drop labels with p = cond_drop_prob (classifier-free guidance)
            labels = y_batch.clone()
            labels[torch.rand(len(labels)) < spec.cond_drop_prob] = model.null_label
            labels = labels.to(device)
        return denoising_loss(unet, x0, labels, alphas_cumprod, spec), None

    run = Epochs(
        out_dir=out_dir,
        kind="diffusion",
        spec=spec,
        device=device,
        model=model,
        opt=opt,
        net=unet,
        data=ds,
        images=n,
        batches=batches,
        plan=plan_of,
        loss=batch_loss,
        after_step=lambda: model.update_ema(spec.ema_decay),
        end_epoch=lambda epoch, metrics: ({}, {"facts": model.facts()}, {}),
        start_epoch=start_epoch,
        history=history,
    )
    history, _ = run_epochs(run, progress, should_stop)
    if not rank:
        drop_previous(out_dir)
    ddp.follower_done(unet)
    return TrainResult(out_dir, spec.epochs, history, spec)


def load_diffusion(folder: str | Path, *, device: str | torch.device = "cpu") -> DiffusionModel:
    """Rebuild a diffusion model from its checkpoint folder alone, in eval mode."""
    meta = read_meta(folder, expect="diffusion")
    model = DiffusionModel(DDPMTrainSpec.model_validate(meta["spec"]), **meta["facts"])
    model.load_state_dict(load_file(Path(folder) / MODEL_FILE))
    return model.to(device).eval()
