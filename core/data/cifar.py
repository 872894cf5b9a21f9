"""Reader for CIFAR-10's python batches without trusting pickle.

The batches are pickles of a dict of bytes, lists and one uint8 array. They are read by an
unpickler that resolves only the numpy names such an array needs, so a crafted file cannot run
code; anything else in the stream is an error.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np

_ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
}

TRAIN_BATCHES = [f"data_batch_{i}" for i in range(1, 6)]
TEST_BATCHES = ["test_batch"]


class _ArrayOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        raise ValueError(f"CIFAR batch refers to {module}.{name}, which a data batch never needs")


def read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 3, 32, 32) uint8 and labels (N,) int64 of one CIFAR-10 python batch."""
    with open(path, "rb") as f:
        raw = _ArrayOnlyUnpickler(io.BytesIO(f.read()), encoding="bytes").load()
    if not isinstance(raw, dict) or b"data" not in raw or b"labels" not in raw:
        raise ValueError(f"{path}: not a CIFAR-10 batch (no data/labels)")
    x = np.asarray(raw[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
    y = np.asarray(raw[b"labels"], dtype=np.int64)
    return x, y


def read_split(folder: Path, train: bool) -> tuple[np.ndarray, np.ndarray]:
    """All batches of one split, concatenated."""
    parts = [read_batch(folder / name) for name in (TRAIN_BATCHES if train else TEST_BATCHES)]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
