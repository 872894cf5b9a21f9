"""WideResNet (Zagoruyko & Komodakis 2016) with the module names of the definition TRADES
(Zhang et al. 2019) published and RobustBench keeps, so their state dicts load strictly:
`conv1`, `block1`…`block3` (each a `layer` of blocks with `bn1`, `relu1`, `conv1`, `bn2`,
`relu2`, `conv2` and, where the channels change, `convShortcut`), `bn1`, `relu`, `fc`, and with
`sub_block1` the unused stage TRADES' checkpoints carry.

A WRN-(6n+4)-k has three stages of n pre-activation blocks, channels width·k·[1, 2, 4] (width 16
in the paper), strides 1, 2, 2. As in the reference, a block whose channels change feeds its 1×1
shortcut the activated input bn→act(x), and one whose channels stay adds x itself. The pooling is
global (the reference's 8×8 average pool is that for 32-px inputs), so any image size works.
Dropout is not offered (TRADES and RobustBench train with 0).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from core.contract.architectures import depth_of, widen_factor_of, wrn_blocks_per_stage
from core.contract.specs import ModelSpec

Act = Callable[[], nn.Module]


class BasicBlock(nn.Module):
    """Pre-activation block: conv2(act(bn2(conv1(act(bn1 x))))) + shortcut."""

    def __init__(self, c_in: int, c_out: int, stride: int, act: Act):
        super().__init__()
        self.bn1, self.relu1 = nn.BatchNorm2d(c_in), act()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn2, self.relu2 = nn.BatchNorm2d(c_out), act()
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.equal_in_out = c_in == c_out and stride == 1
        self.convShortcut = None if self.equal_in_out else nn.Conv2d(c_in, c_out, 1, stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu1(self.bn1(x))
        skip = x if self.convShortcut is None else self.convShortcut(out)
        out = self.conv2(self.relu2(self.bn2(self.conv1(out))))
        return skip + out


class NetworkBlock(nn.Module):
    """A stage: `layer`, n blocks, the first of which takes the stride and the channel change."""

    def __init__(self, blocks: int, c_in: int, c_out: int, stride: int, act: Act):
        super().__init__()
        self.layer = nn.Sequential(
            *(BasicBlock(c_in if i == 0 else c_out, c_out, stride if i == 0 else 1, act) for i in range(blocks))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x)


class WideResNet(nn.Module):
    """WRN-depth-k.

    Args:
        depth: 6n + 4 (28, 34, …).
        widen_factor: k.
        in_channels: image channels.
        num_classes: outputs.
        width: the first convolution's channels (16 in the paper).
        act: factory of the activation module (each activation gets its own instance).
        sub_block1: also hold TRADES' `sub_block1` (built, never run), for its checkpoints.
    """

    def __init__(
        self,
        depth: int,
        widen_factor: int,
        in_channels: int,
        num_classes: int,
        width: int,
        act: Act,
        sub_block1: bool = False,
    ):
        super().__init__()
        if depth < 10 or (depth - 4) % 6:
            raise ValueError(f"a WideResNet has 6n + 4 layers (10, 16, 22, 28, 34, …), got {depth}")
        n = wrn_blocks_per_stage(depth)
        channels = [width, width * widen_factor, 2 * width * widen_factor, 4 * width * widen_factor]
        self.conv1 = nn.Conv2d(in_channels, channels[0], 3, 1, 1, bias=False)
        self.block1 = NetworkBlock(n, channels[0], channels[1], 1, act)
        if sub_block1:
            self.sub_block1 = NetworkBlock(n, channels[0], channels[1], 1, act)
        self.block2 = NetworkBlock(n, channels[1], channels[2], 2, act)
        self.block3 = NetworkBlock(n, channels[2], channels[3], 2, act)
        self.bn1, self.relu = nn.BatchNorm2d(channels[3]), act()
        self.fc = nn.Linear(channels[3], num_classes)
        for m in self.modules():  # the reference's initialisation
            if isinstance(m, nn.Conv2d):
                fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
                nn.init.normal_(m.weight, 0, (2.0 / fan_out) ** 0.5)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.block3(self.block2(self.block1(self.conv1(x))))
        out = self.relu(self.bn1(out))
        return self.fc(F.adaptive_avg_pool2d(out, 1).flatten(1))


def build(spec: ModelSpec, act: Act) -> WideResNet:
    """The WideResNet `spec` names (wrn28_10, wrn34_10, or wide_resnet with its depth and k)."""
    return WideResNet(
        depth_of(spec), widen_factor_of(spec), spec.in_channels, spec.num_classes, spec.width, act, spec.sub_block1
    )
