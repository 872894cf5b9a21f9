"""Recently used models (classifiers and diffusion models), kept loaded in the worker (LRU)."""

from __future__ import annotations

import tempfile
from collections import OrderedDict
from pathlib import Path

from torch import nn

from core.contract.checkpoint import checkpoint_kind, read_meta
from core.store.artifacts import ArtifactStore


def load_any(folder: str | Path, *, device: str) -> nn.Module:
    """The model in a checkpoint folder, whichever kind its checkpoint.json names."""
    if checkpoint_kind(read_meta(folder)) == "diffusion":
        from core.diffusion.ddpm import load_diffusion  # diffusers is heavy: only when needed

        return load_diffusion(folder, device=device)
    from core.models import load_model

    return load_model(folder, device=device, channels_last=True)  # faster convolutions, CPU and GPU alike


class ModelCache:
    def __init__(self, size: int):
        self.size = size
        self._models: OrderedDict[str, nn.Module] = OrderedDict()

    def get(self, model_id: str, checkpoint_uri: str, store: ArtifactStore, device: str) -> nn.Module:
        """The model `model_id`, loaded from the artifact store on first use."""
        if model_id in self._models:
            self._models.move_to_end(model_id)
            return self._models[model_id]
        with tempfile.TemporaryDirectory() as tmp:
            if not store.download_folder(checkpoint_uri, Path(tmp)):
                raise ValueError(f"checkpoint of model {model_id} is missing from the artifact store")
            model = load_any(tmp, device=device)
        self._models[model_id] = model
        while len(self._models) > self.size:
            self._models.popitem(last=False)
        return model
