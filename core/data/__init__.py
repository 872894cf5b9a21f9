"""Datasets by name, as float tensors in [0, 1], NCHW, with int64 labels.

`load_dataset(spec)` returns the train and test splits (subsets drawn with a fixed seed).
Files are looked up in `spec.root`, then `$ROBUSTLAB_DATA_DIR/<name>`, then (Fashion-MNIST)
`/usr/share/datasets/fashion-mnist` from Debian's `dataset-fashion-mnist`.
"""

from __future__ import annotations

import os
import tarfile
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from core.data import cifar
from core.data.download import fetch
from core.data.folder import read_folder
from core.data.idx import find_idx, read_idx
from core.specs import DataSpec

FASHION_CLASSES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]
CIFAR_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
IDX_STEMS = {
    True: ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    False: ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
# Published archives and their MD5s (the ones torchvision verifies against).
IDX_MD5 = {
    "fashion-mnist": {
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    },
    "mnist": {
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    },
}
DEFAULT_URLS = {
    "fashion-mnist": "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    "mnist": "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "cifar10": "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
}
CIFAR_MD5 = "c58f30108f718f92721af3b95e74349a"
SYSTEM_DIRS = {"fashion-mnist": [Path("/usr/share/datasets/fashion-mnist")]}
HOW_TO_GET = {
    "fashion-mnist": "install Debian's package: apt-get install dataset-fashion-mnist, "
    "or pass download=True (robustlab ... --download) where a network exists",
    "mnist": "put the four IDX files (.gz or raw) there, or pass download=True where a network exists",
    "cifar10": "unpack cifar-10-python.tar.gz there (cifar-10-batches-py/), "
    "or pass download=True where a network exists",
    "folder": "make one sub-folder per class under <root>/train and <root>/test",
}


def class_names(name: str, num_classes: int = 10) -> list[str]:
    """The class names of a named dataset without loading it (numbers for the rest)."""
    return {"fashion-mnist": FASHION_CLASSES, "cifar10": CIFAR_CLASSES}.get(name, [str(i) for i in range(num_classes)])


@dataclass(frozen=True)
class Dataset:
    """Both splits of a dataset, ready for training: images in [0, 1], NCHW float32."""

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    classes: list[str] = field(default_factory=list)

    @property
    def in_channels(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def image_size(self) -> int:
        return int(self.x_train.shape[-1])

    @property
    def num_classes(self) -> int:
        return len(self.classes)


def candidate_dirs(name: str, root: str | None) -> list[Path]:
    """Where a dataset is looked for, in order."""
    dirs = [Path(root)] if root else []
    if env := os.environ.get("ROBUSTLAB_DATA_DIR"):
        dirs.append(Path(env) / name)
    return dirs + SYSTEM_DIRS.get(name, [])


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
    loader = _LOADERS[spec.name]
    ds = loader(spec, download=download, url=url)
    return Dataset(
        name=spec.name,
        x_train=_subset(ds.x_train, spec.train_subset, spec.seed),
        y_train=_subset(ds.y_train, spec.train_subset, spec.seed),
        x_test=_subset(ds.x_test, spec.test_subset, spec.seed + 1),
        y_test=_subset(ds.y_test, spec.test_subset, spec.seed + 1),
        classes=ds.classes,
    )


def test_image(name: str, index: int) -> tuple[torch.Tensor, int]:
    """Image `index` of a named dataset's test split (C×H×W in [0, 1]) and its label; the
    dataset stays loaded for the next call (the workers' attack lab and diffusion explorer)."""
    ds = _cached_dataset(name)
    if index >= len(ds.x_test):
        raise ValueError(f"test_index {index} out of range: {name} has {len(ds.x_test)} test images")
    return ds.x_test[index], int(ds.y_test[index])


@lru_cache(maxsize=2)
def _cached_dataset(name: str) -> Dataset:
    if name == "folder":
        raise ValueError("test images are available for named datasets, not 'folder'")
    return load_dataset(DataSpec(name=name))


def _subset(t: torch.Tensor, n: int | None, seed: int) -> torch.Tensor:
    if n is None or n >= len(t):
        return t
    idx = torch.randperm(len(t), generator=torch.Generator().manual_seed(seed))[:n]
    return t[idx.sort().values]


def _to_tensors(x: np.ndarray, y: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.from_numpy(np.array(x, dtype=np.uint8)).float().div_(255.0)  # copy: IDX buffers are read-only
    return (x.unsqueeze(1) if x.ndim == 3 else x), torch.from_numpy(np.asarray(y, dtype=np.int64))


def _missing(name: str, looked: list[Path]) -> FileNotFoundError:
    where = ", ".join(str(p) for p in looked) or "(no folder: set root or ROBUSTLAB_DATA_DIR)"
    return FileNotFoundError(f"dataset {name!r} not found; looked in: {where}. To get it: {HOW_TO_GET[name]}")


def _load_idx(spec: DataSpec, *, download: bool, url: str | None) -> Dataset:
    dirs = candidate_dirs(spec.name, spec.root)
    folder = next((d for d in dirs if all(find_idx(d, s) for s in sum(IDX_STEMS.values(), ()))), None)
    if folder is None and download:
        folder = dirs[0] if dirs else Path("data") / spec.name
        base = url or DEFAULT_URLS[spec.name]
        for fname, md5 in IDX_MD5[spec.name].items():
            fetch(base.rstrip("/") + "/" + fname, folder / fname, md5=md5)
    if folder is None:
        raise _missing(spec.name, dirs)
    arrays = {train: [read_idx(find_idx(folder, s)) for s in IDX_STEMS[train]] for train in (True, False)}
    classes = class_names(spec.name)
    return Dataset(spec.name, *_to_tensors(*arrays[True]), *_to_tensors(*arrays[False]), classes)


def _load_cifar10(spec: DataSpec, *, download: bool, url: str | None) -> Dataset:
    dirs = candidate_dirs(spec.name, spec.root)
    has = lambda d: (d / "cifar-10-batches-py" / "test_batch").is_file()  # noqa: E731
    folder = next((d for d in dirs if has(d)), None)
    if folder is None and download:
        folder = dirs[0] if dirs else Path("data") / spec.name
        archive = fetch(url or DEFAULT_URLS["cifar10"], folder / "cifar-10-python.tar.gz", md5=CIFAR_MD5)
        with tarfile.open(archive) as tar:
            tar.extractall(folder, filter="data")
    if folder is None:
        raise _missing(spec.name, dirs)
    batches = folder / "cifar-10-batches-py"
    train, test = cifar.read_split(batches, train=True), cifar.read_split(batches, train=False)
    return Dataset(spec.name, *_to_tensors(*train), *_to_tensors(*test), CIFAR_CLASSES)


def _load_digits(spec: DataSpec, *, download: bool, url: str | None) -> Dataset:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = (bunch.images / 16.0 * 255.0).round().astype(np.uint8)  # 0..16 → 0..255, 8×8
    y = bunch.target.astype(np.int64)
    order = np.random.default_rng(1234).permutation(len(x))  # one fixed split: 1,500 / 297
    tr, te = order[:1500], order[1500:]
    return Dataset("digits", *_to_tensors(x[tr], y[tr]), *_to_tensors(x[te], y[te]), [str(i) for i in range(10)])


def _load_folder(spec: DataSpec, *, download: bool, url: str | None) -> Dataset:
    if not spec.root:
        raise ValueError("dataset 'folder' needs root (a folder with train/ and test/ inside)")
    root = Path(spec.root)
    if not (root / "train").is_dir() or not (root / "test").is_dir():
        raise _missing("folder", [root / "train", root / "test"])
    x_tr, y_tr, classes = read_folder(root / "train")
    x_te, y_te, test_classes = read_folder(root / "test", channels=x_tr.shape[1], size=x_tr.shape[-1])
    if test_classes != classes:
        raise ValueError(f"{root}: test classes {test_classes} differ from train classes {classes}")
    return Dataset("folder", *_to_tensors(x_tr, y_tr), *_to_tensors(x_te, y_te), classes)


_LOADERS = {
    "fashion-mnist": _load_idx,
    "mnist": _load_idx,
    "cifar10": _load_cifar10,
    "digits": _load_digits,
    "folder": _load_folder,
}
