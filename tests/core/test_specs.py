import pytest
from pydantic import ValidationError

from core.contract.job_specs import EvalSpec
from core.contract.specs import AttackSpec, DataSpec, TrainSpec


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
