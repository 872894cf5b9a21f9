import pytest
from pydantic import ValidationError

from core.contract.attack_specs import AttackSpec
from core.contract.job_specs import EvalSpec
from core.contract.specs import DataSpec, ModelSpec, TrainSpec


def test_unknown_field_is_rejected_by_name():
    with pytest.raises(ValidationError, match="epochz"):
        TrainSpec.model_validate({"epochz": 3})


def test_out_of_bounds_value_is_rejected():
    with pytest.raises(ValidationError, match="epochs"):
        TrainSpec(epochs=0)
    with pytest.raises(ValidationError, match="eps"):
        AttackSpec(eps=-0.1)
    with pytest.raises(ValidationError, match="eps_grid"):
        EvalSpec(eps_grid=[0.1, -1])


def test_json_round_trip():
    spec = TrainSpec(epochs=7)
    assert TrainSpec.model_validate_json(spec.model_dump_json()) == spec


def test_a_multi_process_spec_needs_an_image_per_process_and_only_disk_datasets_stream():
    from core.contract.diffusion_specs import DDPMTrainSpec

    assert TrainSpec(gpus=4, batch_size=4).gpus == 4 and DDPMTrainSpec(gpus=2).gpus == 2
    few = DataSpec(name="digits", train_subset=3)
    for bad in (
        lambda: TrainSpec(gpus=4, batch_size=3),
        lambda: DDPMTrainSpec(gpus=8, batch_size=4),
        lambda: TrainSpec(gpus=4, batch_size=8, data=few),
        lambda: DDPMTrainSpec(gpus=4, data=few),
    ):
        with pytest.raises(ValidationError, match="smaller than gpus"):
            bad()
    with pytest.raises(ValidationError, match="gpus"):
        TrainSpec(gpus=0)
    assert DataSpec(name="folder", folder="imagenet", stream=True).stream
    with pytest.raises(ValidationError, match="only 'folder' and 'uploaded' datasets stream"):
        DataSpec(name="cifar10", stream=True)


def test_the_standard_protocol_is_autoattacks_standard_version_in_its_order():
    from core.contract.attack_specs import ProtocolSpec

    standard = ProtocolSpec()
    specs = standard.attack_specs()
    assert [a.name for a in specs] == ["apgd-ce", "apgd-t", "fab-t", "square"]  # the reference's order
    fab = specs[2]
    assert (fab.iterations, fab.targets, fab.restarts, fab.norm, fab.eps) == (100, 9, 1, "linf", 0.1)
    assert standard.label == "standard (apgd-ce100, apgd-t100, fab-t100, square5000), L∞ ε=0.1, 1000 images, seed 0"
    assert "FAB" not in ProtocolSpec(steps=10).label and "[reduced settings]" in ProtocolSpec(steps=10).label
    assert [a.name for a in ProtocolSpec(ensemble="rand").attack_specs()] == ["apgd-ce", "apgd-dlr"]


def test_fab_t_and_fmn_costs_are_bounded_like_the_other_gradient_attacks():
    from core.contract.limits import attack_limits
    from core.contract.names import GRADIENT_ATTACKS

    assert {"fab-t", "fmn"} <= set(GRADIENT_ATTACKS)
    fab = AttackSpec(name="fab-t", steps=100, targets=9)
    # per iteration and target: one forward/backward for the linearisation, one forward to judge
    assert fab.cost == 100 * 9 * 2 and fab.label == "fab-t100-linf"
    assert AttackSpec(name="fab-t", steps=10, targets=3, restarts=2, eot=4).cost == 10 * 3 * 2 * (4 + 1)
    assert AttackSpec(name="fmn", steps=100, norm="l2").cost == 100
    for spec in (fab, AttackSpec(name="fmn", steps=50)):
        (limit,) = attack_limits("attack", spec)
        assert (limit.field, limit.value, limit.setting) == ("attack.steps", spec.cost, "max_attack_steps")
    with pytest.raises(ValidationError, match="restarts"):
        AttackSpec(name="fmn", restarts=3)


def test_normalisation_needs_a_positive_std_and_one_value_per_channel_or_one_for_all():
    """Refused in the spec, not in the worker: a zero or negative std, huge lists, or a length
    that neither matches the channels nor is one value for all (it broadcast into a conv error)."""
    assert ModelSpec(in_channels=3, mean=[0.5] * 3, std=[0.25] * 3).mean == [0.5] * 3
    assert ModelSpec(in_channels=3, mean=[0.5], std=[0.25]).std == [0.25]
    assert ModelSpec(in_channels=1, mean=[0.3]).std is None
    for bad in (
        {"mean": [0.5], "std": [0.0]},
        {"mean": [0.5], "std": [-1.0]},
        {"mean": [0.5] * 100_000},
        {"in_channels": 1, "mean": [0.5] * 3, "std": [0.5] * 3},
        {"in_channels": 3, "mean": [0.5], "std": [0.5] * 3},
        {"in_channels": 3, "mean": [0.5]},
    ):
        with pytest.raises(ValidationError):
            ModelSpec(**bad)


def test_sampling_and_unet_specs_that_could_only_fail_in_the_worker_are_refused():
    from core.contract.diffusion_specs import DDPMSampleSpec, UNetSpec

    for bad in ({"guidance_scale": 3}, {"class_labels": []}, {"class_labels": [-5]}, {"n": 4, "class_labels": [1, 2]}):
        with pytest.raises(ValidationError):
            DDPMSampleSpec(**bad)
    assert DDPMSampleSpec(n=2, class_labels=[1, 2], guidance_scale=3).class_labels == [1, 2]
    assert DDPMSampleSpec(n=5, class_labels=[3]).n == 5
    for channels in ([0], [-8]):
        with pytest.raises(ValidationError):
            UNetSpec(block_out_channels=channels, norm_num_groups=1)
