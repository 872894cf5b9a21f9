"""The dataset catalogue: the datasets known by name, the folders of the operator's data root, and
the datasets users upload (zip archives of class folders). Specs name a dataset from here, never
a path. An uploaded dataset is its owner's (and the admins'): others get 404."""

from __future__ import annotations

from functools import partial
from typing import Annotated

from fastapi import APIRouter, File, Form, HTTPException, Response, UploadFile, status
from sqlalchemy import select

from api.access import data_root_folders, delete_audited, visible_dataset
from api.deps import KeyDep, QueueDep, SessionDep, SettingsDep
from api.limits import InteractiveRate
from api.schemas import Catalogue, DatasetOut, JobOut
from api.submission import submit
from api.uploads import read_bounded
from api.waiting import upload_answer
from core.contract.job_specs import DatasetUploadSpec
from core.contract.names import NAMED_DATASETS
from core.contract.spec_base import NO_NUL
from core.data.archive import ArchiveError, ArchiveLimits, members
from core.data.catalogue import class_names
from core.store.artifacts import ArtifactStore, record_upload
from core.store.db import write_lock
from core.store.deletion import delete_dataset
from core.store.orm import DatasetRow, Job

router = APIRouter(prefix="/v1/datasets", tags=["datasets"])


def dataset_out(row: DatasetRow) -> dict:
    return {
        "id": row.id,
        "name": row.name,
        "label": f"uploaded:{row.id}",
        "classes": row.classes["names"],
        "train": row.classes["train"],
        "test": row.classes["test"],
        "channels": row.channels,
        "image_size": row.image_size,
        "provenance": row.provenance,
        "owner_id": row.owner_id,
        "created_at": row.created_at,
    }


@router.get("", response_model=Catalogue)
def catalogue(session: SessionDep, settings: SettingsDep, caller: KeyDep) -> dict:
    """What a spec's `data` may name: `{"named": [...], "folders": [...], "uploaded": [...]}`
    (`{"name": "folder", "folder": F}`, `{"name": "uploaded", "dataset_id": ID}`)."""
    query = select(DatasetRow).order_by(DatasetRow.created_at.desc())
    if not caller.admin:
        query = query.where(DatasetRow.owner_id == caller.user_id)
    return {
        "named": [{"name": n, "classes": class_names(n)} for n in NAMED_DATASETS],
        "folders": data_root_folders(settings),
        "uploaded": [dataset_out(r) for r in session.scalars(query).all()],
    }


@router.get("/{dataset_id}", response_model=DatasetOut)
def read_dataset(dataset_id: str, session: SessionDep, caller: KeyDep) -> dict:
    return dataset_out(visible_dataset(session, caller, dataset_id))


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=DatasetOut | JobOut,
    responses={
        201: {"description": "checked and registered: the dataset"},
        202: {"model": JobOut, "description": "still being decoded: the job"},
    },
    dependencies=[InteractiveRate],
)
def upload_dataset(
    session: SessionDep,
    queue: QueueDep,
    settings: SettingsDep,
    caller: KeyDep,
    response: Response,
    archive: Annotated[UploadFile, File(description="a zip of class folders (or of train/ and test/ with them)")],
    name: Annotated[str, Form(min_length=1, max_length=200, pattern=NO_NUL)],
    seed: Annotated[int, Form(ge=0, le=2**31 - 1)] = 0,
    wait: Annotated[float, Form(ge=0, le=300)] = 60,
) -> dict:
    """Upload a dataset: the archive is checked (no paths leaving it, no links, no zip bombs, at
    most `ROBUSTLAB_MAX_DATASET_FILES` images, images only) before anything is decoded, then a
    worker decodes it and registers it as the caller's. 201 with the dataset, 202 with the job
    while it works, 4xx naming what is wrong (nothing is kept then)."""
    data = read_bounded(archive, settings.max_dataset_bytes)
    limits = ArchiveLimits(max_files=settings.max_dataset_files, max_pixels=settings.max_image_pixels)
    try:
        members(data, limits)
    except ArchiveError as e:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"archive: {e}") from e
    with write_lock(settings.database_url):
        store = ArtifactStore(settings.artifact_url)
        upload = record_upload(session, store, owner_id=caller.user_id, suffix="zip", data=data)
        spec = DatasetUploadSpec(archive_artifact_id=upload.id, name=name, seed=seed)
        job = submit(session, queue, settings, kind="dataset_upload", spec=spec, caller=caller)

    def registered(done: Job) -> dict:
        return dataset_out(session.get(DatasetRow, done.result["dataset_id"]))

    return upload_answer(session, response, settings.database_url, job, wait, registered)


@router.delete("/{dataset_id}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
def remove_dataset(dataset_id: str, session: SessionDep, settings: SettingsDep, caller: KeyDep) -> Response:
    """Delete an uploaded dataset with its arrays (its owner or an admin); 409 while an unfinished
    job uses it."""
    visible_dataset(session, caller, dataset_id)
    return delete_audited(
        session, settings, caller, "dataset", dataset_id, partial(delete_dataset, dataset_id=dataset_id)
    )
