"""A small CNN for 28×28 (MNIST, Fashion-MNIST) and 8×8 (digits) inputs."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn


class SmallCNN(nn.Module):
    """conv(w)–act–pool–conv(2w)–act–pool–fc(h)–act–fc(classes).

    Args:
        in_channels: image channels.
        image_size: side of the square input (divisible by 4).
        num_classes: outputs.
        width: channels of the first convolution (default 32).
        act: factory of the activation module (each layer gets its own instance).
        hidden: units of the hidden fully connected layer (None: 4·width).
    """

    def __init__(
        self,
        in_channels: int,
        image_size: int,
        num_classes: int,
        width: int,
        act: Callable[[], nn.Module],
        hidden: int | None = None,
    ):
        super().__init__()
        hidden = hidden or 4 * width
        if image_size % 4:
            raise ValueError(f"SmallCNN needs an image size divisible by 4, got {image_size}")
        side = image_size // 4
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1),
            act(),
            nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1),
            act(),
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(), nn.Linear(2 * width * side * side, hidden), act(), nn.Linear(hidden, num_classes)
        )

    def forward(self, x):
        return self.classifier(self.features(x))
