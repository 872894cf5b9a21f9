"""The in-memory dataset every loader returns: both splits as float tensors in [0, 1], NCHW, with
int64 labels; and the fixed-seed subset draw."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch


@dataclass(frozen=True)
class Dataset:
    """Both splits of a dataset, ready for training: images in [0, 1], NCHW float32 (or, for a
    dataset too big for memory, `core.data.lazy.LazyImages` that read them when indexed)."""

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    classes: list[str] = field(default_factory=list)

    @property
    def in_channels(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def image_size(self) -> int:
        return int(self.x_train.shape[-1])

    @property
    def num_classes(self) -> int:
        return len(self.classes)


def to_tensors(x: np.ndarray, y: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 images (N×H×W or N×C×H×W) and labels → float images in [0, 1] (NCHW) and int64 labels."""
    x = torch.from_numpy(np.array(x, dtype=np.uint8)).float().div_(255.0)  # a copy: IDX buffers are read-only
    return (x.unsqueeze(1) if x.ndim == 3 else x), torch.from_numpy(np.asarray(y, dtype=np.int64))


def subset(t, n: int | None, seed: int):
    """`n` rows of `t` (a tensor, or `LazyImages`: a view, nothing read) drawn with `seed` (in their
    original order); all of `t` when n is None."""
    if n is None or n >= len(t):
        return t
    idx = torch.randperm(len(t), generator=torch.Generator().manual_seed(seed))[:n].sort().values
    return t.view_of(idx) if hasattr(t, "view_of") else t[idx]
