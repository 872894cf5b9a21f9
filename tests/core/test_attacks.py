import pytest
import torch
import torch.nn.functional as F
from pydantic import ValidationError

from core.attacks import build_attack
from core.contract.attack_specs import OWN_FIELDS, AttackSpec
from core.evaluation import accuracy

ATTACKS = [
    AttackSpec(name="pgd", norm="linf", eps=0.1, steps=5),
    AttackSpec(name="pgd", norm="l2", eps=1.0, steps=5),
    AttackSpec(name="fgsm", norm="linf", eps=0.1, random_start=False),
    AttackSpec(name="fgsm", norm="l2", eps=1.0, random_start=True),
    AttackSpec(name="pgd", norm="linf", eps=0.2, steps=3, restarts=3),
    AttackSpec(name="pgd", norm="l2", eps=0.5, steps=3, restarts=2, step_size=0.5),
    AttackSpec(name="pgd", norm="linf", eps=0.1, steps=5, early_stop=True),
    AttackSpec(name="pgd", norm="l2", eps=1.0, steps=5, early_stop=True),
    AttackSpec(name="apgd-ce", norm="linf", eps=0.1, steps=10),
    AttackSpec(name="apgd-ce", norm="l2", eps=1.0, steps=10, restarts=2),
    AttackSpec(name="apgd-dlr", norm="linf", eps=0.1, steps=10, eot=2),
    AttackSpec(name="apgd-t", norm="linf", eps=0.1, steps=5, targets=3),
    AttackSpec(name="apgd-t", norm="l2", eps=1.0, steps=5, targets=3),
    AttackSpec(name="fab-t", norm="linf", eps=0.1, steps=10, targets=3),
    AttackSpec(name="fab-t", norm="l2", eps=1.0, steps=10, targets=3, restarts=2),
    AttackSpec(name="fmn", norm="linf", eps=0.1, steps=20),
    AttackSpec(name="fmn", norm="l2", eps=1.0, steps=20),
    AttackSpec(name="square", norm="linf", eps=0.1, queries=100),
    AttackSpec(name="square", norm="l2", eps=1.0, queries=100),
]


@pytest.mark.parametrize("spec", ATTACKS, ids=lambda s: f"{s.label}-eps{s.eps}")
def test_result_stays_in_eps_ball_and_box(trained_digits, spec):
    model, _, ds = trained_digits
    x, y = ds.x_test[:64], ds.y_test[:64]
    x_adv = build_attack(spec)(model, x, y)
    delta = (x_adv - x).flatten(1)
    norms = delta.abs().amax(1) if spec.norm == "linf" else delta.norm(dim=1)
    assert (norms <= spec.eps + 1e-5).all()
    assert x_adv.min() >= 0 and x_adv.max() <= 1
    assert norms.max() > 0.5 * spec.eps  # it moved


def _own(name: str, **options) -> AttackSpec:
    """The attack with those of `options` it reads."""
    return AttackSpec(name=name, **{k: v for k, v in options.items() if name in OWN_FIELDS.get(k, {name})})


def test_an_attack_refuses_the_options_of_other_attacks():
    with pytest.raises(ValidationError, match="queries is an option of square: apgd-ce has no use for it"):
        AttackSpec(name="apgd-ce", queries=100)
    with pytest.raises(ValidationError, match="steps is an option of"):
        AttackSpec(name="square", steps=20)
    with pytest.raises(ValidationError, match="targets is an option of apgd-t, fab-t"):
        AttackSpec(name="pgd", targets=3)
    AttackSpec(name="square", steps=None, targets=9)  # the defaults, as any stored spec's dump holds them
    for name in ("pgd", "square", "fab-t"):
        spec = AttackSpec(name=name)
        assert AttackSpec.model_validate(spec.model_dump()) == spec


@pytest.mark.parametrize("was_training", [True, False])
@pytest.mark.parametrize("name", ["pgd", "apgd-ce", "apgd-t", "fab-t", "fmn", "square"])
def test_attack_runs_in_eval_mode_and_restores_mode(trained_digits, was_training, name):
    model, _, ds = trained_digits
    seen = []
    hook = model.register_forward_pre_hook(lambda m, i: seen.append(m.training))
    model.train(was_training)
    try:
        build_attack(_own(name, steps=2, targets=2, queries=5))(model, ds.x_test[:8], ds.y_test[:8])
    finally:
        hook.remove()
        model.eval()
    assert seen and not any(seen)
    assert model.training is False  # restored by the finally above; check the attack restored it:
    model.train(was_training)
    build_attack(_own(name, steps=1, targets=2, queries=5))(model, ds.x_test[:8], ds.y_test[:8])
    assert model.training is was_training
    model.eval()


def test_pgd_at_least_as_strong_as_fgsm(trained_digits):
    model, _, ds = trained_digits
    x, y = ds.x_test, ds.y_test
    fgsm = build_attack(AttackSpec(name="fgsm", eps=0.1, random_start=False))(model, x, y)
    pgd = build_attack(AttackSpec(eps=0.1, steps=20))(model, x, y)
    acc_fgsm, acc_pgd = accuracy(model, fgsm, y), accuracy(model, pgd, y)
    assert acc_pgd <= acc_fgsm
    assert acc_pgd < accuracy(model, x, y) - 0.2  # the attack works on a standard model


@pytest.mark.parametrize("name", ["pgd", "fgsm", "apgd-ce", "apgd-t", "fab-t", "fmn", "square"])
def test_eps_zero_returns_clean_input(trained_digits, name):
    model, _, ds = trained_digits
    x, y = ds.x_test[:16], ds.y_test[:16]
    assert torch.equal(build_attack(_own(name, eps=0.0, queries=10))(model, x, y), x)


def test_every_attack_name_has_a_builder():
    from core.attacks import BUILDERS
    from core.contract.names import ATTACKS

    assert set(BUILDERS) == set(ATTACKS)


def test_restarts_keep_the_per_sample_worst_case(trained_digits):
    model, _, ds = trained_digits
    x, y = ds.x_test[:128], ds.y_test[:128]
    torch.manual_seed(1)
    single = build_attack(AttackSpec(eps=0.05, steps=2))(model, x, y)
    torch.manual_seed(1)
    multi = build_attack(AttackSpec(eps=0.05, steps=2, restarts=4))(model, x, y)
    with torch.no_grad():
        loss_single = F.cross_entropy(model(single), y, reduction="none")
        fooled_multi = model(multi).argmax(1) != y
        loss_multi = F.cross_entropy(model(multi), y, reduction="none")
    # same first run (same seed), so every sample is at least as bad after the restarts
    assert (fooled_multi | (loss_multi >= loss_single - 1e-5)).all()
    assert fooled_multi.sum() >= (model(single).argmax(1) != y).sum()


def test_attack_leaves_no_parameter_gradients(trained_digits):
    model, _, ds = trained_digits
    model.zero_grad(set_to_none=True)
    build_attack(AttackSpec(steps=2))(model, ds.x_test[:8], ds.y_test[:8])
    assert all(p.grad is None for p in model.parameters())


def test_early_stop_is_at_least_as_strong_and_keeps_fooled_points(trained_digits):
    model, _, ds = trained_digits
    x, y = ds.x_test, ds.y_test
    spec = AttackSpec(eps=0.05, steps=10)
    torch.manual_seed(2)
    full = build_attack(spec)(model, x, y)
    torch.manual_seed(2)
    early = build_attack(spec.model_copy(update={"early_stop": True}))(model, x, y)
    assert accuracy(model, early, y) <= accuracy(model, full, y) + 1 / len(y)
    assert accuracy(model, early, y) < accuracy(model, x, y)
