"""Memory admission's estimate: it grows with what costs memory, and stays in range on the presets
(its error against measured peak RSS is in docs/benchmarks.md, from bench/memory_estimate.py)."""

from __future__ import annotations

import pytest

from core.contract.kinds import JOB_KINDS
from core.contract.memory import RSS_PER_SAVED, classifier_numbers, ddpm_train_bytes, train_bytes
from core.contract.presets import ddpm_preset, train_preset
from core.contract.specs import ActivationSpec, ModelSpec

GIB = 2**30


def test_the_estimate_grows_with_batch_width_and_precision():
    spec = train_preset("gpu")
    base = train_bytes(spec)
    assert train_bytes(spec.model_copy(update={"batch_size": 512})) > base
    wider = spec.model_copy(update={"model": spec.model.model_copy(update={"width": 128})})
    assert train_bytes(wider) > base
    assert train_bytes(spec.model_copy(update={"amp": False})) > base  # fp32 activations take twice bf16's
    ddpm = ddpm_preset("gpu")
    assert ddpm_train_bytes(ddpm.model_copy(update={"batch_size": 512})) > ddpm_train_bytes(ddpm)


def test_the_presets_fit_a_small_machine_and_a_monster_does_not():
    for name in ("smoke", "cpu", "gpu"):
        assert 0.4 * GIB < train_bytes(train_preset(name)) < 8 * GIB
        assert 0.4 * GIB < ddpm_train_bytes(ddpm_preset(name)) < 8 * GIB
    monster = train_preset("gpu").model_copy(update={"batch_size": 8192})
    monster = monster.model_copy(update={"model": monster.model.model_copy(update={"width": 512})})
    assert train_bytes(monster) > 64 * GIB
    assert JOB_KINDS["adversarial_training"].memory_fields == "batch_size, model.width or model.arch"


def test_a_multi_process_job_counts_every_process():
    spec, ddpm = train_preset("cpu"), ddpm_preset("cpu")
    for one, estimate in ((spec, train_bytes), (ddpm, ddpm_train_bytes)):
        two = one.model_copy(update={"gpus": 2})
        assert 1.5 * estimate(one) < estimate(two) < 2 * estimate(one)  # each its half batch


NEW_NETWORKS = [
    ModelSpec(arch="resnet18", in_channels=3, image_size=64, width=8),
    ModelSpec(arch="resnet50", in_channels=3, image_size=64, width=8, activation={"name": "silu"}),
    ModelSpec(arch="resnet34", in_channels=3, image_size=16, width=8, stem="cifar", activation={"probe": "both"}),
    ModelSpec(arch="wide_resnet", depth=10, widen_factor=2, width=8, in_channels=3, image_size=32),
    ModelSpec(arch="wide_resnet", depth=16, widen_factor=1, width=8, image_size=28, activation={"name": "gelu"}),
]


@pytest.mark.parametrize("model", NEW_NETWORKS, ids=lambda m: f"{m.arch}-{m.activation.label}")
def test_the_count_of_a_resnet_or_wrn_is_its_parameters_and_the_tensors_autograd_keeps(model):
    from bench.memory_estimate import saved_per_image
    from core.models import build_model

    params, activations = classifier_numbers(model)
    assert params == sum(p.numel() for p in build_model(model).parameters())
    assert activations / RSS_PER_SAVED == pytest.approx(saved_per_image(model), rel=0.08)


def test_the_named_networks_are_admitted_where_they_fit_and_grow_as_they_should():
    def train(model: ModelSpec, batch: int = 128) -> float:
        return train_bytes(train_preset("gpu").model_copy(update={"model": model, "batch_size": batch})) / GIB

    wrn28 = ModelSpec(arch="wrn28_10", in_channels=3, image_size=32)
    assert train(wrn28) < train(ModelSpec(arch="wrn34_10", in_channels=3, image_size=32))
    assert train(wrn28) < train(wrn28.model_copy(update={"activation": ActivationSpec(name="silu")}))
    resnet50 = ModelSpec(arch="resnet50", in_channels=3, image_size=224, num_classes=1000)
    assert train(resnet50, 64) < train(ModelSpec(arch="resnet101", in_channels=3, image_size=224, num_classes=1000), 64)
    assert train(resnet50.model_copy(update={"image_size": 112}), 64) < train(resnet50, 64)
    assert 1 < train(wrn28) < 16 and 1 < train(resnet50, 64) < 16  # a batch a GPU node trains
    assert train(resnet50, 8192) > 64  # refused: far beyond any one machine
