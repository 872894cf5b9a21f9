"""Bring a checkpoint folder trained outside the service (the command line, another machine)
into the registry, so the service can evaluate, attack and sample with it. Torch-free."""

from __future__ import annotations

import uuid
from pathlib import Path

from sqlalchemy.orm import Session

from core.contract.checkpoint import checkpoint_kind, read_meta
from core.contract.specs import ActivationSpec
from core.store.artifacts import ArtifactStore
from core.store.orm import RegisteredModel
from core.store.registry import register_model


def import_checkpoint(
    session: Session, store: ArtifactStore, folder: Path, *, name: str | None = None, summary: dict | None = None
) -> RegisteredModel:
    """Copy `folder` into the artifact store and register it as a classifier or a diffusion model
    (the kind its checkpoint.json names). `summary` is merged into the registry's summary.

    Raises:
        ValueError: `folder` is not a finished robustlab checkpoint folder.
    """
    try:
        meta = read_meta(folder)
    except FileNotFoundError as e:
        raise ValueError(str(e)) from e
    spec, history = meta["spec"], meta.get("history") or []
    prefix = f"imports/{uuid.uuid4().hex}/checkpoint"
    store.upload_folder(folder, prefix, previous=False)  # one epoch: the finished one
    if checkpoint_kind(meta) == "diffusion":
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
