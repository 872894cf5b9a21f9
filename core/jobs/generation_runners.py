"""The generated-dataset job kind's runner: samples a labelled dataset from a registered
class-conditional diffusion model, shard by shard (a job that dies resumes at its first missing
shard), and registers it in the catalogue with its provenance."""

from __future__ import annotations

import hashlib
import json
import time

import numpy as np
import torch
from safetensors.numpy import load, save
from sqlalchemy import select

from core.contract.diffusion_specs import DatasetGenerationSpec
from core.contract.progress import Progress
from core.contract.specs import DataSpec
from core.data.loaders import UPLOADED_META
from core.diffusion.generate import generate_shard, shard_ranges
from core.diffusion.quality import sample_quality
from core.images import grid_png
from core.jobs.context import JobContext
from core.jobs.data_runners import dataset_result
from core.jobs.diffusion_runners import quality_classifier
from core.store.orm import Artifact, DatasetRow

TEST_FILE = "test.safetensors"
GRID_PER_CLASS = 8  # the sample grid: one row per class
QUALITY_SAMPLES = 1000  # kept images (spread over every shard) for the Fréchet distance


def _shard_name(k: int) -> str:
    return f"shard_{k:05d}.safetensors"


def _filter_classifier(spec: DatasetGenerationSpec, ctx: JobContext, dataset: str, size: int, classes: int):
    if spec.filter is None:
        return None
    classifier, classifier_data = ctx.registered_model(spec.filter.classifier_id, "classifier")
    if classifier_data != dataset or classifier.spec.image_size != size or classifier.spec.num_classes != classes:
        raise ValueError(f"filter classifier {spec.filter.classifier_id} is not a classifier of {dataset}")
    return classifier


def _grid(examples: list[list[np.ndarray]], shape) -> bytes:
    """One row per class of the kept images (blank where a class kept fewer)."""
    blank = np.full(tuple(shape), 255, dtype=np.uint8)
    rows = [row + [blank] * (GRID_PER_CLASS - len(row)) for row in examples]
    images = torch.from_numpy(np.stack([image for row in rows for image in row])).float() / 255
    return grid_png(images, nrow=GRID_PER_CLASS)


def quality_picks(n: int, share: float, k: int) -> np.ndarray:
    """A random `share` of a shard's n images (drawn from k, so the same on a resumed run). Random,
    not every j-th: labels cycle through the classes, so a stride would pick a few classes only."""
    size = min(n, int(np.ceil(n * share)))
    return np.sort(np.random.default_rng(k).choice(n, size=size, replace=False))


def _quality(ctx: JobContext, dataset: str, real, kept: np.ndarray, spec: DatasetGenerationSpec) -> dict | None:
    """The kept images' Fréchet distance to as many real test images, as the DDPM training job
    measures it (in the best registered classifier's features), or None without such a classifier."""
    classifier_id, classifier = quality_classifier(ctx, dataset)
    n = min(len(kept), len(real.x_test))
    if classifier is None or classifier.spec.image_size != real.image_size or n < 2:
        return None
    samples = torch.from_numpy(kept[:n]).float() / 255
    quality = sample_quality(classifier, samples, real.x_test[:n], real.classes)
    return {**quality, "classifier_id": classifier_id, "sampler": f"{spec.sampler}-{spec.num_steps}"}


def _written_shard(ctx: JobContext, k: int) -> dict | None:
    """Shard k as an earlier attempt recorded it, or None. Only a recorded shard whose bytes still
    match the recorded hash counts: a write cut short by a crash is made again."""
    key = f"jobs/{ctx.job_id}/dataset/{_shard_name(k)}"
    with ctx.session() as s:
        row = s.scalar(select(Artifact).where(Artifact.job_id == ctx.job_id, Artifact.uri == key))
        expected = None if row is None else row.sha256
    if expected is None or not ctx.store.exists(key):
        return None
    data = ctx.store.get_bytes(key)
    return load(data) if hashlib.sha256(data).hexdigest() == expected else None


def run_dataset_generation(spec: DatasetGenerationSpec, ctx: JobContext) -> dict:
    if spec.model_id is None:
        raise ValueError("dataset_generation needs model_id (a class-conditional diffusion model)")
    with ctx.session() as s:
        done = s.scalar(select(DatasetRow).where(DatasetRow.job_id == ctx.job_id))
        if done is not None:  # registered by an attempt that crashed before the job's final write
            return {**dataset_result(done), "provenance": done.provenance}
    model, dataset = ctx.registered_model(spec.model_id, "diffusion")
    if not model.spec.class_conditional:
        raise ValueError(f"diffusion model {spec.model_id} is not class-conditional: it cannot generate labels")
    real = ctx.load_data(DataSpec.from_label(dataset))
    classifier = _filter_classifier(spec, ctx, dataset, real.image_size, real.num_classes)
    ranges = shard_ranges(spec, model.num_classes)
    drawn = np.zeros(model.num_classes, dtype=np.int64)
    kept = np.zeros(model.num_classes, dtype=np.int64)
    seconds, made, resumed = 0.0, 0, 0
    examples: list[list[np.ndarray]] = [[] for _ in range(model.num_classes)]
    share = QUALITY_SAMPLES / ranges[-1][1]  # of each shard's kept images, for the Fréchet distance
    spread: list[np.ndarray] = []
    for k, span in enumerate(ranges):
        if (arrays := _written_shard(ctx, k)) is not None:  # by an earlier attempt of this job
            resumed += 1
        else:
            t0 = time.perf_counter()
            arrays = generate_shard(model, spec, k, span, classifier=classifier, should_stop=ctx.should_stop)
            seconds, made = seconds + time.perf_counter() - t0, made + span[1] - span[0]
            with ctx.session() as s:
                ctx.save_artifact(s, f"dataset/{_shard_name(k)}", type="dataset", data=save(arrays))
        drawn += np.bincount(arrays["drawn"], minlength=model.num_classes)
        kept += np.bincount(arrays["y_train"], minlength=model.num_classes)
        spread.append(arrays["x_train"][quality_picks(len(arrays["x_train"]), share, k)])
        for image, label in zip(arrays["x_train"], arrays["y_train"], strict=True):
            if len(examples[label]) < GRID_PER_CLASS:
                examples[label].append(image)
        message = f"shard {k + 1}/{len(ranges)}: {int(kept.sum())} images kept"
        ctx.progress(Progress((k + 1) / len(ranges), message, {"images_kept": float(kept.sum())}, step=k + 1))
    if kept.sum() == 0:
        raise ValueError("the filter kept no generated image: lower its confidence or drop it")
    x_test = (real.x_test[:] * 255).round().byte().numpy()  # [:] reads a streamed split
    test_counts = np.bincount(real.y_test.numpy(), minlength=real.num_classes).tolist()
    provenance = {
        "generated_by": ctx.job_id,
        "diffusion_model_id": spec.model_id,
        "dataset": dataset,
        "sampler": spec.sampler,
        "steps": spec.num_steps,
        "eta": spec.eta,
        "guidance_scale": spec.guidance_scale,
        "seed": spec.seed,
        "filter": spec.filter.model_dump(mode="json") if spec.filter else None,
        "drawn_per_class": drawn.tolist(),
        "kept_per_class": kept.tolist(),
        "images_per_second": made / seconds if seconds else None,  # this attempt's sampling and filtering
        "quality": _quality(ctx, dataset, real, np.concatenate(spread)[:QUALITY_SAMPLES], spec),
        "test_split": f"the real test split of {dataset}",
    }
    files = [_shard_name(k) for k in range(len(ranges))] + [TEST_FILE]
    with ctx.session() as s:
        grid = ctx.save_artifact(s, "samples.png", type="image", data=_grid(examples, real.x_test.shape[1:]))
        provenance["grid_artifact_id"] = grid.id
        ctx.save_artifact(
            s, f"dataset/{TEST_FILE}", type="dataset", data=save({"x_test": x_test, "y_test": real.y_test.numpy()})
        )
        meta = {"classes": real.classes, "files": files, "provenance": provenance}
        ctx.save_artifact(s, f"dataset/{UPLOADED_META}", type="dataset", data=json.dumps(meta).encode())
        row = DatasetRow(
            name=spec.name or f"{dataset}-generated-{int(kept.sum())}",
            owner_id=ctx.owner_id,
            classes={"names": real.classes, "train": kept.tolist(), "test": test_counts},
            channels=real.in_channels,
            image_size=real.image_size,
            uri=f"jobs/{ctx.job_id}/dataset",
            job_id=ctx.job_id,
            provenance=provenance,
        )
        s.add(row)
        s.flush()
        return {**dataset_result(row), "provenance": provenance, "shards": len(ranges), "shards_resumed": resumed}
