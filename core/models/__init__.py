"""Classifiers by name, built from a `ModelSpec` and restored from a checkpoint folder alone.

A checkpoint folder holds `model.safetensors` (weights) and `checkpoint.json`, whose
`spec.model` is the `ModelSpec` that rebuilds the architecture.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import nn

from core.activations import build_activation, drop_probes
from core.contract.checkpoint import MODEL_FILE, read_meta
from core.contract.names import Architecture
from core.contract.specs import ModelSpec
from core.models import resnet, wide_resnet
from core.models.cnn import SmallCNN
from core.models.preact_resnet import PreActResNet18

Act = Callable[[], nn.Module]


def _sized(network: type[nn.Module]) -> Callable[[ModelSpec, Act], nn.Module]:
    """A builder for the networks that take (in_channels, image_size, num_classes, width, act)."""
    return lambda spec, act: network(spec.in_channels, spec.image_size, spec.num_classes, spec.width, act)


# One builder per architecture name of the contract, `(spec, activation factory) -> network`
# (a test checks that none is missing).
NETWORKS: dict[Architecture, Callable[[ModelSpec, Act], nn.Module]] = {
    "small_cnn": lambda spec, act: SmallCNN(
        spec.in_channels, spec.image_size, spec.num_classes, spec.width, act, hidden=spec.hidden
    ),
    "preact_resnet18": _sized(PreActResNet18),
    **dict.fromkeys(("resnet18", "resnet34", "resnet50", "resnet101"), resnet.build),
    **dict.fromkeys(("wrn28_10", "wrn34_10", "wide_resnet"), wide_resnet.build),
}


class Normalize(nn.Module):
    """(x − mean) / std per channel, so the model takes images in [0, 1]."""

    def __init__(self, mean: list[float], std: list[float]):
        super().__init__()
        if len(mean) != len(std) or any(s <= 0 for s in std):
            raise ValueError("mean and std need one value per channel, std > 0")
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, -1, 1, 1), persistent=False)

    def forward(self, x):
        return (x - self.mean) / self.std


class Classifier(nn.Module):
    """Normalisation followed by the network; `spec` rides along for checkpointing."""

    def __init__(self, spec: ModelSpec):
        super().__init__()
        self.spec = spec
        c = spec.in_channels
        self.normalize = Normalize(spec.mean or [0.5] * c, spec.std or [0.5] * c)
        self.net = NETWORKS[spec.arch](spec, lambda: build_activation(spec.activation))
        # the weight whose layout tells the model's memory format (a 1-channel convolution's fits both)
        convs = [
            (m.in_channels, f"net.{name}.weight") for name, m in self.net.named_modules() if isinstance(m, nn.Conv2d)
        ]
        self._layout_weight = max(convs)[1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 4 and self.get_parameter(self._layout_weight).is_contiguous(memory_format=torch.channels_last):
            x = x.contiguous(memory_format=torch.channels_last)  # mixed formats are several times slower
        return self.net(self.normalize(x))


def build_model(spec: ModelSpec) -> Classifier:
    """A freshly initialised classifier for `spec` (seed torch first for reproducibility)."""
    if spec.arch not in NETWORKS:
        raise ValueError(f"unknown architecture {spec.arch!r}; known: {sorted(NETWORKS)}")
    return Classifier(spec)


def load_model(folder: str | Path, *, device: str | torch.device = "cpu", channels_last: bool = False) -> Classifier:
    """Rebuild a classifier from a checkpoint folder (its JSON spec and safetensors weights), in
    eval mode on `device`, its weights in channels_last memory format if asked. A smooth-backward
    probe is dropped: a loaded model is evaluated and served with its true gradients.

    Raises:
        FileNotFoundError: the folder lacks `checkpoint.json` or `model.safetensors`.
        ValueError: the folder holds a diffusion model, not a classifier.
    """
    meta = read_meta(folder, expect="classifier")
    model = build_model(ModelSpec.model_validate(meta["spec"]["model"]))
    model.load_state_dict(load_file(Path(folder) / MODEL_FILE, device="cpu"))
    model = drop_probes(model).to(device).eval()
    return model.to(memory_format=torch.channels_last) if channels_last else model
