"""On a CUDA device (marked gpu, skipped without one; bench/gpu.sh runs them on a lent GPU
machine): the attacks find on the GPU what they find on the CPU, in fp32 and with the model in
channels_last. Only torch and core are imported: the GPU image lacks the service's packages."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from core.attacks import build_attack
from core.contract.attack_specs import AttackSpec
from core.contract.specs import ModelSpec
from core.models import build_model

EPS = 0.025  # measured on the CPU: PGD-20 leaves about half the points standing
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


def noisy_patterns(n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Ten fixed random 28x28 patterns, each image one of them under heavy noise: learnable in a
    few hundred steps, and an ε = 0.025 attack breaks some points, not all."""
    patterns = torch.rand(10, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    y = torch.randint(0, 10, (n,), generator=generator)
    x = (0.45 * patterns[y] + 0.55 * torch.rand(n, 1, 28, 28, generator=generator)).clamp(0, 1)
    return x, y


@pytest.fixture(scope="module")
def trained():
    torch.manual_seed(0)
    model = build_model(ModelSpec(width=16))
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    g = torch.Generator().manual_seed(1)
    for _ in range(300):
        x, y = noisy_patterns(128, g)
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    x, y = noisy_patterns(512, torch.Generator().manual_seed(2))
    return model.eval(), x, y


@pytest.mark.parametrize("name", ["pgd", "apgd-ce", "apgd-t"])
def test_an_attack_breaks_on_cuda_what_it_breaks_on_the_cpu(trained, name):
    model, x, y = trained
    spec = AttackSpec(name=name, eps=EPS, steps=20, random_start=False)
    outcome = {}
    for device in ("cpu", "cuda"):
        net = copy.deepcopy(model).to(device)
        if device == "cuda":
            net = net.to(memory_format=torch.channels_last)
        xd, yd = x.to(device), y.to(device)
        torch.manual_seed(3)  # APGD's random start
        x_adv = build_attack(spec)(net, xd, yd)
        assert (x_adv - xd).abs().max() <= EPS + 1e-6 and x_adv.min() >= 0 and x_adv.max() <= 1
        with torch.no_grad():
            outcome[device] = (net(xd).argmax(1) == yd).cpu(), (net(x_adv).argmax(1) == yd).cpu()
    (clean_cpu, robust_cpu), (clean_cuda, robust_cuda) = outcome["cpu"], outcome["cuda"]
    assert clean_cpu.float().mean() > 0.5, "the fixture's model did not learn the patterns"
    assert 0.05 < robust_cpu.float().mean() < clean_cpu.float().mean(), "the test needs points broken and standing"
    assert (clean_cpu == clean_cuda).float().mean() >= 0.99
    # float sums in another order flip a few gradient signs, so a few points may end otherwise
    assert (robust_cpu == robust_cuda).float().mean() >= 0.95
    assert abs(robust_cpu.float().mean() - robust_cuda.float().mean()) <= 0.03
