"""What robustlab knows about each named dataset without loading it: class names, where its files
are looked for, the published archives and their checksums, and how to get it. Torch-free."""

from __future__ import annotations

import os
from pathlib import Path

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
    "uploaded": "upload it again (POST /v1/datasets): its files are missing from the artifact store",
}


def class_names(name: str, num_classes: int = 10) -> list[str]:
    """The class names of a named dataset without loading it (numbers for the rest)."""
    return {"fashion-mnist": FASHION_CLASSES, "cifar10": CIFAR_CLASSES}.get(name, [str(i) for i in range(num_classes)])


def candidate_dirs(name: str, root: str | None) -> list[Path]:
    """Where a dataset is looked for, in order: `root`, `$ROBUSTLAB_DATA_DIR/<name>`, the system's."""
    dirs = [Path(root)] if root else []
    if env := os.environ.get("ROBUSTLAB_DATA_DIR"):
        dirs.append(Path(env) / name)
    return dirs + SYSTEM_DIRS.get(name, [])


def missing(name: str, looked: list[Path]) -> FileNotFoundError:
    """The error for a dataset found nowhere: where it was looked for and how to get it."""
    where = ", ".join(str(p) for p in looked) or "(no folder: set root or ROBUSTLAB_DATA_DIR)"
    return FileNotFoundError(f"dataset {name!r} not found; looked in: {where}. To get it: {HOW_TO_GET[name]}")
