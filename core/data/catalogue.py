"""Finding a named dataset's files without loading them: where they are looked for, the IDX files'
names, and the error that says how to get them (the facts are `core.contract.datasets`). Torch-free."""

from __future__ import annotations

import os
from pathlib import Path

from core.contract.datasets import DATASET_INFO, dataset_info

IDX_STEMS = {
    True: ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    False: ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def class_names(name: str, num_classes: int = 10) -> list[str]:
    """The class names of a named dataset without loading it (numbers for the rest)."""
    info = dataset_info(name)
    return info.class_names(num_classes) if info else [str(i) for i in range(num_classes)]


def candidate_dirs(name: str, root: str | None) -> list[Path]:
    """Where a dataset is looked for, in order: `root`, `$ROBUSTLAB_DATA_DIR/<name>`, the system's."""
    dirs = [Path(root)] if root else []
    if env := os.environ.get("ROBUSTLAB_DATA_DIR"):
        dirs.append(Path(env) / name)
    return dirs + list(DATASET_INFO[name].system_dirs)


def missing(name: str, looked: list[Path]) -> FileNotFoundError:
    """The error for a dataset found nowhere: where it was looked for and how to get it."""
    where = ", ".join(str(p) for p in looked) or "(no folder: set root or ROBUSTLAB_DATA_DIR)"
    return FileNotFoundError(
        f"dataset {name!r} not found; looked in: {where}. To get it: {DATASET_INFO[name].how_to_get}"
    )
