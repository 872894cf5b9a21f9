"""A classifier a researcher brings: weights for an architecture robustlab knows (a `ModelSpec`; no
code), as safetensors or a PyTorch state dict (read without unpickling: core/models/state_dicts.py).
Checked before it joins the registry: the weights load strictly (every name and shape), are
finite, and the model runs on the dataset's images; its clean accuracy on the test split is
measured. Every failure is a `ValueError` naming what is wrong."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load as load_safetensors

from core.contract.checkpoint import MODEL_FILE, read_meta
from core.contract.specs import DataSpec, ModelSpec
from core.data import Dataset
from core.evaluation import predict
from core.models import Classifier, build_model

CLEAN_IMAGES = 10_000  # test images the clean accuracy of an upload is measured on (at most)
FLOAT_TYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)  # what uploaded weights may be


def shown(name: object, chars: int = 80) -> str:
    """An uploaded name as a message quotes it: as it is when short and printable, else its repr,
    cut (a name is the uploader's: it may hold a NUL, a newline or a million characters)."""
    text = str(name)
    if len(text) <= chars and text.isprintable():
        return text
    return repr(text[:chars]) + ("…" if len(text) > chars else "")


def _listed(names: list, most: int = 10) -> str:
    more = f" and {len(names) - most} more" if len(names) > most else ""
    return ", ".join(shown(n) for n in names[:most]) + more


def weights_from_bytes(data: bytes) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file.

    Raises:
        ValueError: the bytes are not a valid safetensors file.
    """
    try:
        return load_safetensors(data)
    except (SafetensorError, ValueError, OSError) as e:
        raise ValueError(f"weights: not a valid safetensors file ({e})") from e


def checked_classifier(spec: ModelSpec, weights: dict[str, torch.Tensor]) -> Classifier:
    """`spec`'s architecture with `weights` loaded strictly, in eval mode.

    Raises:
        ValueError: names missing or unexpected, a shape or dtype that does not fit, or a tensor
            with NaN or infinite values; the message lists them.
    """
    model = build_model(spec)
    expected = model.state_dict()
    counts = [k for k in expected if k.endswith(".num_batches_tracked")]
    if counts and not any(k in weights for k in counts):
        # saved before PyTorch 0.4.1 counted batch-norm batches: torch's own strict load fills 0 in
        weights = {**weights, **{k: torch.zeros((), dtype=torch.long) for k in counts}}
    missing = sorted(set(expected) - set(weights))
    unexpected = sorted(set(weights) - set(expected))
    _check_tensor_kinds(weights, expected)
    wrong = [
        f"{k}: {tuple(weights[k].shape)} for {tuple(v.shape)}"
        for k, v in expected.items()
        if k in weights and weights[k].shape != v.shape
    ]
    problems = []
    if missing:
        problems.append(f"missing {_listed(missing)}")
    if unexpected:
        problems.append(f"unexpected {_listed(unexpected)}")
    if wrong:
        problems.append(f"wrong shape {'; '.join(wrong[:10])}")
    if problems:
        shape = ", ".join(
            f"{field} {getattr(spec, field)}"
            for field in ("width", "depth", "widen_factor", "stem", "sub_block1")
            if getattr(spec, field) not in (None, False)
        )
        raise ValueError(
            f"weights do not fit {spec.arch} ({shape}, {spec.in_channels} channels, "
            f"{spec.num_classes} classes): " + " · ".join(problems)
        )
    cast = {k: v.to(expected[k].dtype) for k, v in weights.items()}
    for name, tensor in cast.items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            too_big = weights[name].is_floating_point() and torch.isfinite(weights[name]).all()
            why = f"values beyond the range of {tensor.dtype}" if too_big else "NaN or infinite values"
            raise ValueError(f"weights: {name} holds {why}")
    model.load_state_dict(cast, strict=True)
    return model.eval()


def _check_tensor_kinds(weights: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> None:
    """Every uploaded tensor is a plain (strided) CPU tensor, and one of `FLOAT_TYPES` where the
    network's is floating-point.

    Raises:
        ValueError: naming the first tensor that is not.
    """
    for name, tensor in weights.items():
        if tensor.layout != torch.strided or tensor.device.type != "cpu":
            raise ValueError(f"weights: {shown(name)} is a {tensor.layout} tensor on {tensor.device}, not a plain one")
        want = expected.get(name)
        if want is None:
            continue
        if want.is_floating_point() and tensor.dtype not in FLOAT_TYPES:
            raise ValueError(
                f"weights: {name} is {tensor.dtype}; a floating-point tensor "
                f"({', '.join(str(t).removeprefix('torch.') for t in FLOAT_TYPES)}) is needed"
            )


def check_fits_dataset(spec: ModelSpec, ds: Dataset) -> None:
    """The model's input and output sizes match the dataset's.

    Raises:
        ValueError: naming the field that does not match.
    """
    for field, want in (
        ("in_channels", ds.in_channels),
        ("image_size", ds.image_size),
        ("num_classes", ds.num_classes),
    ):
        if getattr(spec, field) != want:
            raise ValueError(f"model.{field} is {getattr(spec, field)} but dataset {ds.name!r} has {want}")


def clean_accuracy(model: Classifier, ds: Dataset, images: int = CLEAN_IMAGES) -> tuple[float, int]:
    """(accuracy, images used) on the first `images` of the test split; finite outputs required.

    Raises:
        ValueError: the model's outputs are not finite (it cannot be evaluated).
    """
    x, y = ds.x_test[:images], ds.y_test[:images]
    with torch.no_grad():
        sample = model(x[:64])
    if not torch.isfinite(sample).all():
        raise ValueError("the model's outputs on test images are NaN or infinite")
    return (predict(model, x) == y).float().mean().item(), len(x)


def checked_checkpoint(folder: str | Path) -> dict:
    """An upload's checks on a classifier checkpoint folder (what `robustlab models import` runs):
    strict load, finite weights, fits its dataset; returns its clean accuracy on the test split.

    Raises:
        ValueError: a check failed (the message names it).
        FileNotFoundError: the folder is not a checkpoint, or its dataset is not on this machine.
    """
    from core.data import load_dataset

    meta = read_meta(folder, expect="classifier")
    spec = ModelSpec.model_validate(meta["spec"]["model"])
    model = checked_classifier(spec, weights_from_bytes((Path(folder) / MODEL_FILE).read_bytes()))
    data = meta["spec"].get("data") or {}
    ds = load_dataset(DataSpec(name=data.get("name", "fashion-mnist"), root=data.get("root")))
    check_fits_dataset(spec, ds)
    acc, images = clean_accuracy(model, ds)
    return {"clean_acc": acc, "clean_images": images}
