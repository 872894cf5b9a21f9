"""The checkpoint folder's format, torch-free: its file names and the kind of model it holds.

A folder holds `model.safetensors` (weights), `train_state.safetensors` (optimizer tensors) and
`checkpoint.json` (spec, epoch, history, optimizer scalars, RNG state, and `kind`). Folders written
before `kind` existed still load: a diffusion checkpoint is the one that records its data `facts`.
A training folder also keeps the epoch before in `.prev/` while the next one is written (and
uploaded): a crash between the files of one checkpoint leaves a whole one to resume from.
"""

from __future__ import annotations

import json
from pathlib import Path

from core.contract.names import MODEL_KINDS, ModelKind

MODEL_FILE = "model.safetensors"
STATE_FILE = "train_state.safetensors"
META_FILE = "checkpoint.json"
PREVIOUS = ".prev"  # the subfolder holding the checkpoint before the current one


def checkpoint_kind(meta: dict) -> ModelKind:
    """`classifier` or `diffusion`, from a checkpoint's JSON.

    Raises:
        ValueError: the JSON names a kind robustlab does not know.
    """
    kind = meta.get("kind")
    if kind is None:  # written before the field existed
        return "diffusion" if "facts" in meta else "classifier"
    if kind not in MODEL_KINDS:
        raise ValueError(f"checkpoint kind {kind!r} is not one of {', '.join(MODEL_KINDS)}")
    return kind


def read_meta(folder: str | Path, expect: ModelKind | None = None) -> dict:
    """The JSON of the checkpoint in `folder`, checked to be a finished checkpoint of kind
    `expect` (any kind when None).

    Raises:
        FileNotFoundError: `folder` lacks the JSON or the weights.
        ValueError: the checkpoint holds another kind of model.
    """
    folder = Path(folder)
    for name in (META_FILE, MODEL_FILE):
        if not (folder / name).is_file():
            raise FileNotFoundError(f"{folder / name} not found: not a robustlab checkpoint folder")
    meta = json.loads((folder / META_FILE).read_text())
    kind = checkpoint_kind(meta)
    if expect is not None and kind != expect:
        raise ValueError(f"{folder} holds a {kind} checkpoint, not a {expect}")
    return meta
