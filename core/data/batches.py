"""A training epoch's batches, read the same way whether the images are in memory or on disk.

The training loops decide which images make each batch (`core.training.mixing`, fixed by seed and
epoch, and each rank's share of it); `read_batches` turns that list into (x, y) batches. In memory
it indexes the tensors; when any of the images are `LazyImages` it reads the batches in DataLoader
worker processes, a bounded number ahead (`PREFETCH` per worker), into pinned memory on CUDA, so
reading overlaps the training step and only a few batches are ever in memory. The workers hand
the images over as uint8 (a quarter of float's bytes in shared memory), made float on the device.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch.utils.data import DataLoader

from core.data.dataset import Dataset
from core.data.folder import UNREADABLE, UnreadableImage
from core.data.lazy import LazyImages

PREFETCH = 2  # batches each loader worker reads ahead
MAX_WORKERS = 8


@dataclass(frozen=True)
class Picked:
    """One batch's images: rows of the real dataset, and rows of the generated one (or None)."""

    real: torch.Tensor
    generated: torch.Tensor | None = None


class PlannedBatches(torch.utils.data.Dataset):
    """Batch `b` of an epoch's plan, read on indexing: (x, y) with the real images first."""

    def __init__(self, plan: list[Picked], data: Dataset, generated: Dataset | None = None):
        self.plan, self.data, self.generated = plan, data, generated

    def __len__(self) -> int:
        return len(self.plan)

    def __getitem__(self, b: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(x, y); x as uint8 when every image of the batch is read from disk (`read_batches`
        makes it float in [0, 1]), else float."""
        picked = self.plan[b]
        parts = [(self.data, picked.real)]
        if picked.generated is not None:
            parts.append((self.generated, picked.generated))
        raw = all(isinstance(d.x_train, LazyImages) for d, _ in parts)
        xs = [d.x_train.raw(rows) if raw else d.x_train[rows] for d, rows in parts]
        ys = [d.y_train[rows] for d, rows in parts]
        return (xs[0], ys[0]) if len(parts) == 1 else (torch.cat(xs), torch.cat(ys))


def streamed(*datasets: Dataset | None) -> bool:
    """Whether any of `datasets` reads its training images from disk."""
    return any(d is not None and isinstance(d.x_train, LazyImages) for d in datasets)


def loader_workers(processes: int = 1) -> int:
    """Reader processes per training process: the CPUs left to each of `processes`, at most 8."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(MAX_WORKERS, cpus // max(1, processes) - 1))


def read_batches(
    batches: PlannedBatches, *, device: torch.device, workers: int | None = None
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """The (x, y) of each planned batch in order: indexed in this process when every image is in
    memory, else read by `workers` DataLoader processes (default `loader_workers()`)."""
    if not streamed(batches.data, batches.generated):
        yield from (batches[b] for b in range(len(batches)))
        return
    workers = loader_workers() if workers is None else workers
    loader = DataLoader(
        batches,
        batch_size=None,  # each item is already a batch
        shuffle=False,
        num_workers=workers,
        pin_memory=device.type == "cuda",
        prefetch_factor=PREFETCH if workers else None,
        generator=torch.Generator(),  # its own: the workers' seed must not shift the training's random draws
    )
    try:
        for x, y in loader:
            if x.dtype == torch.uint8:  # read from disk, handed over as bytes: a quarter of float's
                x = x.to(device, non_blocking=True).float().div_(255.0)
            yield x, y
    except UnreadableImage as e:  # from a worker: its message holds the worker's whole traceback
        line = next((t for t in reversed(str(e).splitlines()) if UNREADABLE in t), str(e))
        raise UnreadableImage(line.split(f"{UnreadableImage.__name__}: ", 1)[-1]) from None
