"""APGD, Square, the ensembles under a protocol, and the checks that come back with them."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from core.attacks import build_attack
from core.attacks.apgd import checkpoints
from core.attacks.losses import dlr, dlr_targeted, margin
from core.contract.attack_specs import AttackSpec, ProtocolSpec
from core.contract.specs import ModelSpec
from core.evaluation import accuracy, evaluate
from core.models import build_model, load_model
from core.training.checkpoint import save_checkpoint

SMALL = ProtocolSpec(eps=0.1, images=96, steps=10, queries=150)


def test_apgd_checkpoints_are_the_papers():
    # p_0 = 0, p_1 = 0.22, p_{j+1} = p_j + max(p_j − p_{j−1} − 0.03, 0.06): 0.22, 0.41, 0.57, ...
    assert checkpoints(100) == [22, 41, 57, 70, 80, 87, 93, 99]
    assert checkpoints(10) == [2, 3, 4, 5, 6, 7, 8, 9, 10]  # windows of at least one step


def test_dlr_is_invariant_to_shifting_and_scaling_the_logits():
    torch.manual_seed(0)
    z, y, t = torch.randn(16, 10), torch.randint(0, 10, (16,)), torch.randint(0, 10, (16,))
    for a, b in ((3.0, 0.0), (0.5, 7.0)):
        assert torch.allclose(dlr(a * z + b, y), dlr(z, y), atol=1e-5)
        assert torch.allclose(dlr_targeted(a * z + b, y, t), dlr_targeted(z, y, t), atol=1e-5)
    assert ((margin(z, y) < 0) == (z.argmax(1) != y)).all()
    with pytest.raises(ValueError, match="4 classes"):
        dlr_targeted(z[:, :3], y.clamp(max=2), t.clamp(max=2))


def test_apgd_is_at_least_as_strong_as_pgd(trained_digits):
    model, _, ds = trained_digits
    x, y = ds.x_test[:200], ds.y_test[:200]
    torch.manual_seed(0)
    pgd = accuracy(model, build_attack(AttackSpec(eps=0.05, steps=20, early_stop=True))(model, x, y), y)
    torch.manual_seed(0)
    apgd = accuracy(model, build_attack(AttackSpec(name="apgd-ce", eps=0.05, steps=20))(model, x, y), y)
    assert apgd <= pgd + 1 / len(y)
    assert apgd < accuracy(model, x, y) - 0.1


class Quantized(nn.Module):
    """A model behind a rounding input layer: its input gradient is exactly zero everywhere
    (the textbook masked gradient), yet it is no more robust."""

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return self.inner(torch.round(x * 8) / 8)


def test_square_breaks_what_zero_gradients_hide_and_the_checks_say_so(trained_digits):
    model, _, ds = trained_digits
    masked = Quantized(model).eval()
    x, y = ds.x_test[:96], ds.y_test[:96]
    apgd = build_attack(AttackSpec(name="apgd-ce", eps=0.15, steps=10))(masked, x, y)
    assert accuracy(masked, apgd, y) >= accuracy(masked, x, y) - 0.05  # only its random start moves
    result = evaluate(masked, x, y, SMALL.model_copy(update={"eps": 0.15}), num_classes=10).model_dump()
    square = next(b for b in result["breakdown"] if b["attack"].startswith("square"))
    assert square["broken"] > 0
    assert result["checks"]["zero_gradient_share"] == 1.0 and result["checks"]["black_box_share"] > 0
    assert any("zero input gradient" in w for w in result["warnings"])
    assert any("black-box attack broke" in w for w in result["warnings"])


class Noisy(nn.Module):
    def __init__(self, inner: nn.Module, softmax: bool = False):
        super().__init__()
        self.inner, self.softmax = inner, softmax

    def forward(self, x):
        out = self.inner(x + 0.05 * torch.randn_like(x)) if not self.softmax else self.inner(x).softmax(1)
        return out


def test_randomness_and_probability_outputs_are_flagged(trained_digits):
    model, _, ds = trained_digits
    x, y = ds.x_test[:64], ds.y_test[:64]
    plain = evaluate(model, x, y, SMALL.model_copy(update={"images": 64}), num_classes=10).model_dump()
    assert not plain["checks"]["randomized"] and not plain["checks"]["outputs_probabilities"]
    noisy = evaluate(Noisy(model).eval(), x, y, SMALL.model_copy(update={"images": 64}), num_classes=10).model_dump()
    assert noisy["checks"]["randomized"] and any("EOT" in w for w in noisy["warnings"])
    probs = evaluate(
        Noisy(model, softmax=True).eval(), x, y, SMALL.model_copy(update={"images": 64}), num_classes=10
    ).model_dump()
    assert probs["checks"]["outputs_probabilities"] and any("probabilities" in w for w in probs["warnings"])


def test_eot_averages_over_that_many_passes(trained_digits):
    model, _, ds = trained_digits
    calls = []
    hook = model.register_forward_pre_hook(lambda m, i: calls.append(len(i[0])))
    try:
        build_attack(AttackSpec(name="apgd-ce", eps=0.0001, steps=3, eot=4))(model, ds.x_test[:4], ds.y_test[:4])
    finally:
        hook.remove()
    # one clean pass, then 4 passes at the start point and at each of the 3 iterations
    assert len(calls) == 1 + 4 * (1 + 3)


def test_the_protocol_runs_attacks_in_order_and_keeps_who_broke_what(trained_digits):
    model, _, ds = trained_digits
    x, y = ds.x_test, ds.y_test
    result = evaluate(model, x, y, SMALL, num_classes=10).model_dump()
    assert result["images"] == 96 and result["protocol"] == SMALL.model_dump(mode="json")
    assert result["protocol_label"].startswith("standard (apgd-ce10, apgd-t10, fab-t10, square150)")
    assert "reduced settings" in result["protocol_label"]
    per_point = result["broken_by"]
    correct = sum(b != "clean" for b in per_point)
    assert correct == round(result["clean_acc"] * 96)
    assert [b["attack"] for b in result["breakdown"]] == [a.label for a in SMALL.attack_specs()]
    assert sum(b["broken"] for b in result["breakdown"]) + round(result["robust_acc"] * 96) == correct
    after = [b["robust_acc"] for b in result["breakdown"]]
    assert after == sorted(after, reverse=True) and after[-1] == result["robust_acc"]
    again = evaluate(model, x, y, SMALL, num_classes=10).model_dump()
    assert again["broken_by"] == per_point  # the protocol's seed fixes the attacks' randomness
    zero = evaluate(model, x, y, SMALL.model_copy(update={"eps": 0.0}), num_classes=10).model_dump()
    assert zero["robust_acc"] == zero["clean_acc"]


def test_the_standard_ensemble_nearly_zeroes_a_standard_model(trained_digits):
    model, _, ds = trained_digits
    result = evaluate(model, ds.x_test, ds.y_test, SMALL.model_copy(update={"eps": 0.3}), num_classes=10).model_dump()
    assert result["clean_acc"] > 0.8 and result["robust_acc"] < 0.05


def test_a_probe_model_is_evaluated_like_its_plain_relu_copy(trained_digits, tmp_path):
    model, _, ds = trained_digits
    probe_spec = model.spec.model_copy(
        update={"activation": model.spec.activation.model_copy(update={"probe": "both"})}
    )
    probe = build_model(ModelSpec.model_validate(probe_spec.model_dump()))
    probe.load_state_dict(model.state_dict())
    opt = torch.optim.SGD(probe.parameters(), lr=0.1)
    save_checkpoint(tmp_path, probe, opt, {"spec": {"model": probe_spec.model_dump(mode="json")}}, kind="classifier")
    x, y = ds.x_test[:96], ds.y_test[:96]
    spec = AttackSpec(eps=0.08, steps=10)
    torch.manual_seed(0)
    smooth = build_attack(spec)(probe, x, y)  # the built model still has its probe: smooth gradients
    torch.manual_seed(0)
    true = build_attack(spec)(model, x, y)
    assert not torch.equal(smooth, true), "the probe should change the attack's gradient"
    loaded = load_model(tmp_path)
    torch.manual_seed(0)
    assert torch.equal(build_attack(spec)(loaded, x, y), true)  # loading drops the probe
    a = evaluate(probe, x, y, SMALL, num_classes=10).model_dump()  # evaluate switches it off even when present
    b = evaluate(model, x, y, SMALL, num_classes=10).model_dump()
    assert a["broken_by"] == b["broken_by"] and a["robust_acc"] == b["robust_acc"]


def test_rand_runs_on_three_classes_and_standard_needs_four():
    """`rand`'s APGD-DLR needs the label and two more classes; `standard`'s targeted DLR one more."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3)).eval()
    x, y = torch.rand(8, 1, 4, 4), torch.randint(0, 3, (8,))
    rand = ProtocolSpec(ensemble="rand", eps=0.05, images=8, steps=3, eot=2)
    result = evaluate(model, x, y, rand, num_classes=3)
    assert 0 <= result.robust_acc <= result.clean_acc
    with pytest.raises(ValueError, match="need at least 4 classes"):
        evaluate(model, x, y, rand.model_copy(update={"ensemble": "standard"}), num_classes=3)
    with pytest.raises(ValueError, match="need at least 3 classes"):
        evaluate(model, x, y, rand, num_classes=2)
