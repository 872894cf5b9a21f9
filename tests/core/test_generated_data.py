"""Generated datasets: shards that resume to the same images, the classifier filter, the catalogue
format they are stored in, and training that mixes them into every batch."""

import json

import numpy as np
import pytest
import torch
from safetensors.numpy import save_file

from core.contract.diffusion_specs import DatasetGenerationSpec, SampleFilterSpec, UNetSpec
from core.contract.presets import ddpm_preset
from core.contract.specs import DataSpec, GeneratedMixSpec, ModelSpec, OptimSpec
from core.data import load_dataset
from core.data.dataset import Dataset
from core.data.loaders import dataset_files_present
from core.diffusion.ddpm import load_diffusion, train_ddpm
from core.diffusion.generate import MAX_IMAGES, filter_samples, generate_shard, shard_ranges
from core.jobs.generation_runners import quality_picks
from core.training import train
from core.training.mixing import batch_indices, batch_plan, epoch_orders
from tests.conftest import tiny_spec
from tests.core.test_diffusion import tiny


@pytest.fixture(scope="module")
def conditional(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cond-ddpm")
    train_ddpm(tiny(epochs=1, class_conditional=True), folder)
    return load_diffusion(folder)


def test_shards_cover_every_class_equally():
    spec = DatasetGenerationSpec(per_class=7, shard_size=20)
    ranges = shard_ranges(spec, 10)
    assert ranges[0] == (0, 20) and ranges[-1] == (60, 70) and len(ranges) == 4
    labels = np.concatenate([np.arange(*r) % 10 for r in ranges])
    assert np.bincount(labels).tolist() == [7] * 10
    with pytest.raises(ValueError, match="at most"):
        shard_ranges(DatasetGenerationSpec(per_class=100_000), MAX_IMAGES // 100_000 + 1)


def test_the_images_kept_for_the_frechet_distance_span_every_class():
    labels = np.arange(1000) % 10  # a shard's labels cycle through the classes
    picks = quality_picks(1000, 0.2, k=3)
    assert len(picks) == 200 and len(set(picks)) == 200
    assert np.bincount(labels[picks], minlength=10).min() >= 10  # every-5th would give classes 0 and 5 only
    assert (quality_picks(1000, 0.2, k=3) == picks).all() and len(quality_picks(7, 1.0, k=0)) == 7


def test_a_shard_is_the_same_however_often_it_is_made(conditional):
    spec = DatasetGenerationSpec(per_class=3, steps=3, shard_size=12)
    first = generate_shard(conditional, spec, 1, (12, 24))
    again = generate_shard(conditional, spec, 1, (12, 24))
    other = generate_shard(conditional, spec, 0, (0, 12))
    assert first["x_train"].dtype == np.uint8 and first["x_train"].shape == (12, 1, 8, 8)
    assert first["y_train"].tolist() == [i % 10 for i in range(12, 24)] == first["drawn"].tolist()
    np.testing.assert_array_equal(first["x_train"], again["x_train"])
    assert not np.array_equal(first["x_train"], other["x_train"])


def test_an_unconditional_model_cannot_label(tmp_path):
    spec = ddpm_preset("smoke").model_copy(
        update={"data": DataSpec(name="digits", train_subset=32), "epochs": 1, "unet": UNetSpec(block_out_channels=[8])}
    )
    train_ddpm(spec, tmp_path)
    with pytest.raises(ValueError, match="class-conditional"):
        generate_shard(load_diffusion(tmp_path), DatasetGenerationSpec(per_class=1, steps=2), 0, (0, 10))


class Fixed(torch.nn.Module):
    """A 'classifier' whose logits are given."""

    def __init__(self, logits):
        super().__init__()
        self.logits, self.p = logits, torch.nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return self.logits[: len(x)]


def test_filter_agrees_or_relabels_above_the_confidence():
    images, drawn = torch.zeros(3, 1, 4, 4), torch.tensor([0, 1, 2])
    logits = torch.tensor([[5.0, 0, 0], [5.0, 0, 0], [0, 0, 0.1]])  # right, wrong, right but unsure
    clf = Fixed(logits)
    keep, labels = filter_samples(images, drawn, clf, SampleFilterSpec(classifier_id="c"))
    assert keep.tolist() == [True, False, True] and labels.tolist() == [0, 1, 2]
    keep, _ = filter_samples(images, drawn, clf, SampleFilterSpec(classifier_id="c", confidence=0.9))
    assert keep.tolist() == [True, False, False]
    keep, labels = filter_samples(
        images, drawn, clf, SampleFilterSpec(classifier_id="c", mode="relabel", confidence=0.9)
    )
    assert keep.tolist() == [True, True, False] and labels[:2].tolist() == [0, 0]
    keep, labels = filter_samples(images, drawn, None, None)
    assert keep.all() and labels is drawn


def test_shards_load_as_one_dataset(tmp_path):
    x = np.arange(2 * 4 * 4, dtype=np.uint8).reshape(2, 1, 4, 4)
    save_file({"x_train": x[:1], "y_train": np.array([0]), "drawn": np.array([0])}, tmp_path / "a.safetensors")
    save_file({"x_train": x[1:], "y_train": np.array([1]), "drawn": np.array([1])}, tmp_path / "b.safetensors")
    save_file({"x_test": x, "y_test": np.array([1, 0])}, tmp_path / "t.safetensors")
    meta = {"classes": ["a", "b"], "files": ["a.safetensors", "b.safetensors", "t.safetensors"]}
    (tmp_path / "dataset.json").write_text(json.dumps(meta))
    assert dataset_files_present(tmp_path)
    ds = load_dataset(DataSpec(name="uploaded", dataset_id="x", root=str(tmp_path)))
    assert ds.x_train.shape == (2, 1, 4, 4) and ds.y_train.tolist() == [0, 1] and ds.y_test.tolist() == [1, 0]
    assert ds.x_train[1].flatten()[0] == pytest.approx(16 / 255)
    (tmp_path / "b.safetensors").unlink()  # a fetch cut short
    assert not dataset_files_present(tmp_path)
    (tmp_path / "dataset.json").write_text(json.dumps({**meta, "files": ["../escape.safetensors"]}))
    with pytest.raises(FileNotFoundError):
        load_dataset(DataSpec(name="uploaded", dataset_id="x", root=str(tmp_path)))


@pytest.mark.parametrize("length,batches", [("same_steps", 4), ("same_epochs", 14)])
def test_mixed_batches_hold_the_fraction(length, batches):
    mix = GeneratedMixSpec(data=DataSpec(name="uploaded", dataset_id="g"), fraction=0.7, length=length)
    plan = batch_plan(100, 400, mix, 50)
    assert (plan.real, plan.generated, plan.batches) == (30, 70, batches)
    orders = epoch_orders(plan, seed=3, epoch=1)
    real, gen = batch_indices(plan, orders, 2)
    assert len(real) == 30 and len(gen) == 70 and gen.max() < 50 and real.max() < 400
    again = batch_indices(plan, epoch_orders(plan, seed=3, epoch=1), 2)
    assert torch.equal(real, again[0]) and torch.equal(gen, again[1])
    seen = torch.cat([batch_indices(plan, orders, b)[0] for b in range(plan.batches)])
    assert len(set(seen.tolist())) == (120 if length == "same_steps" else 400)


def test_training_mixes_generated_images(tmp_path):
    real = load_dataset(DataSpec(name="digits"))
    # "generated" images: the real ones inverted, a distribution the model could not see otherwise
    fake = Dataset("g", 1 - real.x_train, real.y_train, real.x_test, real.y_test, real.classes)
    mix = GeneratedMixSpec(data=DataSpec(name="uploaded", dataset_id="g"), fraction=0.5)
    spec = tiny_spec(
        generated=mix,
        method="standard",
        epochs=4,
        model=ModelSpec(image_size=8, width=16),
        optim=OptimSpec(name="adam", lr=3e-3, weight_decay=0.0),
    )
    train(spec, tmp_path / "mixed", dataset=real, generated=fake)
    train(spec.model_copy(update={"generated": None}), tmp_path / "real", dataset=real)
    from core.evaluation import accuracy
    from core.models import load_model

    acc = {
        (name, inverted): accuracy(
            load_model(tmp_path / name), 1 - real.x_test if inverted else real.x_test, real.y_test
        )
        for name in ("mixed", "real")
        for inverted in (False, True)
    }
    assert acc["mixed", False] > 0.8 and acc["real", False] > 0.8, acc
    assert acc["mixed", True] > acc["real", True] + 0.3, acc
    bad = Dataset("g", real.x_train[:, :, :4, :4], real.y_train, real.x_test, real.y_test, real.classes)
    with pytest.raises(ValueError, match="do not fit"):
        train(spec, tmp_path / "bad", dataset=real, generated=bad)


def test_only_a_recorded_intact_shard_is_reused(tmp_path):
    """A shard file cut short by a crash (or never recorded) is made again, not loaded."""
    from functools import partial

    from safetensors.numpy import save

    from core.jobs.context import JobContext
    from core.jobs.generation_runners import _written_shard
    from core.store import jobs as store_jobs
    from core.store.artifacts import ArtifactStore
    from core.store.db import session_scope
    from core.store.migrate import upgrade

    url = f"sqlite:///{tmp_path / 'store.db'}"
    upgrade(url)
    with session_scope(url) as s:
        job_id = store_jobs.create_job(s, kind="dataset_generation", spec={}).id
    store = ArtifactStore(f"file://{tmp_path / 'artifacts'}")
    ctx = JobContext(
        job_id=job_id, session=partial(session_scope, url), store=store, work_dir=tmp_path, models=None, device="cpu"
    )
    shard = {"x_train": np.zeros((2, 1, 4, 4), np.uint8), "y_train": np.array([0, 1]), "drawn": np.array([0, 1])}
    assert _written_shard(ctx, 0) is None
    store.put_bytes(f"jobs/{job_id}/dataset/shard_00000.safetensors", save(shard))  # written, not recorded
    assert _written_shard(ctx, 0) is None
    with session_scope(url) as s:
        ctx.save_artifact(s, "dataset/shard_00000.safetensors", type="dataset", data=save(shard))
    assert _written_shard(ctx, 0)["y_train"].tolist() == [0, 1]
    store.put_bytes(f"jobs/{job_id}/dataset/shard_00000.safetensors", save(shard)[:-10])  # truncated by a crash
    assert _written_shard(ctx, 0) is None
