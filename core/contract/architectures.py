"""What each architecture name fixes, and which `ModelSpec` fields it takes. Torch-free: the API
validates specs with it, memory admission estimates from it and `core.models` builds from it.

- `small_cnn`, `preact_resnet18`: `width` is the first convolution's channels (default 32);
  `hidden` is `small_cnn`'s fully connected layer's units (default 4·width).
- `resnet18`, `resnet34`, `resnet50`, `resnet101`: torchvision's ResNets (He et al. 2016; the
  stride of a bottleneck sits on its 3×3 convolution, "v1.5"). `width` is the first stage's
  channels (default 64, torchvision's; stages `width`·[1, 2, 4, 8], ×4 out of a bottleneck);
  `stem` is `imagenet` (7×7/2 convolution and 3×3/2 max-pool, default) or `cifar` (3×3/1
  convolution, no pool: for 32-px inputs).
- `wrn28_10`, `wrn34_10`, `wide_resnet`: the WideResNet of TRADES and RobustBench (Zagoruyko &
  Komodakis 2016, pre-activation blocks). `width` is the first convolution's channels (default
  16, the paper's; stages `width`·k·[1, 2, 4] for widen factor k); `depth` = 6n + 4 (n blocks per
  stage) and `widen_factor` k are fixed by the two names and given for `wide_resnet`;
  `sub_block1` adds the unused `sub_block1` stage that TRADES' definition (and RobustBench's with
  `sub_block1=True`) carries, so checkpoints saved from it load strictly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

from core.contract.names import Architecture


class ModelFields(Protocol):
    """The fields of a `ModelSpec` read here (specs.py imports this module, not the reverse)."""

    arch: Architecture
    depth: int | None
    widen_factor: int | None
    stem: str | None
    sub_block1: bool
    hidden: int | None


Family = Literal["small_cnn", "preact_resnet", "resnet", "wide_resnet"]
Block = Literal["basic", "bottleneck"]


@dataclass(frozen=True)
class ArchFacts:
    """One architecture name: its family, the default `width`, and the depth and widen factor the
    name fixes (None: the spec gives them)."""

    family: Family
    default_width: int
    depth: int | None = None
    widen_factor: int | None = None


ARCHS: dict[Architecture, ArchFacts] = {
    "small_cnn": ArchFacts("small_cnn", 32),
    "preact_resnet18": ArchFacts("preact_resnet", 32, depth=18),
    "resnet18": ArchFacts("resnet", 64, depth=18),
    "resnet34": ArchFacts("resnet", 64, depth=34),
    "resnet50": ArchFacts("resnet", 64, depth=50),
    "resnet101": ArchFacts("resnet", 64, depth=101),
    "wrn28_10": ArchFacts("wide_resnet", 16, depth=28, widen_factor=10),
    "wrn34_10": ArchFacts("wide_resnet", 16, depth=34, widen_factor=10),
    "wide_resnet": ArchFacts("wide_resnet", 16),
}
# torchvision's ResNets: the block and the blocks per stage of each depth (He et al. 2016, Table 1)
RESNET_STAGES: dict[int, tuple[Block, tuple[int, int, int, int]]] = {
    18: ("basic", (2, 2, 2, 2)),
    34: ("basic", (3, 4, 6, 3)),
    50: ("bottleneck", (3, 4, 6, 3)),
    101: ("bottleneck", (3, 4, 23, 3)),
}


def depth_of(spec: ModelFields) -> int | None:
    """The network's depth: fixed by the name, or the spec's (`wide_resnet`); None for `small_cnn`."""
    return ARCHS[spec.arch].depth or spec.depth


def widen_factor_of(spec: ModelFields) -> int | None:
    """A WideResNet's widen factor k (None for the other families)."""
    return ARCHS[spec.arch].widen_factor or spec.widen_factor


def wrn_blocks_per_stage(depth: int) -> int:
    """n of a WRN-(6n+4)."""
    return (depth - 4) // 6


def check_architecture_fields(spec: ModelFields) -> None:
    """The spec's `depth`, `widen_factor`, `stem`, `sub_block1` and `hidden` fit its architecture.

    Raises:
        ValueError: naming the field and what the architecture takes.
    """
    facts = ARCHS[spec.arch]
    for field, fixed in (("depth", facts.depth), ("widen_factor", facts.widen_factor)):
        given = getattr(spec, field)
        if given is None or given == fixed:
            continue
        if fixed is not None:
            raise ValueError(f"{field}: {spec.arch} has {field} {fixed}, got {given}")
        if spec.arch != "wide_resnet":
            raise ValueError(f"{field} is for wide_resnet, not {spec.arch}")
    if spec.arch == "wide_resnet":
        if spec.depth is None or spec.widen_factor is None:
            raise ValueError("wide_resnet needs depth (6n + 4: 16, 28, 34, …) and widen_factor")
        if (spec.depth - 4) % 6:
            raise ValueError(f"depth: a WideResNet has 6n + 4 layers (10, 16, 22, 28, 34, …), got {spec.depth}")
    if spec.stem is not None and facts.family != "resnet":
        raise ValueError(f"stem is for resnet18…resnet101, not {spec.arch}")
    if spec.sub_block1 and facts.family != "wide_resnet":
        raise ValueError(f"sub_block1 is for WideResNets, not {spec.arch}")
    if spec.hidden is not None and spec.arch != "small_cnn":
        raise ValueError(f"hidden is for small_cnn, not {spec.arch}")
