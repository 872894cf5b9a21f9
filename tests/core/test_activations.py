import pytest
import torch
import torch.nn.functional as F

from core.activations import ProbeReLU, SmoothReLU, build_activation, gradient_phase
from core.contract.specs import ActivationSpec

# Away from 0 so that ReLU-family derivatives are defined; double precision for gradcheck.
X = torch.cat([torch.linspace(-3, -0.05, 20), torch.linspace(0.05, 3, 20)]).double()

ANALYTIC = {
    "relu": lambda x, s: (x > 0).double(),
    "softplus": lambda x, s: torch.sigmoid(s.beta * x),
    "silu": lambda x, s: torch.sigmoid(x) * (1 + x * (1 - torch.sigmoid(x))),
    "gelu": lambda x, s: 0.5 * (1 + torch.erf(x / 2**0.5)) + x * torch.exp(-(x**2) / 2) / (2 * torch.pi) ** 0.5,
    "elu": lambda x, s: torch.where(x > 0, torch.ones_like(x), (s.alpha or 1.0) * torch.exp(x)),
    "smooth_relu": lambda x, s: torch.where(x >= 0, s.alpha * x / (s.alpha * x + 1), torch.zeros_like(x)),
}
SPECS = [
    ActivationSpec(name="relu"),
    ActivationSpec(name="softplus", beta=2.0),
    ActivationSpec(name="silu"),
    ActivationSpec(name="gelu"),
    ActivationSpec(name="elu", alpha=0.7),
    ActivationSpec(name="smooth_relu", alpha=5.0),
]


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_gradcheck_and_analytic_derivative(spec):
    act = build_activation(spec)
    x = X.clone().requires_grad_(True)
    assert torch.autograd.gradcheck(act, (x,))
    (grad,) = torch.autograd.grad(act(x).sum(), x)
    torch.testing.assert_close(grad, ANALYTIC[spec.name](X, spec))


def test_smooth_relu_values_and_continuity_at_zero():
    f = SmoothReLU(alpha=10.0)
    assert f(torch.tensor([0.0])).item() == 0.0
    assert f(torch.tensor([-1.0])).item() == 0.0
    x = torch.tensor([1.0])
    assert f(x).item() == pytest.approx(1.0 - torch.log1p(torch.tensor(10.0)).item() / 10.0)


def test_smooth_relu_approaches_relu_as_alpha_grows():
    x = torch.linspace(-2, 2, 401)
    errors = [(SmoothReLU(a)(x) - F.relu(x)).abs().max().item() for a in (1, 10, 100, 1000)]
    assert errors == sorted(errors, reverse=True)
    assert errors[-1] < 0.01


@pytest.mark.parametrize("probe", ["attack", "update", "both"])
def test_probe_forward_is_bit_identical_to_relu(probe):
    act = build_activation(ActivationSpec(name="relu", probe=probe))
    x = torch.randn(1000)
    for phase in ("attack", "update"):
        act.phase = phase
        assert torch.equal(act(x), torch.relu(x))


@pytest.mark.parametrize("probe", ["attack", "update", "both"])
def test_probe_smooths_only_the_chosen_backward(probe):
    model = torch.nn.Sequential(build_activation(ActivationSpec(name="relu", probe=probe)))
    x = torch.linspace(-2, 2, 41)
    smooth, hard = torch.sigmoid(10 * x), (x > 0).float()
    for phase in ("attack", "update"):
        xi = x.clone().requires_grad_(True)
        with gradient_phase(model, phase):
            (grad,) = torch.autograd.grad(model(xi).sum(), xi)
        expected = smooth if probe in (phase, "both") else hard
        torch.testing.assert_close(grad, expected)


def test_gradient_phase_restores_phase():
    act = ProbeReLU(frozenset({"attack"}))
    model = torch.nn.Sequential(act)
    with gradient_phase(model, "attack"):
        assert act.phase == "attack"
    assert act.phase == "update"


def test_probe_only_with_relu():
    with pytest.raises(ValueError, match="relu only"):
        ActivationSpec(name="silu", probe="attack")
