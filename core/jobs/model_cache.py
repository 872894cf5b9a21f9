"""Recently used models (classifiers and diffusion models), kept loaded in the worker (LRU)."""

from __future__ import annotations

import tempfile
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

from torch import nn

from core.models import load_model
from core.store.artifacts import ArtifactStore


class ModelCache:
    def __init__(self, size: int):
        self.size = size
        self._models: OrderedDict[str, nn.Module] = OrderedDict()

    def get(
        self,
        model_id: str,
        checkpoint_uri: str,
        store: ArtifactStore,
        device: str,
        loader: Callable[..., nn.Module] = load_model,
    ) -> nn.Module:
        """The model `model_id`, loaded from the artifact store on first use with `loader`."""
        if model_id in self._models:
            self._models.move_to_end(model_id)
            return self._models[model_id]
        with tempfile.TemporaryDirectory() as tmp:
            if not store.download_folder(checkpoint_uri, Path(tmp)):
                raise ValueError(f"checkpoint of model {model_id} is missing from the artifact store")
            model = loader(tmp, device=device)
        self._models[model_id] = model
        while len(self._models) > self.size:
            self._models.popitem(last=False)
        return model
