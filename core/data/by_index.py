"""Single test images by index, for the workers' attack lab and diffusion explorer: the dataset
stays loaded between calls."""

from __future__ import annotations

from functools import lru_cache

import torch

from core.contract.specs import DataSpec
from core.data.dataset import Dataset
from core.data.loaders import load_dataset


def test_image(name: str, index: int) -> tuple[torch.Tensor, int]:
    """Image `index` of a named dataset's test split (C×H×W in [0, 1]) and its label.

    Raises:
        ValueError: the index is out of range, or the dataset has no name to load it by.
    """
    ds = _cached_dataset(name)
    if index >= len(ds.x_test):
        raise ValueError(f"test_index {index} out of range: {name} has {len(ds.x_test)} test images")
    return ds.x_test[index], int(ds.y_test[index])


@lru_cache(maxsize=2)
def _cached_dataset(name: str) -> Dataset:
    if name == "folder":
        raise ValueError("test images are available for named datasets, not 'folder'")
    return load_dataset(DataSpec(name=name))
