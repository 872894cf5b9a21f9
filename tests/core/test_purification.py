"""Diffusion purification: the defended model answers like a classifier and is randomized; its
exact gradient through the checkpointed sampler equals plain autograd's, BPDA's is the
classifier's at the purified point; the evaluation reports three numbers and keeps the lowest."""

import pytest
import torch

import core.diffusion.purify as purify_module
from core.contract.attack_specs import AttackSpec, ProtocolSpec
from core.contract.diffusion_specs import PurifierSpec
from core.contract.specs import DataSpec
from core.diffusion.ddpm import load_diffusion, train_ddpm
from core.diffusion.purify import Purified, reverse_timesteps
from core.evaluation.defense import WAYS, evaluate_defense
from tests.core.test_diffusion import tiny


@pytest.fixture(scope="module")
def diffusion(tmp_path_factory):
    folder = tmp_path_factory.mktemp("purifier")
    train_ddpm(tiny(data=DataSpec(name="digits", train_subset=256)), folder)
    return load_diffusion(folder)


def test_reverse_timesteps_run_from_t_star_to_zero():
    assert reverse_timesteps(100, 4) == [100, 75, 50, 25, 0]
    assert reverse_timesteps(3, 3) == [3, 2, 1, 0]
    with pytest.raises(ValueError, match="cannot exceed"):
        PurifierSpec(t_star=5, steps=6)


def test_defended_model_answers_like_its_classifier(trained_digits, diffusion):
    classifier, _, ds = trained_digits
    defended = Purified(classifier, diffusion, PurifierSpec(t_star=20, steps=4))
    x = ds.x_test[:16]
    first, second = defended(x), defended(x)
    assert first.shape == classifier(x).shape and defended.spec is classifier.spec
    assert not torch.equal(first, second)  # fresh forward noise: randomized
    barely = Purified(classifier, diffusion, PurifierSpec(t_star=1, steps=1))
    assert (barely.purify(x) - x).abs().mean() < 0.05  # t* = 1 leaves the image almost as it was
    with pytest.raises(ValueError, match="below the diffusion model's T"):
        Purified(classifier, diffusion, PurifierSpec(t_star=1000, steps=10))


def _input_grad(model, x, y, seed):
    torch.manual_seed(seed)
    x = x.clone().requires_grad_(True)
    torch.nn.functional.cross_entropy(model(x), y).backward()
    return x.grad


def test_exact_gradient_through_the_checkpointed_sampler(trained_digits, diffusion, monkeypatch):
    classifier, _, ds = trained_digits
    defended = Purified(classifier, diffusion, PurifierSpec(t_star=50, steps=5))
    x, y = ds.x_test[:8], ds.y_test[:8]
    checkpointed = _input_grad(defended, x, y, seed=1)
    monkeypatch.setattr(purify_module, "checkpoint", lambda fn, *args, **kw: fn(*args))
    plain = _input_grad(defended, x, y, seed=1)
    assert checkpointed.abs().sum() > 0
    torch.testing.assert_close(checkpointed, plain, atol=1e-6, rtol=1e-4)


def test_bpda_gradient_is_the_classifiers_at_the_purified_point(trained_digits, diffusion):
    classifier, _, ds = trained_digits
    bpda = Purified(classifier, diffusion, PurifierSpec(t_star=50, steps=5), gradient="bpda")
    x, y = ds.x_test[:8], ds.y_test[:8]
    got = _input_grad(bpda, x, y, seed=2)
    torch.manual_seed(2)
    with torch.no_grad():
        purified = bpda.purify(x)
    want = _input_grad(classifier, purified, y, seed=0)
    torch.testing.assert_close(got, want)


def test_evaluation_reports_three_numbers_and_keeps_the_lowest(trained_digits, diffusion):
    classifier, _, ds = trained_digits
    defended = Purified(classifier, diffusion, PurifierSpec(t_star=30, steps=3))
    protocol = ProtocolSpec(
        ensemble="custom", attacks=[AttackSpec(name="pgd", steps=5, eot=2)], eps=0.2, images=48, seed=0
    )
    result = evaluate_defense(defended, ds.x_test, ds.y_test, protocol, num_classes=10, batch_size=32).model_dump()
    ways = result["defense"]
    assert set(WAYS) <= set(ways)
    lowest = min(ways[w]["robust_acc"] for w in WAYS)
    assert result["robust_acc"] == lowest and ways[result["robust_acc_by"]]["robust_acc"] == lowest
    assert all(0 <= ways[w]["robust_acc"] <= ways[w]["clean_acc"] <= 1 for w in WAYS)
    assert result["checks"]["randomized"] and any("randomized" in w for w in result["warnings"])
    assert result["images"] == 48
