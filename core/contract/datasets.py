"""What robustlab knows about each dataset a spec may name, in one table: sizes, channel statistics,
class names, where its files are looked for, the published archives and how to get it. Torch-free;
the loaders (`core.data.loaders.LOADERS`) are the one other table keyed by name, because they are code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from core.contract.names import DatasetName


@dataclass(frozen=True)
class DatasetInfo:
    """One dataset's facts. For `folder` and `uploaded` (whose contents a spec does not fix) only
    `how_to_get` is known.

    Args:
        train, test: image counts; channels, side: image shape (None: known only once loaded).
        mean, std: per-channel statistics a trained model normalises with (None: 0.5, 0.5).
        classes: class names (None: the class numbers).
        how_to_get: said when its files are missing.
        url: where `download=True` fetches it; checksums: the published archives' MD5s by file name.
        system_dirs: folders searched after the caller's root and `$ROBUSTLAB_DATA_DIR`.
    """

    how_to_get: str
    train: int | None = None
    test: int | None = None
    channels: int | None = None
    side: int | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    classes: tuple[str, ...] | None = None
    url: str | None = None
    checksums: dict[str, str] = field(default_factory=dict)
    system_dirs: tuple[Path, ...] = ()

    def class_names(self, num_classes: int = 10) -> list[str]:
        return list(self.classes) if self.classes else [str(i) for i in range(num_classes)]


GET_ELSEWHERE = "or pass download=True (robustlab ... --download) where a network exists"

DATASET_INFO: dict[DatasetName, DatasetInfo] = {
    "fashion-mnist": DatasetInfo(
        train=60_000,
        test=10_000,
        channels=1,
        side=28,
        mean=(0.2860,),
        std=(0.3530,),
        classes=(
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
        ),
        url="http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        checksums={  # the ones torchvision verifies against
            "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
            "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
            "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
        },
        system_dirs=(Path("/usr/share/datasets/fashion-mnist"),),
        how_to_get=f"install Debian's package: apt-get install dataset-fashion-mnist, {GET_ELSEWHERE}",
    ),
    "mnist": DatasetInfo(
        train=60_000,
        test=10_000,
        channels=1,
        side=28,
        mean=(0.1307,),
        std=(0.3081,),
        url="https://ossci-datasets.s3.amazonaws.com/mnist/",
        checksums={
            "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
            "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
            "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
        },
        how_to_get="put the four IDX files (.gz or raw) there, or pass download=True where a network exists",
    ),
    "cifar10": DatasetInfo(
        train=50_000,
        test=10_000,
        channels=3,
        side=32,
        mean=(0.4914, 0.4822, 0.4465),
        std=(0.2470, 0.2435, 0.2616),
        classes=("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
        url="https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
        checksums={"cifar-10-python.tar.gz": "c58f30108f718f92721af3b95e74349a"},
        how_to_get="unpack cifar-10-python.tar.gz there (cifar-10-batches-py/), or pass download=True where a "
        "network exists",
    ),
    "digits": DatasetInfo(  # scikit-learn's 8×8 digits, bundled with scikit-learn
        train=1_500, test=297, channels=1, side=8, mean=(0.3,), std=(0.4,), how_to_get="install scikit-learn"
    ),
    "folder": DatasetInfo(how_to_get="make one sub-folder per class under <root>/train and <root>/test"),
    "uploaded": DatasetInfo(
        how_to_get="upload it again (POST /v1/datasets): its files are missing from the artifact store"
    ),
}


def dataset_info(name: str) -> DatasetInfo | None:
    return DATASET_INFO.get(name)  # type: ignore[call-overload]
