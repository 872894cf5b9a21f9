"""Attack one uploaded image on the interactive queue, answering within the request when it can."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Form, HTTPException, Response, UploadFile, status
from pydantic import ValidationError

from api.access import visible_model
from api.deps import KeyDep, QueueDep, SessionDep, SettingsDep
from api.limits import InteractiveRate
from api.schemas import ImageAttackAnswer
from api.submission import submit
from api.uploads import read_bounded, to_model_input
from api.waiting import INTERACTIVE_RESPONSES, answer
from core.contract.attack_specs import AttackSpec
from core.contract.job_specs import ImageAttackSpec
from core.store.artifacts import ArtifactStore, record_upload
from core.store.db import write_lock

router = APIRouter(prefix="/v1/attacks", tags=["attacks"])


@router.post("", response_model=ImageAttackAnswer, responses=INTERACTIVE_RESPONSES, dependencies=[InteractiveRate])
def attack_upload(
    session: SessionDep,
    queue: QueueDep,
    settings: SettingsDep,
    caller: KeyDep,
    response: Response,
    model_id: Annotated[str, Form(max_length=64)],
    image: Annotated[UploadFile | None, File(description="PNG, JPEG, WebP or BMP")] = None,
    test_index: Annotated[
        int | None, Form(ge=0, le=1_000_000, description="instead of an upload: this image of the model's test set")
    ] = None,
    attack: Annotated[str | None, Form(description="an AttackSpec as JSON; default PGD-20, L∞ ε=0.1")] = None,
    label: Annotated[int | None, Form(ge=0, le=999)] = None,
    wait: Annotated[float | None, Form(ge=0, le=60)] = None,
) -> dict:
    """Convert the image (an upload, or a test image by `test_index`) to the model's input, attack
    it, and answer with the predictions before and after, the perturbation's L∞ and L2 size, the
    class names and the URLs of the images (or 202 with the job)."""
    if (image is None) == (test_index is None):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "give exactly one of image (a file) and test_index")
    model = visible_model(session, caller, model_id, "classifier")
    try:
        attack_spec = AttackSpec.model_validate_json(attack) if attack else AttackSpec(steps=20)
    except ValidationError as e:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"attack: {e.errors(include_url=False)}") from e
    png = None if image is None else _model_input(settings, image, model)
    with write_lock(settings.database_url):  # the upload's row and the job's, in one transaction
        store = ArtifactStore(settings.artifact_url)
        upload_id = (
            None if png is None else record_upload(session, store, owner_id=caller.user_id, suffix="png", data=png).id
        )
        spec = ImageAttackSpec(
            model_id=model_id, input_artifact_id=upload_id, test_index=test_index, label=label, attack=attack_spec
        )
        job = submit(session, queue, settings, kind="image_attack", spec=spec, caller=caller)
    wait = settings.interactive_wait_seconds if wait is None else wait
    return answer(session, response, settings.database_url, job, wait)


def _model_input(settings, image: UploadFile, model) -> bytes:
    """The upload, bounded, decoded and converted to the model's input, as PNG bytes."""
    data = read_bounded(image, settings.max_upload_bytes)
    channels, size = model.recipe["model"]["in_channels"], model.recipe["model"]["image_size"]
    return to_model_input(data, channels=channels, size=size, max_pixels=settings.max_image_pixels)
