"""Bring a checkpoint folder trained outside the service (the command line, another machine)
into the registry, so the service can evaluate, attack and sample with it. Torch-free."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from sqlalchemy.orm import Session

from core.specs import ActivationSpec
from core.store.artifacts import ArtifactStore
from core.store.orm import RegisteredModel
from core.store.registry import register_model

META_FILE, MODEL_FILE = ("checkpoint.json", "model.safetensors")  # as core.training.checkpoint writes them


def import_checkpoint(
    session: Session, store: ArtifactStore, folder: Path, *, name: str | None = None, summary: dict | None = None
) -> RegisteredModel:
    """Copy `folder` into the artifact store and register it as a classifier or a diffusion model
    (told apart by its checkpoint.json). `summary` is merged into the registry's summary.

    Raises:
        ValueError: `folder` is not a finished robustlab checkpoint folder.
    """
    meta_path = folder / META_FILE
    if not meta_path.is_file() or not (folder / MODEL_FILE).is_file():
        raise ValueError(f"{folder} is not a robustlab checkpoint folder ({META_FILE} and {MODEL_FILE})")
    meta = json.loads(meta_path.read_text())
    spec, history = meta["spec"], meta.get("history") or []
    prefix = f"imports/{uuid.uuid4().hex}/checkpoint"
    store.upload_folder(folder, prefix)
    if "facts" in meta:  # a diffusion model
        fields = {
            "kind": "diffusion",
            "architecture": "unet2d",
            "activation": "silu",
            "recipe": {**spec, "facts": meta["facts"]},
        }
        metrics = {}
    else:
        model = spec["model"]
        fields = {
            "kind": "classifier",
            "architecture": model["arch"],
            "activation": ActivationSpec.model_validate(model["activation"]).label,
            "recipe": {k: spec[k] for k in ("method", "attack", "epochs", "optim", "seed", "model") if k in spec},
        }
        metrics = {k: v for k, v in (history[-1] if history else {}).items() if k.endswith("_acc")}
    name = name or f"{spec['data']['name']}-{folder.name}"
    return register_model(
        session,
        job_id=None,
        dataset=spec["data"]["name"],
        checkpoint_uri=prefix,
        name=name,
        summary={**metrics, "history": history, "imported_from": str(folder), **(summary or {})},
        **fields,
    )
