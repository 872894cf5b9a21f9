"""Samples on demand from a diffusion model, answered within the request when they are quick."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from api.deps import KeyDep, QueueDep, SessionDep, SettingsDep
from api.limits import InteractiveRate
from api.schemas import ForwardAnswer, SamplesAnswer
from api.submission import submit
from api.waiting import INTERACTIVE_RESPONSES, answer
from core.contract.diffusion_specs import DDPMForwardSpec, DDPMSampleSpec

router = APIRouter(prefix="/v1/samples", tags=["samples"])


@router.post("", response_model=SamplesAnswer, responses=INTERACTIVE_RESPONSES, dependencies=[InteractiveRate])
def create_samples(
    spec: DDPMSampleSpec,
    session: SessionDep,
    queue: QueueDep,
    settings: SettingsDep,
    caller: KeyDep,
    response: Response,
    wait: Annotated[float | None, Query(ge=0, le=60)] = None,
) -> dict:
    """Sample `n` images (sampler, steps, seed, η, guidance) on the interactive queue; the answer
    holds the grid's and each image's URL, and the trajectory's frames when asked."""
    job = submit(session, queue, settings, kind="ddpm_sampling", spec=spec, caller=caller)
    wait = settings.interactive_wait_seconds if wait is None else wait
    return answer(session, response, settings.database_url, job, wait)


@router.post("/forward", response_model=ForwardAnswer, responses=INTERACTIVE_RESPONSES, dependencies=[InteractiveRate])
def explore_forward(
    spec: DDPMForwardSpec,
    session: SessionDep,
    queue: QueueDep,
    settings: SettingsDep,
    caller: KeyDep,
    response: Response,
    wait: Annotated[float | None, Query(ge=0, le=60)] = None,
) -> dict:
    """The forward process of one test image: x_t at each t and the model's x̂_0 from it, as image
    URLs (`x_t_urls`, `x0_pred_urls`) beside `timesteps` and ᾱ_t (`alpha_bars`)."""
    job = submit(session, queue, settings, kind="ddpm_forward", spec=spec, caller=caller)
    wait = settings.interactive_wait_seconds if wait is None else wait
    return answer(session, response, settings.database_url, job, wait)
