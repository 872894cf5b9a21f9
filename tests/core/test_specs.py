import pytest
from pydantic import ValidationError

from core.contract.specs import AttackSpec, EvalSpec, TrainSpec


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
