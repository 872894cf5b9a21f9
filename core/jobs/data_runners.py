"""The dataset job kind's runner: an uploaded zip archive of class folders, checked and decoded
(`core.data.archive`), stored as arrays and registered in the catalogue. A refused archive leaves
nothing behind."""

from __future__ import annotations

import json

import numpy as np
from safetensors.numpy import save
from sqlalchemy import select

from core.contract.job_specs import DatasetUploadSpec
from core.data.archive import read_archive
from core.data.loaders import UPLOADED_ARRAYS, UPLOADED_META
from core.jobs.context import JobContext
from core.jobs.outage import PASSING
from core.store.orm import DatasetRow


def dataset_result(row: DatasetRow) -> dict:
    """A registered dataset as a job's result."""
    return {
        "dataset_id": row.id,
        "name": row.name,
        "classes": row.classes["names"],
        "train": sum(row.classes["train"]),
        "test": sum(row.classes["test"]),
        "channels": row.channels,
        "image_size": row.image_size,
    }


def run_dataset_upload(spec: DatasetUploadSpec, ctx: JobContext) -> dict:
    with ctx.session() as s:
        if (done := s.scalar(select(DatasetRow).where(DatasetRow.job_id == ctx.job_id))) is not None:
            return dataset_result(done)  # registered by an attempt that crashed before the job's final write
        key = ctx.upload_to_consume(s, spec.archive_artifact_id)
    try:
        arrays = read_archive(ctx.store.get_bytes(key), ctx.archive_limits, seed=spec.seed)
    except PASSING:  # not the upload's fault: kept for the next attempt (or the job's deletion)
        raise
    except Exception:  # the upload is refused: it goes
        with ctx.session() as s:
            ctx.consume_upload(s, spec.archive_artifact_id)
        raise
    classes = arrays.pop("classes")
    counts = {split: np.bincount(arrays[f"y_{split}"], minlength=len(classes)).tolist() for split in ("train", "test")}
    with ctx.session() as s:
        ctx.save_artifact(s, f"dataset/{UPLOADED_ARRAYS}", type="dataset", data=save(arrays))
        ctx.save_artifact(s, f"dataset/{UPLOADED_META}", type="dataset", data=json.dumps({"classes": classes}).encode())
        _, channels, size, _ = arrays["x_train"].shape
        row = DatasetRow(
            name=spec.name,
            owner_id=ctx.owner_id,
            classes={"names": classes, **counts},
            channels=channels,
            image_size=size,
            uri=f"jobs/{ctx.job_id}/dataset",
            job_id=ctx.job_id,
        )
        s.add(row)
        s.flush()
        ctx.consume_upload(s, spec.archive_artifact_id)
        return dataset_result(row)
