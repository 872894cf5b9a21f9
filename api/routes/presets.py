"""The presets of every job kind as ready-to-edit specs: what the dashboard's forms start from."""

from __future__ import annotations

from fastapi import APIRouter

from api.deps import KeyDep
from core.diffusion.presets import ddpm_preset
from core.presets import PRESETS, eval_preset, train_preset
from core.specs import DDPMForwardSpec, DDPMSampleSpec

router = APIRouter(prefix="/v1/presets", tags=["presets"])


@router.get("")
def list_presets(_: KeyDep) -> dict[str, dict[str, dict]]:
    """`{kind: {preset: spec}}`. Specs that need a model (evaluation, sampling) leave `model_id`
    empty for the caller to fill in."""
    dump = lambda spec: spec.model_dump(mode="json")  # noqa: E731
    return {
        "adversarial_training": {p: dump(train_preset(p)) for p in PRESETS},
        "attack_evaluation": {p: dump(eval_preset(p)) for p in PRESETS},
        "ddpm_training": {p: dump(ddpm_preset(p)) for p in PRESETS},
        "ddpm_sampling": {s: dump(DDPMSampleSpec(sampler=s)) for s in ("ddim", "dpm_solver", "ddpm")},
        "ddpm_forward": {"default": DDPMForwardSpec(model_id="").model_dump(mode="json")},
    }
