"""Single test images by index, for the workers' attack lab and diffusion explorer: the dataset
stays loaded between calls."""

from __future__ import annotations

from functools import lru_cache

import torch

from core.contract.specs import DataSpec
from core.data.dataset import Dataset
from core.data.loaders import load_dataset


def test_image(spec: DataSpec, index: int) -> tuple[torch.Tensor, int]:
    """Image `index` of the dataset's test split (C×H×W in [0, 1]) and its label (subsets ignored).

    Raises:
        ValueError: the index is out of range.
    """
    whole = spec.model_copy(update={"train_subset": None, "test_subset": None, "seed": 0})
    ds = _cached_dataset(whole.model_dump_json())
    if index >= len(ds.x_test):
        raise ValueError(f"test_index {index} out of range: {spec.label} has {len(ds.x_test)} test images")
    return ds.x_test[index], int(ds.y_test[index])


@lru_cache(maxsize=2)
def _cached_dataset(spec_json: str) -> Dataset:
    return load_dataset(DataSpec.model_validate_json(spec_json))
