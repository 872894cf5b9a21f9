"""The field's CIFAR-10 and ImageNet presets end to end at tiny scale, on files the tests write in
the datasets' real formats (CIFAR-10's python batches, an ImageNet-style folder of JPEGs of many
sizes): each preset's method, attack, recipe and schedule as they are, with a tiny network of the
same family, a few images and two epochs; then the evaluation of the weights it hands on."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch
from PIL import Image

from core.contract.attack_specs import ProtocolSpec
from core.contract.kinds import merged
from core.contract.presets import train_preset
from core.contract.specs import TrainSpec
from core.data import load_dataset
from core.data.folder import centre_crop
from core.evaluation import evaluate
from core.models import load_model
from core.training import train

TINY = {"epochs": 2, "batch_size": 16, "eval_subset": 16, "protocol": {"images": 16, "steps": 2, "queries": 20}}
NETWORKS = {  # the preset's family, tiny
    "cifar10-preact18": {"width": 8},
    "cifar10-wrn34-trades": {"arch": "wide_resnet", "depth": 10, "widen_factor": 1, "width": 8},
    "imagenet-resnet50-sat": {"width": 8, "image_size": 32, "num_classes": 4},
}


def write_cifar(root, n_train: int = 40, n_test: int = 20) -> None:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name, n in [*[(f"data_batch_{i}", n_train // 5) for i in range(1, 6)], ("test_batch", n_test)]:
        batch = {b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), b"labels": rng.integers(0, 10, n).tolist()}
        (folder / name).write_bytes(pickle.dumps(batch))


def write_imagenet_folder(root, classes: int = 4, per_class: int = 8) -> None:
    rng = np.random.default_rng(0)
    for split, count in (("train", per_class), ("test", per_class // 2)):
        for c in range(classes):
            (root / split / f"n0{c}").mkdir(parents=True)
            for i in range(count):
                w, h = int(rng.integers(36, 80)), int(rng.integers(36, 80))  # photographs come in many sizes
                pixels = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(root / split / f"n0{c}" / f"{i}.JPEG", format="JPEG")


def tiny(name: str, root) -> TrainSpec:
    spec = train_preset(name).model_dump(mode="json")
    data = {"root": str(root), "folder": None} if spec["data"]["name"] == "folder" else {"root": str(root)}
    if spec["data"].get("center_crop"):
        data["center_crop"] = 32
    recipe = {"holdout": 8} if spec["recipe"]["holdout"] else {}
    overrides = {**TINY, "data": data, "model": NETWORKS[name], "recipe": recipe, "amp": False, "channels_last": False}
    return TrainSpec.model_validate(merged(spec, overrides))


@pytest.mark.parametrize("name", list(NETWORKS))
def test_a_field_preset_trains_and_is_evaluated_end_to_end(name, tmp_path):
    (write_imagenet_folder if name.startswith("imagenet") else write_cifar)(tmp_path / "data")
    spec = tiny(name, tmp_path / "data")
    preset = train_preset(name)
    assert (spec.method, spec.attack, spec.recipe.flip) == (preset.method, preset.attack, preset.recipe.flip)
    torch.manual_seed(0)
    result = train(spec, tmp_path / "run")
    assert len(result.history) == 2 and all(np.isfinite(h["train_loss"]) for h in result.history)
    if preset.recipe.select == "best":  # early stopping on held-out training images, as Rice et al.
        assert result.chosen["weights"] == "best" and result.chosen["epoch"] in (1, 2)
    model = load_model(tmp_path / "run")
    assert model.spec.arch == spec.model.arch
    ds = load_dataset(spec.data)
    assert ds.x_train.shape[1:] == (3, 32, 32) and ds.x_train.min() >= 0 and ds.x_train.max() <= 1
    protocol = ProtocolSpec.model_validate({**spec.protocol.model_dump(), "ensemble": "pgd"})
    out = evaluate(model, ds.x_test, ds.y_test, protocol, num_classes=spec.model.num_classes).model_dump()
    assert 0 <= out["robust_acc"] <= out["clean_acc"] <= 1


def test_imagenet_photographs_are_resized_on_their_short_side_and_centre_cropped():
    img = Image.new("RGB", (200, 100), (0, 0, 0))
    img.paste((255, 255, 255), (90, 0, 110, 100))  # a white band in the middle
    out = centre_crop(img, 56)  # short side to 64 (= 56 / 0.875), then the centre 56 × 56 of 128 × 64
    assert out.size == (56, 56)
    arr = np.asarray(out)
    assert arr[:, 28].min() > 200 and arr[:, 0].max() < 50  # the band stays in the middle
