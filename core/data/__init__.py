"""Datasets by name, as float tensors in [0, 1], NCHW, with int64 labels.

`catalogue` (names, classes, where files are looked for), `dataset` (the `Dataset` and subsets),
`loaders` (`load_dataset` and one loader per source), `by_index` (single test images), and the file readers `idx`,
`cifar`, `folder`, `download`. This module only re-exports, and lazily: importing a torch-free
part (say `core.data.idx` or `core.data.catalogue`) does not import torch.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "Dataset": "core.data.dataset",
    "load_dataset": "core.data.loaders",
    "test_image": "core.data.by_index",
    "class_names": "core.data.catalogue",
    "candidate_dirs": "core.data.catalogue",
}
__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'core.data' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
