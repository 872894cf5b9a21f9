"""PreAct ResNet-18 (He et al. 2016, identity mappings), the robustness literature's workhorse."""

from __future__ import annotations

from collections.abc import Callable

import torch.nn.functional as F
from torch import nn


class PreActBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int, act: Callable[[], nn.Module]):
        super().__init__()
        self.bn1, self.act1 = nn.BatchNorm2d(c_in), act()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn2, self.act2 = nn.BatchNorm2d(c_out), act()
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.shortcut = nn.Conv2d(c_in, c_out, 1, stride, bias=False) if stride != 1 or c_in != c_out else None

    def forward(self, x):
        out = self.act1(self.bn1(x))
        skip = self.shortcut(out) if self.shortcut is not None else x
        out = self.conv1(out)
        out = self.conv2(self.act2(self.bn2(out)))
        return out + skip


class PreActResNet18(nn.Module):
    """PreAct ResNet-18 for 28 or 32 px inputs with 1 or 3 channels; `width` is the first stage's."""

    def __init__(self, in_channels: int, image_size: int, num_classes: int, width: int, act: Callable[[], nn.Module]):
        super().__init__()
        if image_size not in (28, 32):
            raise ValueError(f"PreActResNet18 takes 28 or 32 px inputs, got {image_size}")
        widths = [width, 2 * width, 4 * width, 8 * width]
        self.stem = nn.Conv2d(in_channels, width, 3, 1, 1, bias=False)
        layers, c_in = [], width
        for i, c_out in enumerate(widths):
            stride = 1 if i == 0 else 2
            layers += [PreActBlock(c_in, c_out, stride, act), PreActBlock(c_out, c_out, 1, act)]
            c_in = c_out
        self.layers = nn.Sequential(*layers)
        self.bn, self.act = nn.BatchNorm2d(c_in), act()
        self.fc = nn.Linear(c_in, num_classes)

    def forward(self, x):
        out = self.act(self.bn(self.layers(self.stem(x))))
        return self.fc(F.adaptive_avg_pool2d(out, 1).flatten(1))
