import pytest
import torch

from core.models import build_model, load_model
from core.specs import ActivationSpec, ModelSpec
from core.training.checkpoint import save_checkpoint

ACTIVATIONS = ["relu", "softplus", "silu", "gelu", "elu", "smooth_relu"]


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("shape", [(1, 8), (1, 28)])
def test_small_cnn_any_activation(activation, shape):
    c, s = shape
    model = build_model(
        ModelSpec(arch="small_cnn", in_channels=c, image_size=s, width=8, activation=ActivationSpec(name=activation))
    )
    assert model(torch.rand(2, c, s, s)).shape == (2, 10)


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
    save_checkpoint(tmp_path, model, opt, {"spec": {"model": spec.model_dump(mode="json")}, "epoch": 0})
    restored = load_model(tmp_path)
    x = torch.rand(4, 1, 8, 8)
    model.eval()
    assert torch.equal(model(x), restored(x))
    assert restored.spec == spec


def test_load_model_rejects_non_checkpoint(tmp_path):
    with pytest.raises(FileNotFoundError, match="checkpoint"):
        load_model(tmp_path)
