"""The model registry, and classifiers researchers bring."""

from __future__ import annotations

from functools import partial
from typing import Annotated

from fastapi import APIRouter, File, Form, HTTPException, Query, Response, UploadFile, status
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from api.access import delete_audited, models_visible_to, require_owner, visible_model
from api.deps import MAX_OFFSET, KeyDep, QueueDep, SessionDep, SettingsDep
from api.limits import InteractiveRate
from api.schemas import JobOut, ModelList, ModelOut
from api.submission import submit
from api.uploads import check_safetensors, read_bounded
from api.waiting import upload_answer
from core.contract.job_specs import ModelUploadSpec
from core.contract.spec_base import NO_NUL
from core.contract.specs import DataSpec, ModelSpec
from core.contract.weights_files import check_pytorch_file, weights_format
from core.store.artifacts import ArtifactStore, record_upload
from core.store.db import write_lock
from core.store.deletion import delete_model
from core.store.orm import Job, RegisteredModel
from core.store.registry import get_model, list_models

router = APIRouter(prefix="/v1/models", tags=["models"])


@router.get("", response_model=ModelList)
def list_registered(
    session: SessionDep,
    caller: KeyDep,
    kind: str | None = None,
    dataset: str | None = None,
    activation: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> dict:
    items, total = list_models(
        session,
        kind=kind,
        dataset=dataset,
        activation=activation,
        limit=limit,
        offset=offset,
        where=models_visible_to(caller),
    )
    return {"items": items, "total": total, "limit": limit, "offset": offset}


@router.get("/{model_id}", response_model=ModelOut)
def read_model(model_id: str, session: SessionDep, caller: KeyDep) -> RegisteredModel:
    return visible_model(session, caller, model_id)


UPLOAD_RESPONSES = {
    201: {"description": "checked and registered: the model"},
    202: {"model": JobOut, "description": "still being checked: the job (the model is registered when it succeeds)"},
    413: {"description": "weights larger than this server accepts"},
    422: {"description": "a check failed; the message names what is wrong, and nothing was registered"},
}


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ModelOut | JobOut,
    responses=UPLOAD_RESPONSES,
    dependencies=[InteractiveRate],
)
def upload_model(
    session: SessionDep,
    queue: QueueDep,
    settings: SettingsDep,
    caller: KeyDep,
    response: Response,
    weights: Annotated[
        UploadFile,
        File(
            description="the weights of the architecture `spec` names: safetensors, or a PyTorch "
            "state-dict file (torch.save; read with torch.load(weights_only=True) only) in torchvision's, "
            "TRADES' or RobustBench's layout (`state_dict` / `model_state_dict` / `model` wrappers, "
            "`module.` prefixes)"
        ),
    ],
    spec: Annotated[
        str,
        Form(
            description="a ModelSpec as JSON: arch, activation, width (depth, widen_factor, stem, "
            "sub_block1 where the arch takes them), channels, image size, classes, and the normalisation "
            "(mean, std) the weights expect; required for a PyTorch file (RobustBench's models take [0, 1] "
            "inputs: mean 0, std 1)"
        ),
    ],
    dataset: Annotated[
        str,
        Form(
            max_length=200,
            description="the dataset it classifies: a name (fashion-mnist), folder:<name> or "
            "uploaded:<id> (GET /v1/datasets)",
        ),
    ],
    name: Annotated[str | None, Form(min_length=1, max_length=200, pattern=NO_NUL)] = None,
    wait: Annotated[float, Form(ge=0, le=300)] = 60,
) -> dict:
    """Register your own classifier (no code; a PyTorch file is never fully unpickled): its weights
    load strictly into the architecture, are finite and fit the size limit, and its clean accuracy
    on the dataset's test images is stored with it. Evaluate it like any other model afterwards."""
    data = read_bounded(weights, settings.max_model_bytes)
    fmt = weights_format(data)
    if fmt == "safetensors":
        check_safetensors(data)
    else:
        try:
            check_pytorch_file(data)  # its tensors are read by the worker, with weights_only
        except ValueError as e:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(e)) from e
    try:
        model_spec = ModelSpec.model_validate_json(spec)
        target = DataSpec.from_label(dataset)
        job_spec = ModelUploadSpec(
            weights_artifact_id="pending", weights_format=fmt, model=model_spec, data=target, name=name
        )
    except ValidationError as e:
        raise RequestValidationError(
            [{**err, "loc": ("body", "spec", *err["loc"])} for err in e.errors(include_url=False)]
        ) from e
    if fmt == "pytorch" and (model_spec.mean is None or model_spec.std is None):
        raise HTTPException(
            status.HTTP_422_UNPROCESSABLE_CONTENT,
            "spec: give mean and std, the normalisation these weights expect (RobustBench's models take "
            "[0, 1] inputs unnormalised: mean 0 and std 1 per channel; torchvision's ImageNet models "
            "mean [0.485, 0.456, 0.406], std [0.229, 0.224, 0.225])",
        )
    store = ArtifactStore(settings.artifact_url)
    with write_lock(settings.database_url):
        suffix = "pt" if fmt == "pytorch" else "safetensors"
        upload = record_upload(session, store, owner_id=caller.user_id, suffix=suffix, data=data)
        job_spec = job_spec.model_copy(update={"weights_artifact_id": upload.id})
        job = submit(session, queue, settings, kind="model_upload", spec=job_spec, caller=caller)

    def registered(done: Job) -> dict:
        return ModelOut.model_validate(get_model(session, model_id=done.result["model_id"])).model_dump(mode="json")

    return upload_answer(session, response, settings.database_url, job, wait, registered)


@router.delete("/{model_id}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
def remove_model(model_id: str, session: SessionDep, settings: SettingsDep, caller: KeyDep) -> Response:
    """Delete a model with its checkpoint (its owner or an admin); 409 while a queued or running job
    acts on it."""
    row = visible_model(session, caller, model_id)
    require_owner(caller, row.owner_id, "model")
    return delete_audited(session, settings, caller, "model", model_id, partial(delete_model, model_id=model_id))
