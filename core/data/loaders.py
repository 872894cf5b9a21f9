"""`load_dataset(spec)`: a dataset by name, from its files (IDX, CIFAR-10 batches, class folders) or
scikit-learn's bundled digits, with its subsets drawn by a fixed seed.

Files are looked up in `spec.root`, then `$ROBUSTLAB_DATA_DIR/<name>`, then (Fashion-MNIST)
`/usr/share/datasets/fashion-mnist` from Debian's `dataset-fashion-mnist`.
"""

from __future__ import annotations

import json
import tarfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from safetensors.numpy import load_file

from core.contract.datasets import DATASET_INFO
from core.contract.names import DatasetName
from core.contract.specs import DataSpec
from core.data import catalogue, cifar
from core.data.dataset import Dataset, subset, to_tensors
from core.data.download import fetch
from core.data.folder import first_image_shape, list_folder, read_folder
from core.data.idx import find_idx, read_idx
from core.data.lazy import FolderImages, ShardImages, too_big

UPLOADED_ARRAYS, UPLOADED_META = "dataset.safetensors", "dataset.json"  # an uploaded dataset's files


def load_dataset(spec: DataSpec, *, download: bool = False, url: str | None = None) -> Dataset:
    """Load the dataset `spec.name` and draw its subsets.

    Args:
        spec: which dataset and subsets.
        download: fetch missing files (MNIST, Fashion-MNIST, CIFAR-10) into the first candidate
            folder, verifying their MD5. Default False: nothing is downloaded unless asked.
        url: base URL (IDX) or archive URL (CIFAR-10) to download from; default the publisher's.

    Raises:
        FileNotFoundError: the dataset is not in any candidate folder; says where it looked and
            how to get it.
    """
    ds = LOADERS[spec.name](spec, download=download, url=url)
    return Dataset(
        name=spec.name,
        x_train=subset(ds.x_train, spec.train_subset, spec.seed),
        y_train=subset(ds.y_train, spec.train_subset, spec.seed),
        x_test=subset(ds.x_test, spec.test_subset, spec.seed + 1),
        y_test=subset(ds.y_test, spec.test_subset, spec.seed + 1),
        classes=ds.classes,
    )


def load_idx(spec: DataSpec, *, download: bool, url: str | None) -> Dataset:
    """MNIST or Fashion-MNIST from the four IDX files (raw or .gz)."""
    dirs = catalogue.candidate_dirs(spec.name, spec.root)
    stems = sum(catalogue.IDX_STEMS.values(), ())
    folder = next((d for d in dirs if all(find_idx(d, s) for s in stems)), None)
    if folder is None and download:
        folder = dirs[0] if dirs else Path("data") / spec.name
        base = url or DATASET_INFO[spec.name].url
        for fname, md5 in DATASET_INFO[spec.name].checksums.items():
            fetch(base.rstrip("/") + "/" + fname, folder / fname, md5=md5)
    if folder is None:
        raise catalogue.missing(spec.name, dirs)
    arrays = {train: [read_idx(find_idx(folder, s)) for s in catalogue.IDX_STEMS[train]] for train in (True, False)}
    classes = catalogue.class_names(spec.name)
    return Dataset(spec.name, *to_tensors(*arrays[True]), *to_tensors(*arrays[False]), classes)


def load_cifar10(spec: DataSpec, *, download: bool, url: str | None) -> Dataset:
    """CIFAR-10 from the python batches (read without pickle)."""
    dirs = catalogue.candidate_dirs(spec.name, spec.root)
    folder = next((d for d in dirs if (d / "cifar-10-batches-py" / "test_batch").is_file()), None)
    if folder is None and download:
        folder = dirs[0] if dirs else Path("data") / spec.name
        info = DATASET_INFO["cifar10"]
        name = "cifar-10-python.tar.gz"
        archive = fetch(url or info.url, folder / name, md5=info.checksums[name])
        with tarfile.open(archive) as tar:
            tar.extractall(folder, filter="data")
    if folder is None:
        raise catalogue.missing(spec.name, dirs)
    batches = folder / "cifar-10-batches-py"
    train, test = cifar.read_split(batches, train=True), cifar.read_split(batches, train=False)
    return Dataset(spec.name, *to_tensors(*train), *to_tensors(*test), catalogue.class_names("cifar10"))


def load_digits(spec: DataSpec, *, download: bool, url: str | None) -> Dataset:
    """scikit-learn's bundled 8×8 digits, one fixed split: 1,500 train / 297 test."""
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    x = (bunch.images / 16.0 * 255.0).round().astype(np.uint8)  # 0..16 → 0..255, 8×8
    y = bunch.target.astype(np.int64)
    order = np.random.default_rng(1234).permutation(len(x))
    tr, te = order[:1500], order[1500:]
    return Dataset("digits", *to_tensors(x[tr], y[tr]), *to_tensors(x[te], y[te]), [str(i) for i in range(10)])


def load_folder(spec: DataSpec, *, download: bool, url: str | None) -> Dataset:
    """Images in one sub-folder per class under `root/train` and `root/test` (with `center_crop`,
    each resized on its shorter side and centre-cropped to that square, as ImageNet is)."""
    if not spec.root:
        raise ValueError("dataset 'folder' needs root (a folder with train/ and test/ inside)")
    root = Path(spec.root)
    if not (root / "train").is_dir() or not (root / "test").is_dir():
        raise catalogue.missing("folder", [root / "train", root / "test"])
    paths, labels, classes = list_folder(root / "train")
    channels, height, side = first_image_shape(paths[0])
    crop = spec.center_crop is not None
    if crop:
        height = side = spec.center_crop
    if spec.stream or (spec.stream is None and too_big(len(paths), (channels, height, side))):
        if height != side:
            raise ValueError(f"{paths[0]}: {side}×{height} is not square; a streamed folder's images must be")
        test_paths, test_labels, test_classes = list_folder(root / "test")
        if test_classes != classes:
            raise ValueError(f"{root}: test classes {test_classes} differ from train classes {classes}")
        train = FolderImages(paths, channels, side, crop), torch.from_numpy(labels)
        test = FolderImages(test_paths, channels, side, crop), torch.from_numpy(test_labels)
        return Dataset("folder", *train, *test, classes)
    x_tr, y_tr, classes = read_folder(root / "train", size=spec.center_crop, crop=crop)
    x_te, y_te, test_classes = read_folder(root / "test", channels=x_tr.shape[1], size=x_tr.shape[-1], crop=crop)
    if test_classes != classes:
        raise ValueError(f"{root}: test classes {test_classes} differ from train classes {classes}")
    return Dataset("folder", *to_tensors(x_tr, y_tr), *to_tensors(x_te, y_te), classes)


def dataset_files_present(root: Path) -> bool:
    """Whether a catalogue dataset's folder holds its `dataset.json` and every file it lists."""
    meta = root / UPLOADED_META
    if not meta.is_file():
        return False
    files = json.loads(meta.read_text()).get("files", [UPLOADED_ARRAYS])
    return all((root / Path(name).name).is_file() for name in files)


def load_uploaded(spec: DataSpec, *, download: bool, url: str | None) -> Dataset:
    """A dataset of the catalogue (uploaded or generated), as the job layer fetched it into `root`:
    `dataset.json` (class names, and `files`: the arrays' files, default `dataset.safetensors`)
    and the safetensors files, whose `x_train`/`y_train` and `x_test`/`y_test` are joined in order."""
    if not spec.root:
        raise ValueError("a dataset of the catalogue is read from the folder the job layer fetched it to (root)")
    root = Path(spec.root)
    if not (root / UPLOADED_META).is_file():
        raise catalogue.missing("uploaded", [root])
    meta = json.loads((root / UPLOADED_META).read_text())
    files = meta.get("files", [UPLOADED_ARRAYS])
    for name in files:
        if Path(name).name != name or not (root / name).is_file():
            raise catalogue.missing("uploaded", [root / Path(name).name])
    if spec.stream is not False and (streamed := _streamed_uploaded(root, files, spec.stream)) is not None:
        return Dataset("uploaded", *streamed, meta["classes"])
    parts: dict[str, list[np.ndarray]] = {}
    for name in files:
        for key, array in load_file(root / name).items():
            parts.setdefault(key, []).append(array)
    arrays = {key: np.concatenate(chunks) for key, chunks in parts.items()}
    train = to_tensors(arrays["x_train"], arrays["y_train"])
    return Dataset("uploaded", *train, *to_tensors(arrays["x_test"], arrays["y_test"]), meta["classes"])


def _streamed_uploaded(root: Path, files: list[str], stream: bool | None) -> tuple | None:
    """(x_train, y_train, x_test, y_test) with the images left in the files (`ShardImages`) and the
    labels read alone; None when `stream` is None and the images fit in memory."""
    arrays: dict[str, list[tuple[Path, str]]] = {}
    for name in files:
        with safe_open(root / name, framework="np") as handle:
            for key in handle.keys():  # noqa: SIM118 (a safetensors handle, not a dict)
                arrays.setdefault(key, []).append((root / name, key))
    x_train = ShardImages([path for path, _ in arrays.get("x_train", [])], "x_train")
    if not stream and not too_big(len(x_train), x_train.shape[1:]):
        return None
    x_test = ShardImages([path for path, _ in arrays.get("x_test", [])], "x_test")
    labels = {}
    for key in ("y_train", "y_test"):
        parts = []
        for path, _ in arrays.get(key, []):
            with safe_open(path, framework="np") as handle:
                parts.append(handle.get_tensor(key))
        labels[key] = torch.from_numpy(np.concatenate(parts).astype(np.int64))
    return x_train, labels["y_train"], x_test, labels["y_test"]


# One loader per dataset name of the contract (a test checks that none is missing).
LOADERS: dict[DatasetName, Callable[..., Dataset]] = {
    "fashion-mnist": load_idx,
    "mnist": load_idx,
    "cifar10": load_cifar10,
    "digits": load_digits,
    "folder": load_folder,
    "uploaded": load_uploaded,
}
