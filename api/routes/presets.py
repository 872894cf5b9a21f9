"""The presets of every job kind as ready-to-edit specs: what the dashboard's forms start from."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import KeyDep
from api.schemas import Presets
from core.contract.kinds import JOB_KINDS, preset_specs

router = APIRouter(prefix="/v1/presets", tags=["presets"])


@router.get("", response_model=Presets)
def list_presets(_: KeyDep) -> dict[str, dict[str, dict]]:
    """`{kind: {preset: spec}}` for every job kind. Specs that need a model (evaluation, sampling,
    attacks) leave `model_id` empty for the caller to fill in."""
    return {kind: preset_specs(kind) for kind in JOB_KINDS}
