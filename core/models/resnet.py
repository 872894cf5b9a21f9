"""ResNet-18/34/50/101 (He et al. 2016) with torchvision's module names, so torchvision- and
timm-layout state dicts (`conv1`, `bn1`, `layer1`…`layer4` of `BasicBlock`/`Bottleneck` with
`conv1`/`bn1`/`conv2`/`bn2`(/`conv3`/`bn3`)/`downsample.0`/`.1`, `fc`) load strictly into it.

As torchvision's: a bottleneck strides on its 3×3 convolution ("ResNet v1.5"), a block's shortcut
is a 1×1 convolution and batch norm when its shape changes, and one activation module per block
serves its two or three activations. Any activation replaces ReLU (`act` builds it); the
`cifar` stem swaps the 7×7/2 convolution and the max-pool for one 3×3/1 convolution.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from core.contract.architectures import RESNET_STAGES, Block, depth_of
from core.contract.specs import ModelSpec

Act = Callable[[], nn.Module]


def _conv3x3(c_in: int, c_out: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)


def _conv1x1(c_in: int, c_out: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, 1, stride, bias=False)


def _shortcut(c_in: int, c_out: int, stride: int) -> nn.Sequential | None:
    """torchvision's `downsample`: 1×1 convolution and batch norm, when the shape changes."""
    if stride == 1 and c_in == c_out:
        return None
    return nn.Sequential(_conv1x1(c_in, c_out, stride), nn.BatchNorm2d(c_out))


class BasicBlock(nn.Module):
    """act(bn2(conv2(act(bn1(conv1 x)))) + shortcut x), 3×3 convolutions."""

    expansion = 1

    def __init__(self, c_in: int, planes: int, stride: int, act: Act):
        super().__init__()
        self.conv1, self.bn1 = _conv3x3(c_in, planes, stride), nn.BatchNorm2d(planes)
        self.relu = act()
        self.conv2, self.bn2 = _conv3x3(planes, planes), nn.BatchNorm2d(planes)
        self.downsample = _shortcut(c_in, planes, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + identity)


class Bottleneck(nn.Module):
    """1×1 (planes) → 3×3 (planes, the stride) → 1×1 (4·planes), each with batch norm."""

    expansion = 4

    def __init__(self, c_in: int, planes: int, stride: int, act: Act):
        super().__init__()
        c_out = planes * self.expansion
        self.conv1, self.bn1 = _conv1x1(c_in, planes), nn.BatchNorm2d(planes)
        self.conv2, self.bn2 = _conv3x3(planes, planes, stride), nn.BatchNorm2d(planes)
        self.conv3, self.bn3 = _conv1x1(planes, c_out), nn.BatchNorm2d(c_out)
        self.relu = act()
        self.downsample = _shortcut(c_in, c_out, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.relu(self.bn3(self.conv3(out)) + identity)


BLOCKS: dict[Block, type[BasicBlock] | type[Bottleneck]] = {"basic": BasicBlock, "bottleneck": Bottleneck}


class ResNet(nn.Module):
    """A ResNet of `block`s, `layers[i]` of them in stage i (channels width·2^i, ×4 out of a
    bottleneck), global average pooling and `fc`.

    Args:
        block: `basic` (ResNet-18/34) or `bottleneck` (50/101).
        layers: blocks per stage, e.g. (3, 4, 6, 3).
        in_channels: image channels.
        num_classes: outputs.
        width: the first stage's channels (torchvision: 64).
        act: factory of the activation module (each block gets its own instance).
        stem: `imagenet` (7×7/2 convolution, 3×3/2 max-pool) or `cifar` (3×3/1, no pool).
    """

    def __init__(
        self,
        block: Block,
        layers: tuple[int, int, int, int],
        in_channels: int,
        num_classes: int,
        width: int,
        act: Act,
        stem: str = "imagenet",
    ):
        super().__init__()
        kind = BLOCKS[block]
        if stem == "cifar":
            self.conv1, self.maxpool = _conv3x3(in_channels, width), nn.Identity()
        else:
            self.conv1 = nn.Conv2d(in_channels, width, 7, 2, 3, bias=False)
            self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.bn1, self.relu = nn.BatchNorm2d(width), act()
        c_in = width
        for i, blocks in enumerate(layers):
            planes = width * 2**i
            stage = []
            for j in range(blocks):
                stage.append(kind(c_in, planes, 2 if i > 0 and j == 0 else 1, act))
                c_in = planes * kind.expansion
            self.add_module(f"layer{i + 1}", nn.Sequential(*stage))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(c_in, num_classes)
        for m in self.modules():  # torchvision's initialisation
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def build(spec: ModelSpec, act: Act) -> ResNet:
    """The ResNet `spec.arch` names (resnet18…resnet101)."""
    block, layers = RESNET_STAGES[depth_of(spec)]
    return ResNet(block, layers, spec.in_channels, spec.num_classes, spec.width, act, spec.stem or "imagenet")
