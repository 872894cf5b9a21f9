"""Weights from elsewhere, mapped onto robustlab's names. A PyTorch file is read with
`torch.load(weights_only=True)` only: its unpickler builds tensors, plain containers and numbers,
and refuses every other global (a class, a function, a `__reduce__` gadget) before calling it.
Nothing here ever unpickles fully.

The layouts the field publishes, each handled:
- torchvision, TRADES: `torch.save(model.state_dict())`, the parameter names at the top;
- RobustBench and most training scripts: a dict wrapping them under `state_dict`,
  `model_state_dict` or `model` (beside the epoch, the optimizer, …);
- `module.` before every name (saved from `DataParallel` or DDP; RobustBench's loader also strips a
  `model.` prefix).
robustlab's `Classifier` holds the network as `net` (its `normalize` has no weights: the
normalisation is the spec's `mean` and `std`), so the names get `net.` in front.
"""

from __future__ import annotations

import io
import json
import pickle
import re
import struct
from collections.abc import Mapping
from pathlib import Path

import torch
from safetensors.torch import save_file

from core.contract.checkpoint import META_FILE, MODEL_FILE
from core.contract.names import WeightsFormat
from core.contract.specs import DataSpec, ModelSpec
from core.contract.weights_files import check_pytorch_file, weights_format
from core.models.bring_your_own import checked_classifier, shown, weights_from_bytes

WRAPPERS = ("state_dict", "model_state_dict", "model")  # where training scripts keep the weights
PREFIXES = ("module.", "model.")  # DataParallel's, and what RobustBench's loader strips too
NET = "net."  # robustlab's name for the network inside a Classifier
_GLOBAL = re.compile(r"GLOBAL ([\w.]+)")
# what torch.load raises for cut or corrupt bytes (found by mutating files: tests/core/test_state_dicts.py)
LOAD_ERRORS = (
    RuntimeError,
    EOFError,
    OSError,
    ValueError,
    KeyError,
    TypeError,
    IndexError,
    AssertionError,
    struct.error,
)


def read_pytorch_file(data: bytes) -> object:
    """What a `torch.save` file holds, read with `torch.load(weights_only=True)` on the CPU.

    Raises:
        ValueError: the file is not torch.save's, or it holds something other than tensors,
            containers and numbers (the message names the global it asked for).
    """
    check_pytorch_file(data)
    try:
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        found = _GLOBAL.search(str(e))
        what = f"it asks for {found.group(1)}" if found else "it is not a pickle torch.load reads"
        raise ValueError(
            f"weights: refused by torch.load(weights_only=True): {what}, which is not a tensor, a "
            "container or a number; save the state dict alone (torch.save(model.state_dict(), path))"
        ) from e
    except LOAD_ERRORS as e:
        why = (str(e).strip().splitlines() or [type(e).__name__])[0][:300]
        raise ValueError(f"weights: not a readable PyTorch file ({why})") from e


def state_dict_of(obj: object) -> dict[str, torch.Tensor]:
    """The state dict in what a PyTorch file held: the top level, or under one of `WRAPPERS`.

    Raises:
        ValueError: no mapping of names to tensors is found.
    """
    for _ in range(3):  # a wrapper inside a wrapper ({"model": {"state_dict": …}}) at most twice
        if not isinstance(obj, Mapping):
            break
        inner = next((obj[k] for k in WRAPPERS if isinstance(obj.get(k), Mapping)), None)
        if inner is None:
            break
        obj = inner
    if not isinstance(obj, Mapping) or not obj:
        raise ValueError(f"weights: the file holds a {type(obj).__name__}, not a state dict of names to tensors")
    bad = [shown(k) for k, v in obj.items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
    if bad:
        keys = ", ".join(map(shown, list(obj)[:8]))
        raise ValueError(
            f"weights: not a state dict: {', '.join(bad[:5])} {'is' if len(bad) == 1 else 'are'} not tensors "
            f"(top-level names: {keys}; the weights are looked for under {', '.join(WRAPPERS)})"
        )
    return dict(obj)


def robustlab_names(weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The names a `Classifier`'s state dict has: `module.` (and `model.`) prefixes that every name
    shares are dropped, and `net.` is put in front when no name has it yet (a network's state dict,
    not a classifier's)."""
    names = list(weights)
    changed = True
    while changed:
        changed = False
        for prefix in PREFIXES:
            if names and all(n.startswith(prefix) for n in names):
                names = [n.removeprefix(prefix) for n in names]
                changed = True
    if not any(n.startswith(NET) for n in names):  # the network's own names (a mix is left for the check to name)
        names = [NET + n for n in names]
    return dict(zip(names, weights.values(), strict=True))


def imported_weights(data: bytes, fmt: WeightsFormat) -> dict[str, torch.Tensor]:
    """The tensors of an uploaded weights file (safetensors, or a PyTorch state-dict file in any of
    the layouts above), named as a `Classifier`'s; `checked_classifier` loads them strictly.

    Raises:
        ValueError: the file cannot be read as `fmt`, or holds no state dict (the message says why).
    """
    raw = weights_from_bytes(data) if fmt == "safetensors" else state_dict_of(read_pytorch_file(data))
    return robustlab_names(raw)


def write_checkpoint_folder(data: bytes, spec: ModelSpec, dataset: DataSpec, folder: Path) -> Path:
    """A robustlab checkpoint folder (safetensors and JSON) in `folder` from an uploaded weights file,
    after the strict-load and finiteness checks; what `robustlab models import FILE` registers.

    Raises:
        ValueError: the file cannot be read, its weights do not fit `spec`, or a PyTorch file's
            spec does not state its normalisation (`mean`, `std`).
    """
    fmt = weights_format(data)
    if fmt == "pytorch" and (spec.mean is None or spec.std is None):
        raise ValueError("give the model's mean and std, the normalisation these weights expect (RobustBench: 0 and 1)")
    model = checked_classifier(spec, imported_weights(data, fmt))
    folder.mkdir(parents=True, exist_ok=True)
    save_file(model.state_dict(), folder / MODEL_FILE)
    meta = {
        "kind": "classifier",
        "uploaded": True,
        "spec": {"model": spec.model_dump(mode="json"), "data": dataset.model_dump(mode="json")},
    }
    (folder / META_FILE).write_text(json.dumps(meta, indent=1))
    return folder
