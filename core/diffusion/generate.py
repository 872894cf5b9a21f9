"""A labelled dataset sampled from a class-conditional diffusion model, one shard at a time.

Image i is generated for class i mod C, so every shard holds the classes in turn and the whole set
`per_class` of each; shard k is sampled from (seed, k) alone, so a job that resumes after its
last written shard ends with the images an uninterrupted one would have. A registered classifier
may filter the shard (keep what it agrees with, or relabel: Gowal et al. 2021's pseudo-labels)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from core.contract.diffusion_specs import DatasetGenerationSpec, DDPMSampleSpec, SampleFilterSpec
from core.contract.progress import StopFn, never_stop
from core.diffusion.ddpm import DiffusionModel
from core.diffusion.sampling import sample

MAX_IMAGES = 1_000_000  # one job's images, all classes together


def shard_ranges(spec: DatasetGenerationSpec, num_classes: int) -> list[tuple[int, int]]:
    """`[(start, end), ...]`: the global image indices of each shard."""
    total = spec.per_class * num_classes
    if total > MAX_IMAGES:
        raise ValueError(f"{total} images asked ({spec.per_class} × {num_classes} classes); at most {MAX_IMAGES}")
    return [(start, min(start + spec.shard_size, total)) for start in range(0, total, spec.shard_size)]


def shard_seed(seed: int, k: int) -> int:
    return seed * 1_000_003 + k


def generate_shard(
    model: DiffusionModel,
    spec: DatasetGenerationSpec,
    k: int,
    span: tuple[int, int],
    *,
    classifier: nn.Module | None = None,
    should_stop: StopFn = never_stop,
) -> dict[str, np.ndarray]:
    """Shard `k`: `{"x_train": uint8 (n, C, H, W), "y_train": int64 (n,), "drawn": int64 (n0,)}`
    where `drawn` is the label each image was generated for, before the filter.

    Raises:
        ValueError: the model is not class-conditional.
        Stopped: `should_stop` asked.
    """
    if not model.spec.class_conditional:
        raise ValueError("generating a labelled dataset needs a class-conditional diffusion model")
    labels = [i % model.num_classes for i in range(*span)]
    out = sample(
        model,
        DDPMSampleSpec(
            n=len(labels),
            sampler=spec.sampler,
            steps=spec.num_steps,
            eta=spec.eta,
            seed=shard_seed(spec.seed, k),
            guidance_scale=spec.guidance_scale,
            class_labels=labels,
        ),
        should_stop=should_stop,
    )
    images = out["images"].clamp(0, 1)
    drawn = torch.tensor(labels, dtype=torch.int64)
    keep, kept_labels = filter_samples(images, drawn, classifier, spec.filter)
    x = (images[keep] * 255).round().to(torch.uint8)
    return {"x_train": x.numpy(), "y_train": kept_labels[keep].numpy(), "drawn": drawn.numpy()}


@torch.no_grad()
def filter_samples(
    images: torch.Tensor, drawn: torch.Tensor, classifier: nn.Module | None, spec: SampleFilterSpec | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(keep mask, labels): every image with its drawn label when there is no filter; else the
    images the classifier agrees with (`agree`) or its predictions (`relabel`), at or above the
    confidence."""
    if spec is None or classifier is None:
        return torch.ones(len(drawn), dtype=torch.bool), drawn
    device = next(classifier.parameters()).device
    probs = torch.cat([classifier(c.to(device)).softmax(1).cpu() for c in images.split(256)])
    conf, pred = probs.max(1)
    if spec.mode == "relabel":
        return conf >= spec.confidence, pred
    agree_conf = probs.gather(1, drawn[:, None])[:, 0]
    return (pred == drawn) & (agree_conf >= spec.confidence), drawn
