"""Streamed datasets: a class-folder dataset and a sharded catalogue dataset read from disk give the
images the in-memory path gives, train to the same weights, and are read in DataLoader workers."""

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.numpy import save_file
from safetensors.torch import load_file

from core.contract.specs import DataSpec
from core.data import load_dataset
from core.data.lazy import FolderImages, LazyImages, ShardImages
from core.training import train
from tests.conftest import tiny_spec


@pytest.fixture(scope="module")
def digits():
    return load_dataset(DataSpec(name="digits"))


@pytest.fixture(scope="module")
def folder(tmp_path_factory, digits):
    root = tmp_path_factory.mktemp("folder")
    for split, x, y, n in (("train", digits.x_train, digits.y_train, 300), ("test", digits.x_test, digits.y_test, 80)):
        for i in range(n):
            d = root / split / f"class{int(y[i])}"
            d.mkdir(parents=True, exist_ok=True)
            Image.fromarray((x[i, 0] * 255).round().byte().numpy(), mode="L").save(d / f"{i:04d}.png")
    return root


@pytest.fixture(scope="module")
def shards(tmp_path_factory, digits):
    root = tmp_path_factory.mktemp("shards")
    as_u8 = lambda t: (t * 255).round().byte().numpy()  # noqa: E731
    save_file({"x_train": as_u8(digits.x_train[:120]), "y_train": digits.y_train[:120].numpy()}, root / "a.safetensors")
    save_file(
        {"x_train": as_u8(digits.x_train[120:250]), "y_train": digits.y_train[120:250].numpy()}, root / "b.safetensors"
    )
    save_file({"x_test": as_u8(digits.x_test[:60]), "y_test": digits.y_test[:60].numpy()}, root / "test.safetensors")
    meta = {"classes": digits.classes, "files": ["a.safetensors", "b.safetensors", "test.safetensors"]}
    (root / "dataset.json").write_text(json.dumps(meta))
    return root


def spec_of(name: str, root: Path, stream: bool, **update) -> DataSpec:
    extra = {"dataset_id": "d1"} if name == "uploaded" else {}
    return DataSpec(name=name, root=str(root), stream=stream, **extra, **update)


@pytest.mark.parametrize(("name", "kind"), [("folder", FolderImages), ("uploaded", ShardImages)])
def test_streamed_images_equal_the_loaded_ones(name, kind, folder, shards):
    root = folder if name == "folder" else shards
    loaded, streamed = load_dataset(spec_of(name, root, False)), load_dataset(spec_of(name, root, True))
    assert isinstance(streamed.x_train, kind) and isinstance(streamed.x_test, kind)
    assert streamed.x_train.shape == loaded.x_train.shape and streamed.classes == loaded.classes
    assert torch.equal(streamed.x_train[torch.arange(len(loaded.x_train))], loaded.x_train)
    assert torch.equal(streamed.x_test[:10], loaded.x_test[:10]) and torch.equal(streamed.y_train, loaded.y_train)
    assert torch.equal(streamed.x_train[7], loaded.x_train[7])
    sub_l, sub_s = (
        load_dataset(spec_of(name, root, False, train_subset=50)),
        load_dataset(spec_of(name, root, True, train_subset=50)),
    )
    assert isinstance(sub_s.x_train, LazyImages) and len(sub_s.x_train) == 50
    assert torch.equal(sub_s.x_train[:], sub_l.x_train)  # the same fixed-seed subset, drawn without reading


def test_training_on_a_streamed_folder_gives_the_in_memory_weights_and_reads_in_workers(tmp_path, folder, monkeypatch):
    pids = tmp_path / "pids"
    read = FolderImages.read

    def recording_read(self, row):
        with pids.open("a") as f:
            f.write(f"{os.getpid()}\n")
        return read(self, row)

    monkeypatch.setattr(FolderImages, "read", recording_read)
    spec = tiny_spec(epochs=1, eval_subset=16)
    in_memory = train(spec.model_copy(update={"data": spec_of("folder", folder, False)}), tmp_path / "memory")
    pids.unlink(missing_ok=True)
    streamed = train(spec.model_copy(update={"data": spec_of("folder", folder, True)}), tmp_path / "streamed")
    readers = {int(p) for p in pids.read_text().split()}
    train_reads = len(pids.read_text().split()) - 16  # the held-out monitor reads its 16 in this process
    assert train_reads >= 300 and readers - {os.getpid()}, "the epoch's images are read by loader workers"
    a, b = load_file(tmp_path / "memory" / "model.safetensors"), load_file(tmp_path / "streamed" / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert in_memory.history[0]["train_loss"] == streamed.history[0]["train_loss"]


def test_a_ddpm_trains_on_a_streamed_dataset(tmp_path, shards):
    from core.diffusion.ddpm import train_ddpm
    from tests.core.test_diffusion import tiny

    result = train_ddpm(tiny(epochs=1, data=spec_of("uploaded", shards, True)), tmp_path)
    assert np.isfinite(result.final["train_loss"])


@pytest.mark.parametrize("stream", [True, False])
def test_a_cut_short_image_fails_training_with_its_path_in_one_line(tmp_path, folder, stream):
    import shutil

    from core.data.folder import UnreadableImage

    copy = tmp_path / "data"
    shutil.copytree(folder, copy)
    bad = sorted((copy / "train").glob("*/*.png"))[123]
    bad.write_bytes(bad.read_bytes()[:40])
    spec = tiny_spec(epochs=1, eval_subset=16)
    with pytest.raises(UnreadableImage) as caught:
        train(spec.model_copy(update={"data": spec_of("folder", copy, stream)}), tmp_path / "run")
    message = str(caught.value)
    assert message.startswith(f"{bad}: not a readable image") and "\n" not in message, message


def test_workers_hand_over_bytes_and_the_batches_arrive_as_the_in_memory_floats(folder):
    from core.data.batches import Picked, PlannedBatches, read_batches

    loaded, streamed = load_dataset(spec_of("folder", folder, False)), load_dataset(spec_of("folder", folder, True))
    plan = [Picked(torch.arange(0, 40)), Picked(torch.arange(100, 130))]
    assert PlannedBatches(plan, streamed)[0][0].dtype == torch.uint8  # what crosses shared memory
    got = list(read_batches(PlannedBatches(plan, streamed), device=torch.device("cpu"), workers=1))
    want = [PlannedBatches(plan, loaded)[b] for b in range(2)]
    assert all(torch.equal(g[0], w[0]) and torch.equal(g[1], w[1]) for g, w in zip(got, want, strict=True))
    assert got[0][0].dtype == torch.float32
