import json

import pytest
import torch

from core.contract.checkpoint import checkpoint_kind
from core.contract.names import ACTIVATIONS, ARCHITECTURES
from core.contract.specs import ActivationSpec, ModelSpec
from core.models import NETWORKS, build_model, load_model
from core.training.checkpoint import save_checkpoint


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("shape", [(1, 8), (1, 28)])
def test_small_cnn_any_activation(activation, shape):
    c, s = shape
    model = build_model(
        ModelSpec(arch="small_cnn", in_channels=c, image_size=s, width=8, activation=ActivationSpec(name=activation))
    )
    assert model(torch.rand(2, c, s, s)).shape == (2, 10)


def test_small_cnn_hidden_layer_is_its_own_size_and_counted_by_memory_admission():
    from core.contract.memory import classifier_numbers

    spec = ModelSpec(arch="small_cnn", image_size=28, width=8, hidden=1024)
    model = build_model(spec)
    assert model.net.classifier[1].out_features == 1024 and model.net.classifier[3].in_features == 1024
    assert classifier_numbers(spec)[0] == sum(p.numel() for p in model.parameters())
    assert build_model(ModelSpec(arch="small_cnn", image_size=28, width=8)).net.classifier[1].out_features == 32
    with pytest.raises(ValueError, match="hidden is for small_cnn"):
        ModelSpec(arch="resnet18", hidden=64)


@pytest.mark.parametrize("c,s", [(1, 28), (3, 32)])
def test_preact_resnet18(c, s):
    model = build_model(
        ModelSpec(arch="preact_resnet18", in_channels=c, image_size=s, width=8, activation=ActivationSpec(name="silu"))
    )
    assert model(torch.rand(2, c, s, s)).shape == (2, 10)
    full = build_model(ModelSpec(arch="preact_resnet18", in_channels=3, image_size=32, width=64))
    assert 11_000_000 < sum(p.numel() for p in full.parameters()) < 11_300_000


def test_normalisation_lives_inside_the_model():
    model = build_model(ModelSpec(image_size=8, width=8, mean=[0.3], std=[0.4]))
    x = torch.rand(1, 1, 8, 8)
    torch.testing.assert_close(model.normalize(x), (x - 0.3) / 0.4)


def test_restored_from_checkpoint_alone(tmp_path):
    spec = ModelSpec(image_size=8, width=8, activation=ActivationSpec(name="relu", probe="both"))
    model = build_model(spec)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    save_checkpoint(
        tmp_path, model, opt, {"spec": {"model": spec.model_dump(mode="json")}, "epoch": 0}, kind="classifier"
    )
    assert json.loads((tmp_path / "checkpoint.json").read_text())["kind"] == "classifier"
    restored = load_model(tmp_path)
    x = torch.rand(4, 1, 8, 8)
    model.eval()
    assert torch.equal(model(x), restored(x))
    assert restored.spec == spec


def test_checkpoints_from_before_the_kind_field_still_load(tmp_path):
    spec = ModelSpec(image_size=8, width=8)
    model = build_model(spec)
    save_checkpoint(
        tmp_path,
        model,
        torch.optim.SGD(model.parameters(), lr=0.1),
        {"spec": {"model": spec.model_dump(mode="json")}, "epoch": 0},
        kind="classifier",
    )
    meta_path = tmp_path / "checkpoint.json"
    old = {k: v for k, v in json.loads(meta_path.read_text()).items() if k != "kind"}
    meta_path.write_text(json.dumps(old))
    assert checkpoint_kind(old) == "classifier"
    assert load_model(tmp_path).spec == spec
    assert checkpoint_kind({**old, "facts": {"in_channels": 1}}) == "diffusion"  # old DDPM folders


def test_a_checkpoint_of_another_kind_is_refused_by_name(tmp_path):
    spec = ModelSpec(image_size=8, width=8)
    model = build_model(spec)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    save_checkpoint(tmp_path, model, opt, {"spec": {"model": spec.model_dump(mode="json")}}, kind="diffusion")
    with pytest.raises(ValueError, match="holds a diffusion checkpoint, not a classifier"):
        load_model(tmp_path)
    with pytest.raises(ValueError, match="kind must be one of"):
        save_checkpoint(tmp_path, model, opt, {}, kind="gan")


def test_every_architecture_name_has_a_network():
    assert set(NETWORKS) == set(ARCHITECTURES)


def test_load_model_rejects_non_checkpoint(tmp_path):
    with pytest.raises(FileNotFoundError, match="checkpoint"):
        load_model(tmp_path)
