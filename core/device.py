"""Device choice and the CUDA fast paths (bf16 autocast, channels_last) a spec can ask for."""

from __future__ import annotations

import contextlib
import functools
import logging

import torch
from torch import nn

log = logging.getLogger(__name__)


def resolve_device(name: str) -> torch.device:
    """`auto` → CUDA when present, else CPU. Asking for `cuda` without one is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested but no CUDA device is available")
    return torch.device(name)


def autocast(device: torch.device, enabled: bool) -> contextlib.AbstractContextManager:
    """bf16 autocast on `device` when `enabled` (a no-op context otherwise)."""
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=enabled)


def prepare(model: nn.Module, device: torch.device, channels_last: bool) -> nn.Module:
    """Move `model` to `device`, in channels_last memory format if asked."""
    model = model.to(device)
    return model.to(memory_format=torch.channels_last) if channels_last else model


def to_input(x: torch.Tensor, device: torch.device, channels_last: bool) -> torch.Tensor:
    x = x.to(device, non_blocking=True)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


@functools.cache  # asked every few seconds; said once
def owned_devices(setting: int = 0) -> int:
    """How many devices a worker offers multi-process (`gpus`) jobs: `setting` when set (at most
    its CUDA devices, where it has some: a rank needs a GPU of its own), else its CUDA devices,
    else 1 (the CPU, one process)."""
    cuda = torch.cuda.device_count()
    if setting and cuda and setting > cuda:
        log.warning("ROBUSTLAB_DEVICES=%d but this machine has %d CUDA devices: offering %d", setting, cuda, cuda)
        return cuda
    return setting or cuda or 1
