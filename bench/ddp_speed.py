"""Run under torchrun by bench/gpu_figures.py: PGD-10 adversarial training images/s of the gpu
preset's PreAct ResNet-18 in DistributedDataParallel, each rank taking half of a global batch
(512 on GPUs: 256 per rank, bf16 and channels_last as the one-GPU figure; 16 on CPU with gloo).
Rank 0 writes {"images_per_s", "processes", "global_batch"} to $DDP_SPEED_OUT."""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

import core.training.distributed as ddp
from bench.gpu_figures import at_model, at_step, seconds_per_run
from core.device import resolve_device, to_input


def main() -> None:
    ddp.start_from_env()
    rank, size = ddp.world()
    device = resolve_device("auto")
    if device.type == "cuda":
        device = torch.device("cuda", torch.cuda.current_device())
    gpu = device.type == "cuda"
    per_rank, timed = (256, 20) if gpu else (8, 2)
    spec, model, _ = at_model(device, gpu)
    net = ddp.wrap(model, device)
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    x = to_input(torch.rand(per_rank, 1, 28, 28), device, gpu)
    y = torch.randint(0, 10, (per_rank,), device=device)
    seconds = seconds_per_run(lambda: at_step(spec, net, opt, x, y, gpu, device), device, timed)
    seconds = ddp.summed([seconds], device)[0] / size
    if rank == 0:
        result = {"images_per_s": round(per_rank * size * timed / seconds, 1), "processes": size}
        Path(os.environ["DDP_SPEED_OUT"]).write_text(json.dumps({**result, "global_batch": per_rank * size}))
    ddp.exit_now(0)


if __name__ == "__main__":
    main()
