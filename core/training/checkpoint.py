"""Checkpoints: `model.safetensors` (weights), `train_state.safetensors` (optimizer tensors, and
the run's other named weight sets, e.g. the weight average and the best epoch's weights, under
`<set>/<name>` keys) and `checkpoint.json` (kind, spec, epoch, metrics, optimizer scalars, RNG
state). No pickle. The file
names and the `kind` field are the contract's (`core.contract.checkpoint`).

Files are written to temporary names and renamed; the JSON goes last and records the SHA-256 of
both tensor files, so a torn write is detected instead of resumed from. Before the renames the
whole checkpoint they replace is linked into `.prev/`: a crash between two renames (or between two
uploads of the folder, which carry `.prev/` too) leaves files of two epochs, and the loader takes
the newest JSON whose recorded tensor files it finds in either place.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from core.contract.checkpoint import META_FILE, MODEL_FILE, PREVIOUS, STATE_FILE
from core.contract.names import MODEL_KINDS, ModelKind


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _optimizer_split(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """Optimizer state as (tensors for safetensors, everything else for JSON)."""
    sd = opt.state_dict()
    tensors, scalars = {}, {}
    for idx, state in sd["state"].items():
        for name, value in state.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{idx}.{name}"] = value.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(idx), {})[name] = value
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def _split_sets(tensors: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, dict[str, torch.Tensor]]]:
    """(optimizer tensors, {set: weights}) of a train-state file: weight sets are keyed `set/name`."""
    optimizer, sets = {}, {}
    for key, value in tensors.items():
        group, slash, name = key.partition("/")
        if slash:
            sets.setdefault(group, {})[name] = value
        else:
            optimizer[key] = value
    return optimizer, sets


def _optimizer_join(meta: dict, tensors: dict[str, torch.Tensor]) -> dict:
    state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        idx, name = key.split(".", 1)
        state.setdefault(int(idx), {})[name] = value
    for idx, scalars in meta["scalars"].items():
        state.setdefault(int(idx), {}).update(scalars)
    return {"state": state, "param_groups": meta["param_groups"]}


def rng_state() -> dict[str, str]:
    state = {"cpu": base64.b64encode(torch.get_rng_state().numpy().tobytes()).decode()}
    if torch.cuda.is_available():
        state["cuda"] = base64.b64encode(torch.cuda.get_rng_state().numpy().tobytes()).decode()
    return state


def set_rng_state(state: dict[str, str]) -> None:
    decode = lambda s: torch.frombuffer(bytearray(base64.b64decode(s)), dtype=torch.uint8)  # noqa: E731
    torch.set_rng_state(decode(state["cpu"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(decode(state["cuda"]))


def _stored(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().contiguous() for k, v in tensors.items()}


def save_checkpoint(
    folder: Path,
    model: nn.Module,
    opt: torch.optim.Optimizer,
    meta: dict,
    *,
    kind: ModelKind,
    weights: dict[str, torch.Tensor] | None = None,
    sets: dict[str, dict[str, torch.Tensor]] | None = None,
) -> None:
    """Write the three checkpoint files into `folder`, replacing the previous epoch's; `kind`
    (`classifier` or `diffusion`) goes into the JSON so that loaders need not guess.

    Args:
        weights: the model file's tensors, if not `model`'s own (a finished run's chosen weights).
        sets: further named weight sets ({set name: state dict}) kept in the train-state file,
            under the same torn-write guarantees (`restore_checkpoint` gives them back).
    """
    if kind not in MODEL_KINDS:
        raise ValueError(f"kind must be one of {MODEL_KINDS}, got {kind!r}")
    if any("/" in group for group in sets or {}):
        raise ValueError(f"weight set names must not hold '/': {sorted(sets)}")
    folder.mkdir(parents=True, exist_ok=True)
    opt_tensors, opt_meta = _optimizer_split(opt)
    for group, tensors in (sets or {}).items():
        opt_tensors.update({f"{group}/{name}": v for name, v in _stored(tensors).items()})
    weights = _stored(model.state_dict() if weights is None else weights)
    for name, tensors in ((MODEL_FILE, weights), (STATE_FILE, opt_tensors)):
        save_file(tensors, folder / f".{name}.tmp")
    meta = {
        "kind": kind,
        **meta,
        "optimizer": opt_meta,
        "rng": rng_state(),
        "sha256": {n: _sha256(folder / f".{n}.tmp") for n in (MODEL_FILE, STATE_FILE)},
    }
    (folder / f".{META_FILE}.tmp").write_text(json.dumps(meta, indent=1))
    _keep_previous(folder)
    for name in (MODEL_FILE, STATE_FILE, META_FILE):
        os.replace(folder / f".{name}.tmp", folder / name)


def whole_checkpoint(folder: Path) -> dict[str, Path] | None:
    """The files of one whole checkpoint in `folder` (name → path): the current JSON, else the
    one in `.prev/`, with tensor files of the hashes it recorded, taken from either place; None
    when no JSON finds its tensor files."""
    places = [folder, folder / PREVIOUS]
    digests: dict[Path, str] = {}

    def digest(path: Path) -> str | None:
        if path not in digests and path.is_file():
            digests[path] = _sha256(path)
        return digests.get(path)

    for place in places:
        try:
            recorded = json.loads((place / META_FILE).read_text())["sha256"]
        except (OSError, ValueError, KeyError, TypeError):  # none there, cut short, or not a training checkpoint
            continue
        found = {name: next((p / name for p in places if digest(p / name) == h), None) for name, h in recorded.items()}
        if all(found.values()):
            return {META_FILE: place / META_FILE, **found}
    return None


def _keep_previous(folder: Path) -> None:
    """Make `.prev/` the whole checkpoint the next one replaces, a file at a time (tensor files,
    then the JSON), each linked (copied where links fail) under a temporary name and renamed: a
    crash at any point leaves that checkpoint whole, its files being where they were or in
    `.prev/` unchanged in content."""
    whole = whole_checkpoint(folder)
    if whole is None:
        return
    previous = folder / PREVIOUS
    previous.mkdir(exist_ok=True)
    for name in (MODEL_FILE, STATE_FILE, META_FILE):
        staged = previous / f".{name}.tmp"
        staged.unlink(missing_ok=True)
        try:
            os.link(whole[name], staged)
        except OSError:
            shutil.copy2(whole[name], staged)
        os.replace(staged, previous / name)


def drop_previous(folder: Path) -> None:
    """Remove `.prev/` once training has ended: the last checkpoint is whole, and a finished
    folder (uploaded, imported, registered) holds one epoch."""
    shutil.rmtree(folder / PREVIOUS, ignore_errors=True)


def restore_checkpoint(
    folder: Path, model: nn.Module, opt: torch.optim.Optimizer
) -> tuple[dict, dict[str, dict[str, torch.Tensor]]]:
    """Restore weights, optimizer and RNG state from the whole checkpoint in `folder`
    (`whole_checkpoint`); returns its JSON metadata and its named weight sets.

    Raises:
        ValueError: no JSON in `folder` finds the tensor files whose hashes it recorded.
    """
    whole = whole_checkpoint(folder)
    if whole is None:
        raise ValueError(f"{folder}: its tensor files do not match the hashes {META_FILE} recorded: torn checkpoint")
    meta = json.loads(whole[META_FILE].read_text())
    model.load_state_dict(load_file(whole[MODEL_FILE]))
    opt_tensors, sets = _split_sets(load_file(whole[STATE_FILE]))
    opt.load_state_dict(_optimizer_join(meta["optimizer"], opt_tensors))
    set_rng_state(meta["rng"])
    return meta, sets


def load_checkpoint(folder: Path, model: nn.Module, opt: torch.optim.Optimizer) -> dict:
    """`restore_checkpoint`'s metadata alone."""
    return restore_checkpoint(folder, model, opt)[0]


def read_weight_set(folder: Path, name: str) -> dict[str, torch.Tensor]:
    """The weight set `name` (`ema`, `best`, `last`) kept in the whole checkpoint of `folder`.

    Raises:
        ValueError: the checkpoint is torn, or keeps no set of that name.
    """
    whole = whole_checkpoint(Path(folder))
    if whole is None:
        raise ValueError(f"{folder}: no whole checkpoint")
    _, sets = _split_sets(load_file(whole[STATE_FILE]))
    if name not in sets:
        raise ValueError(f"{folder} keeps no {name!r} weights; it keeps: {', '.join(sorted(sets)) or 'none'}")
    return sets[name]


def has_checkpoint(folder: Path) -> bool:
    return (folder / META_FILE).is_file()


def _what_trains(spec) -> dict:
    """The spec without what only measures the finished model (a new protocol resumes fine)."""
    return spec.model_dump(mode="json", exclude={"protocol"})


def resume_state(
    folder: Path, model: nn.Module, opt: torch.optim.Optimizer, spec
) -> tuple[dict, dict[str, dict[str, torch.Tensor]]]:
    """The metadata and weight sets of the checkpoint in `folder`, restored into `model` and
    `opt`; ({"epoch": 0, "history": []}, {}) when there is none.

    Raises:
        ValueError: the checkpoint was made with a different spec (its folder belongs to another run).
    """
    if not has_checkpoint(folder):
        return {"epoch": 0, "history": []}, {}
    meta, sets = restore_checkpoint(folder, model, opt)
    if _what_trains(type(spec).model_validate(meta["spec"])) != _what_trains(spec):
        raise ValueError(f"{folder} holds a checkpoint of a different spec; use another folder")
    return meta, sets


def resume_from(folder: Path, model: nn.Module, opt: torch.optim.Optimizer, spec) -> tuple[int, list[dict]]:
    """(epochs done, metrics history) of the checkpoint in `folder` (see `resume_state`)."""
    meta, _ = resume_state(folder, model, opt, spec)
    return meta["epoch"], meta["history"]
