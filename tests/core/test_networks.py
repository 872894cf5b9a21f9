"""The ResNets and WideResNets: their state dicts have the public definitions' names and shapes
(re-stated here from torchvision's and TRADES'/RobustBench's code), a state dict in that layout
gives the logits the public forward pass computes, every activation and the probe reach every
layer, and attacks and checkpoints work on them as on the small networks. Tiny widths."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from pydantic import ValidationError
from torch import nn

from core.activations import ProbeReLU, gradient_phase
from core.attacks import build_attack
from core.contract.attack_specs import AttackSpec
from core.contract.names import ACTIVATIONS
from core.contract.specs import ActivationSpec, ModelSpec
from core.models import build_model, load_model
from core.training.checkpoint import save_checkpoint

# torchvision.models.resnet: bottleneck or not, and the blocks per stage of each depth
TORCHVISION = {
    18: (False, [2, 2, 2, 2]),
    34: (False, [3, 4, 6, 3]),
    50: (True, [3, 4, 6, 3]),
    101: (True, [3, 4, 23, 3]),
}


def _bn(layout: dict, name: str, c: int) -> None:
    for stat in ("weight", "bias", "running_mean", "running_var"):
        layout[f"{name}.{stat}"] = (c,)
    layout[f"{name}.num_batches_tracked"] = ()


def torchvision_layout(depth: int, in_channels=3, num_classes=1000, width=64, stem="imagenet") -> dict:
    """Name → shape of torchvision's `resnet{depth}()` state dict (`width` 64 there)."""
    bottleneck, layers = TORCHVISION[depth]
    k = 7 if stem == "imagenet" else 3
    layout = {"conv1.weight": (width, in_channels, k, k)}
    _bn(layout, "bn1", width)
    c_in, expansion = width, 4 if bottleneck else 1
    for i, blocks in enumerate(layers):
        planes = width * 2**i
        for j in range(blocks):
            p, stride = f"layer{i + 1}.{j}", 2 if i > 0 and j == 0 else 1
            if bottleneck:
                convs = [(planes, c_in, 1), (planes, planes, 3), (planes * 4, planes, 1)]
            else:
                convs = [(planes, c_in, 3), (planes, planes, 3)]
            for n, (o, c, s) in enumerate(convs, 1):
                layout[f"{p}.conv{n}.weight"] = (o, c, s, s)
                _bn(layout, f"{p}.bn{n}", o)
            if stride != 1 or c_in != planes * expansion:
                layout[f"{p}.downsample.0.weight"] = (planes * expansion, c_in, 1, 1)
                _bn(layout, f"{p}.downsample.1", planes * expansion)
            c_in = planes * expansion
    layout["fc.weight"], layout["fc.bias"] = (num_classes, c_in), (num_classes,)
    return layout


def trades_layout(depth: int, k: int, in_channels=3, num_classes=10, width=16, sub_block1=False) -> dict:
    """Name → shape of TRADES' `WideResNet(depth, num_classes, widen_factor=k)` state dict."""
    n, channels = (depth - 4) // 6, [width, width * k, 2 * width * k, 4 * width * k]
    layout = {"conv1.weight": (width, in_channels, 3, 3)}
    stages = [("block1", 0), ("sub_block1", 0), ("block2", 1), ("block3", 2)] if sub_block1 else None
    for stage, s in stages or [("block1", 0), ("block2", 1), ("block3", 2)]:
        for i in range(n):
            c_in, c_out, p = channels[s] if i == 0 else channels[s + 1], channels[s + 1], f"{stage}.layer.{i}"
            _bn(layout, f"{p}.bn1", c_in)
            layout[f"{p}.conv1.weight"] = (c_out, c_in, 3, 3)
            _bn(layout, f"{p}.bn2", c_out)
            layout[f"{p}.conv2.weight"] = (c_out, c_out, 3, 3)
            if c_in != c_out:
                layout[f"{p}.convShortcut.weight"] = (c_out, c_in, 1, 1)
    _bn(layout, "bn1", channels[3])
    layout["fc.weight"], layout["fc.bias"] = (num_classes, channels[3]), (num_classes,)
    return layout


def random_state_dict(layout: dict) -> dict[str, torch.Tensor]:
    """Weights of the right scale and batch-norm statistics that are not the identity."""
    out = {}
    for name, shape in layout.items():
        if name.endswith("num_batches_tracked"):
            out[name] = torch.tensor(7)
        elif name.endswith("running_var"):
            out[name] = torch.rand(shape) + 0.5
        elif name.endswith(("running_mean", "bias")):
            out[name] = 0.1 * torch.randn(shape)
        elif len(shape) == 1:  # batch-norm scale
            out[name] = 1 + 0.1 * torch.randn(shape)
        else:
            out[name] = torch.randn(shape) * (2 / torch.tensor(shape[1:]).prod()) ** 0.5
    return out


def _bn_eval(x, sd, p):
    return F.batch_norm(x, sd[f"{p}.running_mean"], sd[f"{p}.running_var"], sd[f"{p}.weight"], sd[f"{p}.bias"])


def torchvision_forward(sd: dict, x: torch.Tensor, depth: int) -> torch.Tensor:
    """torchvision's ResNet forward pass (eval mode), written out on a state dict."""
    bottleneck, layers = TORCHVISION[depth]
    x = F.max_pool2d(F.relu(_bn_eval(F.conv2d(x, sd["conv1.weight"], stride=2, padding=3), sd, "bn1")), 3, 2, 1)
    for i, blocks in enumerate(layers):
        for j in range(blocks):
            p, stride = f"layer{i + 1}.{j}", 2 if i > 0 and j == 0 else 1
            identity = x
            if f"{p}.downsample.0.weight" in sd:
                identity = _bn_eval(F.conv2d(x, sd[f"{p}.downsample.0.weight"], stride=stride), sd, f"{p}.downsample.1")
            if bottleneck:  # the stride on the 3×3 convolution (v1.5)
                out = F.relu(_bn_eval(F.conv2d(x, sd[f"{p}.conv1.weight"]), sd, f"{p}.bn1"))
                out = F.relu(_bn_eval(F.conv2d(out, sd[f"{p}.conv2.weight"], stride=stride, padding=1), sd, f"{p}.bn2"))
                out = _bn_eval(F.conv2d(out, sd[f"{p}.conv3.weight"]), sd, f"{p}.bn3")
            else:
                out = F.relu(_bn_eval(F.conv2d(x, sd[f"{p}.conv1.weight"], stride=stride, padding=1), sd, f"{p}.bn1"))
                out = _bn_eval(F.conv2d(out, sd[f"{p}.conv2.weight"], padding=1), sd, f"{p}.bn2")
            x = F.relu(out + identity)
    return F.linear(x.mean((2, 3)), sd["fc.weight"], sd["fc.bias"])


def trades_forward(sd: dict, x: torch.Tensor, depth: int) -> torch.Tensor:
    """TRADES' WideResNet forward pass (eval mode, 32-px inputs), written out on a state dict."""
    out = F.conv2d(x, sd["conv1.weight"], padding=1)
    for stage, stride in (("block1", 1), ("block2", 2), ("block3", 2)):
        for i in range((depth - 4) // 6):
            p, s = f"{stage}.layer.{i}", stride if i == 0 else 1
            act = F.relu(_bn_eval(out, sd, f"{p}.bn1"))
            # a block whose channels change feeds its shortcut the activated input; else x itself
            skip = F.conv2d(act, sd[f"{p}.convShortcut.weight"], stride=s) if f"{p}.convShortcut.weight" in sd else out
            h = F.conv2d(act, sd[f"{p}.conv1.weight"], stride=s, padding=1)
            out = skip + F.conv2d(F.relu(_bn_eval(h, sd, f"{p}.bn2")), sd[f"{p}.conv2.weight"], padding=1)
    out = F.avg_pool2d(F.relu(_bn_eval(out, sd, "bn1")), 8).flatten(1)
    return F.linear(out, sd["fc.weight"], sd["fc.bias"])


def shapes(module: nn.Module) -> dict:
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


@pytest.mark.parametrize(
    "depth, params, keys", [(18, 11_689_512, 122), (34, 21_797_672, 218), (50, 25_557_032, 320), (101, 44_549_160, 626)]
)
def test_a_resnet_has_torchvision_s_names_shapes_and_parameter_count(depth, params, keys):
    net = build_model(ModelSpec(arch=f"resnet{depth}", in_channels=3, image_size=224, num_classes=1000)).net
    assert shapes(net) == torchvision_layout(depth) and len(net.state_dict()) == keys
    assert sum(p.numel() for p in net.parameters()) == params  # torchvision's documented counts


@pytest.mark.parametrize("arch, depth, params", [("wrn28_10", 28, 36_479_194), ("wrn34_10", 34, 46_160_474)])
def test_a_wide_resnet_has_the_trades_names_shapes_and_parameter_count(arch, depth, params):
    net = build_model(ModelSpec(arch=arch, in_channels=3, image_size=32)).net
    assert shapes(net) == trades_layout(depth, 10)
    assert sum(p.numel() for p in net.parameters()) == params
    with_sub = build_model(ModelSpec(arch=arch, in_channels=3, image_size=32, sub_block1=True)).net
    assert shapes(with_sub) == trades_layout(depth, 10, sub_block1=True)


@pytest.mark.parametrize("depth", [18, 50])
def test_a_torchvision_state_dict_loads_strictly_and_gives_torchvision_s_logits(depth):
    spec = ModelSpec(arch=f"resnet{depth}", in_channels=3, image_size=32, width=8, num_classes=5)
    sd = random_state_dict(torchvision_layout(depth, width=8, num_classes=5))
    net = build_model(spec).net.eval()
    net.load_state_dict(sd, strict=True)
    x = torch.rand(3, 3, 32, 32)
    torch.testing.assert_close(net(x), torchvision_forward(sd, x, depth), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("sub_block1", [False, True])
def test_a_trades_state_dict_loads_strictly_and_gives_the_reference_logits(sub_block1):
    spec = ModelSpec(arch="wide_resnet", depth=10, widen_factor=2, width=4, in_channels=3, image_size=32)
    sd = random_state_dict(trades_layout(10, 2, width=4, sub_block1=sub_block1))
    net = build_model(spec.model_copy(update={"sub_block1": sub_block1})).net.eval()
    net.load_state_dict(sd, strict=True)
    x = torch.rand(3, 3, 32, 32)
    torch.testing.assert_close(net(x), trades_forward(sd, x, 10), rtol=1e-4, atol=1e-5)


def test_the_cifar_stem_is_one_3x3_convolution_and_no_pool():
    net = build_model(ModelSpec(arch="resnet18", in_channels=3, image_size=32, width=8, stem="cifar")).net
    assert shapes(net) == torchvision_layout(18, width=8, num_classes=10, stem="cifar")
    assert isinstance(net.maxpool, nn.Identity) and net.conv1.stride == (1, 1)


TINY = {"resnet18": {"width": 4}, "resnet50": {"width": 4}, "wide_resnet": {"width": 4, "depth": 10, "widen_factor": 2}}
SETTINGS = [ActivationSpec(name=a) for a in ACTIVATIONS] + [
    ActivationSpec(name="relu", probe=p) for p in ("attack", "update", "both")
]
KIND = {"relu": nn.ReLU, "softplus": nn.Softplus, "silu": nn.SiLU, "gelu": nn.GELU, "elu": nn.ELU}


@pytest.mark.parametrize("activation", SETTINGS, ids=lambda a: a.label)
@pytest.mark.parametrize("arch", TINY)
def test_every_activation_and_the_probe_reach_every_layer_forward_and_backward(arch, activation):
    model = build_model(ModelSpec(arch=arch, in_channels=1, image_size=8, activation=activation, **TINY[arch]))
    acts = [m for m in model.net.modules() if len(list(m.children())) == 0 and not list(m.parameters())]
    acts = [m for m in acts if not isinstance(m, nn.MaxPool2d | nn.AdaptiveAvgPool2d | nn.Identity)]
    want = ProbeReLU if activation.probe != "none" else KIND.get(activation.name)
    assert acts and (want is None or all(type(m) is want for m in acts))  # no ReLU left behind
    assert len({type(m) for m in acts}) == 1
    x = torch.rand(4, 1, 8, 8, requires_grad=True)
    with gradient_phase(model, "attack"):
        model(x).logsumexp(1).sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


@pytest.mark.parametrize("arch", TINY)
def test_the_probe_smooths_the_attack_gradient_and_keeps_relu_s_forward(arch):
    plain = build_model(ModelSpec(arch=arch, in_channels=1, image_size=8, **TINY[arch])).eval()
    probed = build_model(
        ModelSpec(arch=arch, in_channels=1, image_size=8, activation=ActivationSpec(probe="attack"), **TINY[arch])
    ).eval()
    probed.load_state_dict(plain.state_dict())
    x = torch.rand(4, 1, 8, 8)

    def grad(model, phase):
        xg = x.clone().requires_grad_(True)
        with gradient_phase(model, phase):
            model(xg).logsumexp(1).sum().backward()
        return xg.grad

    assert torch.equal(probed(x), plain(x))
    assert torch.equal(grad(probed, "update"), grad(plain, "update"))  # the update keeps ReLU's gradient
    assert not torch.allclose(grad(probed, "attack"), grad(plain, "attack"))


@pytest.mark.parametrize("arch", TINY)
def test_attacks_keep_to_the_eps_ball_and_the_box(arch):
    model = build_model(ModelSpec(arch=arch, in_channels=1, image_size=8, **TINY[arch])).eval()
    x, y = torch.rand(8, 1, 8, 8), torch.randint(0, 10, (8,))
    x_adv = build_attack(AttackSpec(eps=0.05, steps=3))(model, x, y)
    assert (x_adv - x).abs().max() <= 0.05 + 1e-6 and x_adv.min() >= 0 and x_adv.max() <= 1
    assert (x_adv - x).abs().max() > 0.025  # it moved
    assert torch.equal(build_attack(AttackSpec(eps=0.0, steps=2))(model, x, y), x)


@pytest.mark.parametrize("arch", TINY)
def test_a_checkpoint_round_trip_gives_the_same_logits(tmp_path, arch):
    spec = ModelSpec(arch=arch, in_channels=3, image_size=16, activation=ActivationSpec(name="silu"), **TINY[arch])
    model = build_model(spec)
    model.train()
    model(torch.rand(8, 3, 16, 16))  # batch-norm statistics that are not the initial ones
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    save_checkpoint(tmp_path, model, opt, {"spec": {"model": spec.model_dump(mode="json")}}, kind="classifier")
    restored = load_model(tmp_path)
    x = torch.rand(4, 3, 16, 16)
    assert restored.spec == spec and torch.equal(restored(x), model.eval()(x))


def test_specs_name_the_new_networks_and_refuse_what_does_not_fit():
    assert ModelSpec(arch="resnet50").width == 64 and ModelSpec(arch="wrn34_10").width == 16
    assert ModelSpec(arch="resnet50", width=32).width == 32 and ModelSpec().width == 32
    for bad, message in [
        ({"arch": "resnet50", "depth": 34}, "resnet50 has depth 50"),
        ({"arch": "wrn28_10", "widen_factor": 4}, "wrn28_10 has widen_factor 10"),
        ({"arch": "wide_resnet", "depth": 16}, "wide_resnet needs depth"),
        ({"arch": "wide_resnet", "depth": 20, "widen_factor": 4}, r"6n \+ 4"),
        ({"arch": "small_cnn", "stem": "cifar"}, "stem is for resnet"),
        ({"arch": "resnet18", "sub_block1": True}, "sub_block1 is for WideResNets"),
        ({"arch": "preact_resnet18", "widen_factor": 2}, "widen_factor is for wide_resnet"),
    ]:
        with pytest.raises(ValidationError, match=message):
            ModelSpec(**bad)
