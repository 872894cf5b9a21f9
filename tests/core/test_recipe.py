"""The recipe's extras: augmentation, the weight average, best-checkpoint selection on held-out
training images, label smoothing and ε warm-up."""

import json

import pytest
import torch
import torch.nn.functional as F
from pydantic import ValidationError
from safetensors.torch import load_file

import core.training.harness as harness
import core.training.loop as loop
from core.contract.progress import Stopped
from core.contract.recipe_specs import RecipeSpec
from core.contract.specs import OptimSpec, TrainSpec
from core.data import load_dataset
from core.models import build_model
from core.training import train
from core.training.augment import augment, batch_generator, random_crop, random_flip, random_resized_crop
from core.training.averaging import WeightAverage
from core.training.objectives import batch_objective
from core.training.selection import holdout_split
from tests.conftest import tiny_spec

STRONG = RecipeSpec(crop_pad=2, flip=True, ema_decay=0.9, holdout=64, select="best")


def test_the_batch_generator_takes_every_seed_a_spec_allows():
    """The largest spec seed with a late epoch and batch overflowed a generator's 64 bits."""
    top = 2**31 - 1  # core.contract.spec_base.Seed's bound
    draws = [torch.rand(3, generator=batch_generator(top, 1000, 100_000, rank)) for rank in (0, 1)]
    assert not torch.equal(*draws)
    assert torch.equal(
        torch.rand(3, generator=batch_generator(0, 1, 2)), torch.rand(3, generator=batch_generator(0, 1, 2))
    )
    with pytest.raises(ValidationError):
        TrainSpec(seed=top + 1)


def test_crop_is_a_shifted_window_of_the_zero_padded_image_and_stays_in_the_box():
    x = torch.rand(16, 3, 8, 9)
    out = random_crop(x, 2, batch_generator(0, 1, 2))
    assert out.shape == x.shape and out.min() >= 0 and out.max() <= 1
    dy, dx = torch.randint(0, 5, (2, 16), generator=batch_generator(0, 1, 2))
    padded = F.pad(x, (2, 2, 2, 2))
    for i in range(16):
        assert torch.equal(out[i], padded[i, :, dy[i] : dy[i] + 8, dx[i] : dx[i] + 9])
    assert len({(int(a), int(b)) for a, b in zip(dy, dx, strict=True)}) > 1  # offsets differ between images


def test_flip_mirrors_some_images_and_leaves_the_others():
    x = torch.rand(64, 1, 5, 5)
    out = random_flip(x, batch_generator(3, 0, 0))
    flipped = torch.tensor([torch.equal(o, i.flip(2)) for o, i in zip(out, x, strict=True)])
    kept = torch.tensor([torch.equal(o, i) for o, i in zip(out, x, strict=True)])
    assert bool((flipped | kept).all()) and 0 < int(flipped.sum()) < 64


def test_the_resized_crop_keeps_shape_box_and_constant_images_and_zooms_in():
    x = torch.rand(32, 3, 16, 16)
    out = random_resized_crop(x, 0.08, batch_generator(0, 0, 0))
    assert out.shape == x.shape and out.min() >= 0 and out.max() <= 1
    assert torch.equal(out, random_resized_crop(x, 0.08, batch_generator(0, 0, 0)))
    grey = torch.full((4, 1, 16, 16), 0.3)
    assert torch.allclose(random_resized_crop(grey, 0.5, batch_generator(0, 0, 1)), grey)
    ramp = torch.linspace(0, 1, 16).expand(64, 1, 16, 16)  # brightness grows left to right
    spread = random_resized_crop(ramp.contiguous(), 0.08, batch_generator(0, 0, 2))
    width = spread[..., -1] - spread[..., 0]  # a window narrower than the image spans less of the ramp
    assert bool((width <= 1 + 1e-6).all()) and float(width.mean()) < 0.9


def test_augmentation_is_fixed_by_seed_epoch_and_batch():
    x = torch.rand(32, 1, 8, 8)
    recipe = RecipeSpec(crop_pad=2, flip=True, resized_crop=0.5)
    a = augment(x, recipe, batch_generator(0, 4, 7))
    assert torch.equal(a, augment(x, recipe, batch_generator(0, 4, 7)))
    for other in (batch_generator(1, 4, 7), batch_generator(0, 5, 7), batch_generator(0, 4, 8)):
        assert not torch.equal(a, augment(x, recipe, other))
    assert augment(x, RecipeSpec(), batch_generator(0, 0, 0)) is x


def test_an_average_with_decay_zero_is_the_weights_and_otherwise_follows_the_recursion():
    torch.manual_seed(0)
    model = build_model(tiny_spec().model)
    zero, avg = WeightAverage(model, 0.0), WeightAverage(model, 0.75)
    start = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p))
    zero.update(model)
    avg.update(model)
    now = model.state_dict()
    assert all(torch.equal(zero.state_dict()[k], now[k]) for k in now)
    for k in now:
        assert torch.allclose(avg.state_dict()[k], 0.75 * start[k] + 0.25 * now[k], atol=1e-6)
    with pytest.raises(ValueError, match="decay"):
        WeightAverage(model, 1.0)


def test_a_run_with_an_average_of_decay_zero_hands_on_its_last_weights(tmp_path):
    result = train(tiny_spec(recipe=RecipeSpec(ema_decay=0.0)), tmp_path)
    assert result.chosen == {"weights": "ema", "averaged": True, "epoch": 2}
    model, last = load_file(tmp_path / "model.safetensors"), load_file(tmp_path / "train_state.safetensors")
    assert model.keys() and all(torch.equal(model[k], last[f"last/{k}"]) for k in model)


def test_the_holdout_split_is_disjoint_covering_and_fixed_by_the_seed():
    train_rows, held = holdout_split(100, 10, seed=3)
    assert len(held) == 10 and len(train_rows) == 90
    assert sorted(torch.cat([train_rows, held]).tolist()) == list(range(100))
    assert torch.equal(held, holdout_split(100, 10, seed=3)[1]) and not torch.equal(held, holdout_split(100, 10, 4)[1])
    with pytest.raises(ValueError, match="leaves none"):
        holdout_split(10, 10, seed=0)


def test_best_needs_held_out_images():
    with pytest.raises(ValidationError, match="holdout"):
        RecipeSpec(select="best")


def test_best_is_chosen_on_held_out_training_images_never_trained_on(tmp_path, monkeypatch):
    spec = tiny_spec(epochs=4, recipe=STRONG)
    ds = load_dataset(spec.data)
    _, held = holdout_split(len(ds.x_train), STRONG.holdout, spec.data.seed)
    read_rows, monitored = [], []

    class Recording(harness.PlannedBatches):
        def __getitem__(self, b):
            read_rows.append(self.plan[b].real)
            return super().__getitem__(b)

    def recording_monitor(model, x, y, attack):
        monitored.append((x, y))
        return held_out_metrics(model, x, y, attack)

    held_out_metrics = loop.held_out_metrics
    monkeypatch.setattr(harness, "PlannedBatches", Recording)
    monkeypatch.setattr(loop, "held_out_metrics", recording_monitor)
    result = train(spec, tmp_path, dataset=ds)

    trained = torch.cat(read_rows)
    assert len(trained) == 4 * (len(ds.x_train) - len(held))  # every other image, each epoch
    assert not set(trained.tolist()) & set(held.tolist())
    assert all(torch.equal(x, ds.x_train[held]) and torch.equal(y, ds.y_train[held]) for x, y in monitored)
    robust = [row["robust_acc"] for row in result.history]
    best_epoch = robust.index(max(robust)) + 1
    assert result.chosen["weights"] == "best" and result.chosen["epoch"] == best_epoch
    assert result.chosen["held_out"]["robust_acc"] == max(robust)
    model, sets = load_file(tmp_path / "model.safetensors"), load_file(tmp_path / "train_state.safetensors")
    assert all(torch.equal(model[k], sets[f"best/{k}"]) for k in model)
    meta = json.loads((tmp_path / "checkpoint.json").read_text())
    assert meta["chosen"] == result.chosen and meta["epoch"] == 4


def test_resume_with_augmentation_average_and_selection_gives_the_uninterrupted_run(tmp_path):
    spec = tiny_spec(epochs=3, recipe=STRONG, optim=OptimSpec(name="sgd", lr=0.05, schedule="cosine"))
    full = train(spec, tmp_path / "full")
    calls = {"n": 0}

    def stop_in_epoch_two():  # (256 − 64) / 64 = 3 batches per epoch: stop inside epoch 2
        calls["n"] += 1
        return calls["n"] == 5

    with pytest.raises(Stopped):
        train(spec, tmp_path / "resumed", should_stop=stop_in_epoch_two)
    assert json.loads((tmp_path / "resumed" / "checkpoint.json").read_text())["epoch"] == 1
    resumed = train(spec, tmp_path / "resumed")
    assert resumed.chosen == full.chosen
    assert [r["train_loss"] for r in resumed.history] == [r["train_loss"] for r in full.history]
    for name in ("model.safetensors", "train_state.safetensors"):
        a, b = load_file(tmp_path / "full" / name), load_file(tmp_path / "resumed" / name)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert {k.split("/")[0] for k in a if "/" in k} == {"ema", "best", "last"}
    again = train(spec, tmp_path / "resumed")  # a finished run is not chosen twice
    assert again.chosen == full.chosen
    assert all(torch.equal(v, load_file(tmp_path / "resumed" / name)[k]) for k, v in b.items())


def test_the_average_leaves_training_alone_and_augmentation_changes_it(tmp_path):
    runs = {
        name: train(tiny_spec(epochs=1, recipe=recipe), tmp_path / name)
        for name, recipe in (
            ("plain", RecipeSpec()),
            ("kept", RecipeSpec(ema_decay=0.5, use_ema=False)),
            ("augmented", RecipeSpec(crop_pad=1)),
        )
    }
    weights = {name: load_file(tmp_path / name / "model.safetensors") for name in runs}
    assert runs["kept"].chosen is None  # the average is kept in the checkpoint only
    assert all(torch.equal(weights["plain"][k], weights["kept"][k]) for k in weights["plain"])
    assert "ema/net.features.0.weight" in load_file(tmp_path / "kept" / "train_state.safetensors")
    assert runs["augmented"].history[0]["train_loss"] != runs["plain"].history[0]["train_loss"]


def test_label_smoothing_is_cross_entropy_against_the_smoothed_targets():
    torch.manual_seed(0)
    spec = tiny_spec(method="standard", recipe=RecipeSpec(label_smoothing=0.2))
    model = build_model(spec.model)
    x, y = torch.rand(8, 1, 8, 8), torch.randint(0, 10, (8,))
    loss, logits = batch_objective(spec)(model, x, y)
    target = 0.8 * F.one_hot(y, 10) + 0.2 / 10
    assert torch.allclose(loss, -(target * F.log_softmax(logits, 1)).sum(1).mean(), atol=1e-6)
    plain, _ = batch_objective(tiny_spec(method="standard"))(model, x, y)
    assert not torch.isclose(loss, plain)


def test_eps_warm_up_grows_linearly_then_holds(tmp_path, monkeypatch):
    built = []
    real = loop.batch_objective

    def recording(spec: TrainSpec, eps=None):
        built.append(spec.attack.eps if eps is None else eps)
        return real(spec, eps=eps)

    monkeypatch.setattr(loop, "batch_objective", recording)
    train(tiny_spec(epochs=3, recipe=RecipeSpec(eps_warmup_epochs=2)), tmp_path)  # 4 batches per epoch
    assert built[0] == 0.1  # built before the loop
    assert built[1:] == pytest.approx([0.1 * k / 8 for k in range(1, 9)] + [0.1])
