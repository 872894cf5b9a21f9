"""Training on several devices with torch.distributed: one process per device (started by
`torchrun`), DistributedDataParallel, NCCL on GPUs and gloo on CPU.

Each step every rank takes its share of the same global batch (the one a single process would
take), makes its own adversarial examples for it, and DDP averages the gradients. The local loss
is scaled by (local images × world size / global images), so the averaged gradient is the
gradient of the global batch's mean loss even when the batch does not split evenly: with a model
without batch norm, G processes reach the weights one process reaches, up to the order of
floating-point sums in the all-reduce (1.7e-7 relative measured, not bit-identical). Batch norm
normalises each rank's share on its own (SyncBatchNorm on GPUs makes it global; gloo has none).

Rank 0 writes checkpoints and progress; every rank resumes from the same checkpoint; a stop
request seen by any rank stops all of them at the same batch (else the others would wait in the
all-reduce for ever). The ranks beyond 0 end with `FollowerDone` once training is over: what
follows (evaluation, registration) is rank 0's; every rank of such a job ends with `exit_now`.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sys
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import nn

from core.lifetime import die_with_parent

log = logging.getLogger(__name__)
_alone = False  # rank 0 after `follower_done`: the others have left
_kept: list[nn.Module] = []  # DDP wrappers never destroyed (see `follower_done`)
TIMEOUT = timedelta(minutes=30)  # a rank waits this long for the others (rank 0's evaluation is shorter)


# How a collective fails when another rank died (gloo, NCCL, torch.distributed's own errors)
PEER_FAILURE_SIGNS = ("DistBackendError", "DistNetworkError", "DistError", "by peer", "Broken pipe", "NCCL")


def peer_failure(error: str | None) -> bool:
    """Whether a job's error (`Type: message`) is a collective broken by another rank's death."""
    return error is not None and any(sign in error for sign in PEER_FAILURE_SIGNS)


class FollowerDone(Exception):
    """A follower rank's part of a distributed job is over: rank 0 does the rest."""


def start_from_env() -> bool:
    """Join the process group torchrun describes in the environment (WORLD_SIZE > 1), NCCL when
    CUDA is present (each rank on device LOCAL_RANK), else gloo. Returns whether this process is
    part of one."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False
    die_with_parent()  # torchrun starts each rank in a session of its own: a kill of its group misses them
    if not dist.is_initialized():
        cuda = torch.cuda.is_available()
        if cuda:
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        # gloo for CPU tensors beside NCCL (a spec may train on the CPU of a GPU node)
        dist.init_process_group("cpu:gloo,cuda:nccl" if cuda else "gloo", timeout=TIMEOUT)
    return True


def warn_if_alone(gpus: int) -> None:
    """Say so when a spec asks for `gpus` processes but this one trains alone (the command line
    or a notebook: the service starts them under torchrun)."""
    if gpus > 1 and world()[1] == 1:
        log.warning("the spec asks for gpus=%d but this process trains alone; run it under torchrun", gpus)


def world() -> tuple[int, int]:
    """(this process' rank, the number of processes); (0, 1) outside a process group, and on rank 0
    once training is over (`follower_done`)."""
    if not _alone and dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def is_follower() -> bool:
    return world()[0] != 0


def share(idx: torch.Tensor) -> torch.Tensor:
    """This rank's part of a global batch's indices (contiguous parts, sizes differing by at most 1)."""
    rank, size = world()
    return idx.tensor_split(size)[rank] if size > 1 else idx


def check_shared(batches: int, images: int) -> None:
    """Refuse an epoch with no batch to train on: every batch smaller than the processes (or no
    images at all)."""
    if batches == 0:
        raise ValueError(f"{images} training images make no batch for {world()[1]} process(es): ask for fewer gpus")


def loss_weight(local: int, total: int) -> float:
    """The factor that makes DDP's gradient average the global batch's mean (1 in one process)."""
    size = world()[1]
    return local * size / total if size > 1 else 1.0


def any_rank(flag: bool, device: torch.device) -> bool:
    """True on every rank when `flag` is True on any."""
    if world()[1] == 1:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def summed(values: list[float], device: torch.device) -> list[float]:
    """Each value summed over the ranks (the epoch's loss and accuracy counts)."""
    if world()[1] == 1:
        return values
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return t.tolist()


def wrap(model: nn.Module, device: torch.device) -> nn.Module:
    """`model` under DDP in a process group (batch norm made global on CUDA); `model` itself otherwise."""
    if world()[1] == 1:
        return model
    if device.type == "cuda":
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    return nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def rank_seed(seed: int, epoch: int) -> int:
    """The seed of this rank's random draws (attack starts, noise) in `epoch`: different per rank,
    fixed per (seed, epoch, rank), so a resumed run draws what the uninterrupted one drew."""
    digest = hashlib.sha256(f"{seed}:{epoch}:{world()[0]}".encode()).digest()
    return int.from_bytes(digest[:8], "little") % 2**63


def follower_done(net: nn.Module) -> None:
    """End a follower's part (after the last epoch): wait for rank 0's checkpoint, then raise
    `FollowerDone`; rank 0 goes on alone (evaluation and registration are a one-process job), and
    `world()` says (0, 1) from here on. In one process: nothing.

    Neither the process group nor the DDP wrapper `net` is torn down: their destructors can wait
    for peers that have already left (seen as a rare hang at a follower's exit), so `net` is kept
    alive and a multi-process job's processes end with `os._exit` (`exit_now`)."""
    global _alone
    if world()[1] == 1:
        return
    _kept.append(net)
    follower = is_follower()
    dist.barrier()
    if follower:
        raise FollowerDone()
    _alone = True


def exit_now(code: int) -> None:
    """End this rank's process at once (logs and streams flushed), without the destructors of the
    process group and DDP: see `follower_done`."""
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
