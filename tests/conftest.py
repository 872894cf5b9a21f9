"""Shared fixtures: fixed seeds and a tiny model trained once on digits."""

from __future__ import annotations

import pytest
import torch

from core.contract.attack_specs import AttackSpec
from core.contract.specs import DataSpec, ModelSpec, OptimSpec, TrainSpec


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def tiny_spec(**update) -> TrainSpec:
    """A digits run that takes about a second."""
    spec = TrainSpec(
        data=DataSpec(name="digits", train_subset=256, test_subset=128),
        epochs=2,
        batch_size=64,
        model=ModelSpec(image_size=8, width=8),
        attack=AttackSpec(eps=0.1, steps=2),
        eval_attack=AttackSpec(eps=0.1, steps=3),
        eval_subset=64,
        optim=OptimSpec(name="sgd", lr=0.05),
    )
    return spec.model_copy(update=update)


@pytest.fixture(scope="session")
def trained_digits(tmp_path_factory):
    """A standard-trained small CNN on digits (≈ 95 % clean), its checkpoint folder and data."""
    from core.data import load_dataset
    from core.models import load_model
    from core.training import train

    spec = TrainSpec(
        data=DataSpec(name="digits"),
        method="standard",
        epochs=4,
        batch_size=64,
        model=ModelSpec(image_size=8, width=16),
        eval_subset=64,
        optim=OptimSpec(name="adam", lr=3e-3, weight_decay=0.0),
    )
    folder = tmp_path_factory.mktemp("digits_ckpt")
    ds = load_dataset(spec.data)
    train(spec, folder, dataset=ds)
    return load_model(folder), folder, ds
