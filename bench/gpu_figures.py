"""Issue 15's GPU figures in one run: PGD-10 adversarial training images/s of the gpu preset's
PreAct ResNet-18 at 28 px (batch 256) in fp32 and in bf16 with channels_last, against the anchor
of ~10,000 images/s (a FLOP estimate of an H100's ceiling) with a profile of where the time goes;
DDPM-1000 and DDIM-50 samples/s at batch 256 of the gpu preset's UNet in fp32 and bf16; that
UNet's training images/s as its preset trains it (bf16, channels_last), and so the preset's training
time on Fashion-MNIST; and two-process DDP training images/s when the node has two GPUs
(bench/ddp_speed.py under torchrun).

    .venv/bin/python -m bench.gpu_figures [--out FILE]

Inputs are random tensors of Fashion-MNIST's shape and the weights untrained: throughput does not
depend on them. On a CPU the same code runs a small version (batch 16, 2 timed batches, 10 and 5
sampler steps at batch 4, DDP with gloo) to check the path; its numbers say nothing about a GPU.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

from bench.common import machine
from core.contract.diffusion_specs import DDPMSampleSpec
from core.contract.presets import ddpm_preset, train_preset
from core.device import autocast, prepare, resolve_device, to_input
from core.diffusion.ddpm import DiffusionModel, denoising_loss, make_scheduler
from core.diffusion.sampling import sample
from core.models import build_model
from core.training.objectives import batch_objective

ANCHOR_IMAGES_PER_S = 10_000  # PGD-10 AT, PreAct ResNet-18, 28 px: the FLOP estimate for an H100


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def at_model(device: torch.device, channels_last: bool):
    spec = train_preset("gpu")
    torch.manual_seed(0)
    model = prepare(build_model(spec.model.model_copy(update={"mean": [0.286], "std": [0.353]})), device, channels_last)
    return spec, model, torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)


def at_step(spec, model, opt, x, y, amp: bool, device) -> None:
    objective = batch_objective(spec)
    with autocast(device, amp):
        loss, _ = objective(model.train(), x, y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def seconds_per_run(step, device: torch.device, timed: int, warmup: int = 3) -> float:
    """Wall seconds of `timed` calls of `step()` after `warmup` untimed ones (the device synchronised)."""
    for _ in range(warmup):
        step()
    sync(device)
    t0 = time.perf_counter()
    for _ in range(timed):
        step()
    sync(device)
    return time.perf_counter() - t0


def training_speed(device: torch.device, *, amp: bool, channels_last: bool, batch: int, timed: int) -> dict:
    """PGD-10 AT images/s: `timed` batches after 3 warm-up ones."""
    spec, model, opt = at_model(device, channels_last)
    x = to_input(torch.rand(batch, 1, 28, 28), device, channels_last)
    y = torch.randint(0, 10, (batch,), device=device)
    seconds = seconds_per_run(lambda: at_step(spec, model, opt, x, y, amp, device), device, timed)
    rate = batch * timed / seconds
    return {
        "images_per_s": round(rate, 1),
        "of_anchor": round(rate / ANCHOR_IMAGES_PER_S, 3),
        "batch": batch,
        "batches_timed": timed,
        "attack_steps": spec.attack.steps,
    }


def training_profile(device: torch.device, *, batch: int, rows: int = 15) -> str:
    """The top operators of bf16 channels_last PGD-10 AT batches (where the time goes): two on a
    GPU, one on a CPU."""
    spec, model, opt = at_model(device, True)
    x = to_input(torch.rand(batch, 1, 28, 28), device, True)
    y = torch.randint(0, 10, (batch,), device=device)
    at_step(spec, model, opt, x, y, True, device)
    activities = [torch.profiler.ProfilerActivity.CPU]
    if device.type == "cuda":
        activities.append(torch.profiler.ProfilerActivity.CUDA)
    with torch.profiler.profile(activities=activities) as prof:
        for _ in range(2 if device.type == "cuda" else 1):  # the profiler slows a CPU run many times over
            at_step(spec, model, opt, x, y, True, device)
        sync(device)
    key = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    return prof.key_averages().table(sort_by=key, row_limit=rows)


def sampling_speed(device: torch.device, *, sampler: str, steps: int, amp: bool, batch: int) -> dict:
    """Samples/s of the gpu preset's UNet (untrained) at `batch`, `steps` steps of `sampler`."""
    spec = ddpm_preset("gpu")
    torch.manual_seed(0)
    model = DiffusionModel(spec, 1, 28, 10).to(device).eval()
    run = DDPMSampleSpec(n=batch, sampler=sampler, steps=steps, class_labels=[0], seed=0)
    with torch.no_grad(), autocast(device, amp):
        sample(model, run.model_copy(update={"n": min(batch, 8), "steps": 2}))  # warm-up
        sync(device)
        t0 = time.perf_counter()
        sample(model, run)
        sync(device)
    seconds = time.perf_counter() - t0
    return {"samples_per_s": round(batch / seconds, 2), "seconds": round(seconds, 2), "batch": batch, "steps": steps}


def ddpm_training_speed(device: torch.device, *, batch: int, timed: int) -> dict:
    """Training images/s of the gpu preset's DDPM with its own precision and memory format (bf16
    and channels_last on a GPU), and what that makes of the preset's epochs over 60,000 images."""
    spec = ddpm_preset("gpu")
    amp = spec.amp and device.type == "cuda"
    torch.manual_seed(0)
    model = DiffusionModel(spec.model_copy(update={"amp": amp}), 1, 28, 10).to(device)
    model = model.to(memory_format=torch.channels_last) if spec.channels_last else model
    opt = torch.optim.Adam(model.unet.parameters(), lr=spec.lr)
    alphas_cumprod = make_scheduler(spec).alphas_cumprod
    x0 = (torch.rand(batch, 1, spec.image_size, spec.image_size, device=device) * 2 - 1).contiguous(
        memory_format=torch.channels_last
    )
    labels = torch.randint(0, 10, (batch,), device=device)

    def step() -> None:
        loss = denoising_loss(model.unet, x0, labels, alphas_cumprod, model.spec)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        model.update_ema(spec.ema_decay)

    rate = batch * timed / seconds_per_run(step, device, timed, warmup=2)
    epoch_minutes = 60_000 / rate / 60
    return {
        "images_per_s": round(rate, 1),
        "batch": batch,
        "bf16": amp,
        "epoch_minutes": round(epoch_minutes, 2),
        "preset_epochs": spec.epochs,
        "preset_training_hours": round(spec.epochs * epoch_minutes / 60, 2),
    }


def ddp_speed(gpu: bool) -> dict:
    """Two-process DDP training images/s against one process, from bench/ddp_speed.py under torchrun
    (skipped on a GPU node with fewer than two GPUs)."""
    if gpu and torch.cuda.device_count() < 2:
        return {"skipped": f"{torch.cuda.device_count()} GPU on this node; DDP needs two"}
    out = Path("/tmp/ddp_speed.json")
    out.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2", "-m", "bench.ddp_speed"]
    env = {**os.environ, "DDP_SPEED_OUT": str(out), **({} if gpu else {"OMP_NUM_THREADS": "1"})}
    try:
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=100)  # ranks die with torchrun
    except subprocess.TimeoutExpired:
        return {"failed": "timed out after 100 s"}
    if done.returncode != 0 or not out.is_file():
        return {"failed": done.stderr[-2000:]}
    return json.loads(out.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default="bench/results/gpu_figures.json")
    args = parser.parse_args()
    device = resolve_device("auto")
    gpu = device.type == "cuda"
    batch, timed = (256, 20) if gpu else (16, 2)
    card = torch.cuda.get_device_name() if gpu else "cpu"
    result: dict = {"machine": machine(), "device": card, "small_cpu_version": not gpu}
    result["pgd10_at"] = {
        "fp32": training_speed(device, amp=False, channels_last=False, batch=batch, timed=timed),
        "bf16_channels_last": training_speed(device, amp=gpu, channels_last=True, batch=batch, timed=timed),
    }
    print(json.dumps(result["pgd10_at"]), flush=True)
    result["pgd10_at_profile"] = training_profile(device, batch=batch if gpu else 4)
    sample_batch, steps = (256, {"ddpm": 1000, "ddim": 50}) if gpu else (4, {"ddpm": 10, "ddim": 5})
    result["sampling"] = {
        f"{sampler}-{n}_{'bf16' if amp else 'fp32'}": sampling_speed(
            device, sampler=sampler, steps=n, amp=amp, batch=sample_batch
        )
        for sampler, n in steps.items()
        for amp in ((False, True) if gpu else (False,))
    }
    print(json.dumps(result["sampling"]), flush=True)
    result["ddpm_training"] = ddpm_training_speed(device, batch=batch if gpu else 4, timed=timed)
    print(json.dumps(result["ddpm_training"]), flush=True)
    result["ddp_two_processes"] = ddp_speed(gpu)
    one = result["pgd10_at"]["bf16_channels_last" if gpu else "fp32"]["images_per_s"]
    if "images_per_s" in result["ddp_two_processes"]:
        result["ddp_two_processes"]["vs_one_process"] = round(result["ddp_two_processes"]["images_per_s"] / one, 2)
    print(json.dumps(result["ddp_two_processes"]), flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
