import json
import math

import pytest
import torch
from safetensors.torch import load_file

from core.contract.progress import Stopped
from core.contract.specs import OptimSpec
from core.training import train
from core.training.schedules import lr_at
from tests.conftest import tiny_spec


@pytest.mark.parametrize("method", ["standard", "pgd", "fast"])
def test_each_method_trains_with_finite_loss_and_metrics(tmp_path, method):
    result = train(tiny_spec(method=method), tmp_path)
    assert result.epochs_done == 2
    for row in result.history:
        assert math.isfinite(row["train_loss"])
        assert 0 <= row["robust_acc"] <= row["clean_acc"] <= 1
    assert {"train_loss", "train_acc", "clean_acc", "robust_acc", "lr"} <= set(result.final)
    assert (tmp_path / "model.safetensors").is_file() and (tmp_path / "checkpoint.json").is_file()


@pytest.mark.parametrize("optim", ["sgd", "adam"])
def test_resume_after_interruption_gives_identical_weights(tmp_path, optim):
    spec = tiny_spec(epochs=3, optim=OptimSpec(name=optim, lr=0.01, schedule="cosine"))
    full = train(spec, tmp_path / "full")
    calls = {"n": 0}

    def stop_in_epoch_two():  # 256 images / 64 = 4 batches per epoch: stop inside epoch 2
        calls["n"] += 1
        return calls["n"] == 6

    with pytest.raises(Stopped):
        train(spec, tmp_path / "resumed", should_stop=stop_in_epoch_two)
    assert json.loads((tmp_path / "resumed" / "checkpoint.json").read_text())["epoch"] == 1
    second = train(spec, tmp_path / "resumed")
    assert second.epochs_done == 3
    a, b = (load_file(tmp_path / "full" / "model.safetensors"), load_file(tmp_path / "resumed" / "model.safetensors"))
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert [r["train_loss"] for r in full.history] == [r["train_loss"] for r in second.history]


def test_progress_reports_fraction_and_epoch_metrics(tmp_path):
    reports = []
    train(tiny_spec(), tmp_path, progress=reports.append)
    fractions = [r.fraction for r in reports]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert [r.step for r in reports if r.metrics] == [1, 2]


def test_resume_refuses_a_different_spec(tmp_path):
    train(tiny_spec(epochs=1), tmp_path)
    with pytest.raises(ValueError, match="different spec"):
        train(tiny_spec(epochs=1, seed=5), tmp_path)


def test_model_must_match_data(tmp_path):
    spec = tiny_spec()
    spec = spec.model_copy(update={"model": spec.model.model_copy(update={"image_size": 28})})
    with pytest.raises(ValueError, match="dataset 'digits'"):
        train(spec, tmp_path)


@pytest.mark.parametrize("schedule", ["constant", "cosine", "piecewise", "cyclic"])
def test_schedules(schedule):
    spec = OptimSpec(lr=1.0, schedule=schedule)
    values = [lr_at(spec, p / 100) for p in range(101)]
    assert all(0 <= v <= 1.0 for v in values)
    if schedule == "constant":
        assert set(values) == {1.0}
    elif schedule == "cyclic":
        assert values[0] == 0 and values[40] == pytest.approx(1.0) and values[100] == pytest.approx(0, abs=1e-9)
    else:
        assert values[0] == 1.0 and values[-1] < 0.02 and values == sorted(values, reverse=True)


def test_gpu_preset_recipe_runs_with_bf16_autocast_and_channels_last(tmp_path):
    """The gpu preset's code path (PreAct ResNet-18, bf16 autocast, channels_last), shrunk to run
    on the CPU in seconds; on CUDA the same flags select the fast kernels."""
    from core.contract.presets import train_preset

    spec = train_preset("gpu")
    assert spec.model.arch == "preact_resnet18" and spec.amp and spec.channels_last
    small = spec.model_copy(
        update={
            "data": spec.data.model_copy(update={"train_subset": 64, "test_subset": 16}),
            "epochs": 1,
            "batch_size": 32,
            "model": spec.model.model_copy(update={"width": 8}),
            "eval_subset": 16,
            "device": "cpu",
            "attack": spec.attack.model_copy(update={"steps": 2}),
            "eval_attack": spec.eval_attack.model_copy(update={"steps": 2}),
        }
    )
    result = train(small, tmp_path)
    assert math.isfinite(result.final["train_loss"])


def test_trades_adversary_stays_in_the_ball_and_raises_the_kl(trained_digits):
    import torch.nn.functional as F

    from core.contract.attack_specs import AttackSpec
    from core.training.objectives import trades_adversary

    model, _, ds = trained_digits
    x = ds.x_test[:64]
    spec = AttackSpec(eps=0.1, steps=5)
    x_adv = trades_adversary(model, x, spec)
    assert (x_adv - x).abs().max() <= 0.1 + 1e-6 and x_adv.min() >= 0 and x_adv.max() <= 1
    with torch.no_grad():
        p = F.softmax(model(x), 1)
        kl = lambda z: F.kl_div(F.log_softmax(model(z), 1), p, reduction="sum").item()  # noqa: E731
        noise = (x + 0.1 * torch.sign(torch.randn_like(x))).clamp(0, 1)
    assert kl(x_adv) > kl(noise) > 0  # the ascent beats a random corner of the ball


def test_trades_trains_and_its_beta_trades_clean_for_robust(tmp_path):
    spec = tiny_spec(method="trades", epochs=2, trades_beta=6.0)
    result = train(spec, tmp_path / "trades")
    assert math.isfinite(result.final["train_loss"]) and result.epochs_done == 2
    zero_beta = train(spec.model_copy(update={"trades_beta": 0.0}), tmp_path / "beta0")
    plain = train(tiny_spec(method="standard", epochs=2), tmp_path / "standard")
    # β = 0 leaves the clean cross-entropy alone: exactly standard training
    a, b = load_file(tmp_path / "beta0" / "model.safetensors"), load_file(tmp_path / "standard" / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert zero_beta.final["train_loss"] == plain.final["train_loss"]
    assert result.final["train_loss"] > zero_beta.final["train_loss"]  # the KL term adds to the loss


def test_an_epoch_with_no_batch_to_train_on_is_refused_by_name(monkeypatch):
    import core.training.distributed as ddp
    from core.training.loop import epoch_plan
    from core.training.mixing import batch_plan, epoch_orders

    monkeypatch.setattr(ddp, "world", lambda: (0, 4))  # four processes meet a folder of 3 images
    plan = batch_plan(2, 3, None)
    picked, _ = epoch_plan(plan, epoch_orders(plan, 0, 0), 4)
    assert picked == []
    with pytest.raises(ValueError, match="3 training images make no batch for 4 process"):
        ddp.check_shared(len(picked), 3)
