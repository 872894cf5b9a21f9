import pytest

from core.contract.attack_specs import AttackSpec
from core.contract.progress import Stopped
from core.evaluation import accuracy, robustness_curve, sanity_checks

ATTACKS = [AttackSpec(name="fgsm", random_start=False), AttackSpec(steps=10)]


def test_curve_on_a_standard_model(trained_digits):
    model, _, ds = trained_digits
    x, y = ds.x_test[:128], ds.y_test[:128]
    result = robustness_curve(model, x, y, ATTACKS, [0.05, 0.2], num_classes=10)
    eps = [p["eps"] for p in result["curve"]]
    assert eps == [0.0, 0.05, 0.2]
    assert result["curve"][0]["robust_acc"] == result["clean_acc"] == pytest.approx(accuracy(model, x, y))
    sanity = result["sanity"]
    assert sanity["eps0_equals_clean"] and sanity["monotone_in_eps"] and sanity["large_eps_near_chance"]
    n_correct = round(result["clean_acc"] * len(x))
    for point in result["curve"][1:]:
        # every clean-correct point is either broken by exactly one attack or robust
        assert sum(point["broken_by"].values()) + round(point["robust_acc"] * len(x)) == n_correct
    assert result["warnings"] == []


def test_the_worst_case_over_attacks_in_order_is_never_better_than_the_first_alone(trained_digits):
    model, _, ds = trained_digits
    x, y = ds.x_test[:128], ds.y_test[:128]
    both = robustness_curve(model, x, y, ATTACKS, [0.05], num_classes=10, detail_eps=0.05)
    first = robustness_curve(model, x, y, ATTACKS[:1], [0.05], num_classes=10)
    assert both["curve"][1]["robust_acc"] <= first["curve"][1]["robust_acc"]
    after = [a["robust_acc"] for a in both["detail"]["after"]]
    assert after[0] == first["curve"][1]["robust_acc"] and after[1] == both["curve"][1]["robust_acc"]


def test_sanity_checks_flag_each_failure():
    curve = [{"eps": 0.0, "robust_acc": 0.9}, {"eps": 0.1, "robust_acc": 0.5}, {"eps": 0.2, "robust_acc": 0.6}]
    sanity, warnings = sanity_checks(0.8, curve, large_eps=1.0, large_acc=0.7, num_classes=10)
    assert not sanity["eps0_equals_clean"] and not sanity["monotone_in_eps"]
    assert not sanity["large_eps_near_chance"]
    assert len(warnings) == 3 and any("gradient masking" in w for w in warnings)


def test_stop_check_interrupts(trained_digits):
    model, _, ds = trained_digits
    with pytest.raises(Stopped):
        robustness_curve(
            model, ds.x_test[:32], ds.y_test[:32], ATTACKS, [0.1], num_classes=10, should_stop=lambda: True
        )
