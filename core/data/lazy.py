"""Images read from disk when asked for, for datasets that do not fit in memory: the files of a
class-folder dataset, or the safetensors shards of a generated one. `LazyImages` stands where a
`Dataset` holds its image tensor: it has a length and a shape, and indexing it (an int, a slice,
a list or a tensor of rows) reads those images, as float tensors in [0, 1]. `view_of` draws a
subset without reading anything. Labels stay in memory (a few bytes per image).

`core.data.batches` reads a training epoch's batches through a DataLoader with worker processes,
so the reading overlaps the training step.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open

from core.data.folder import decode

STREAM_ABOVE_BYTES = 2 * 2**30  # a split whose float images would take more than this is read lazily


class LazyImages:
    """N images of shape (C, H, W) read on demand; `rows` maps this view's rows to the source's."""

    def __init__(self, count: int, shape: tuple[int, int, int], rows: torch.Tensor | None = None):
        self._count, self._shape = count, shape
        self.rows = torch.arange(count) if rows is None else rows

    def read(self, source_row: int) -> np.ndarray:
        """Image `source_row` of the source as uint8 (C, H, W)."""
        raise NotImplementedError

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (len(self.rows), *self._shape)

    def __len__(self) -> int:
        return len(self.rows)

    def view_of(self, rows: torch.Tensor) -> LazyImages:
        """The images at `rows` of this view, as a view (nothing is read)."""
        view = object.__new__(type(self))
        view.__dict__.update(self.__dict__)
        view.rows = self.rows[rows]
        return view

    def __getitem__(self, index: int | slice | Sequence[int] | torch.Tensor) -> torch.Tensor:
        """Images as float tensors in [0, 1]: (C, H, W) for one integer, (n, C, H, W) otherwise
        (a slice, a list or tensor of rows, a boolean mask), as a tensor's indexing gives."""
        return self.raw(index).float().div_(255.0)

    def raw(self, index: int | slice | Sequence[int] | torch.Tensor) -> torch.Tensor:
        """The same images as uint8 (a quarter of the bytes, for handing over between processes)."""
        if isinstance(index, (list, tuple)) and not index:
            index = torch.empty(0, dtype=torch.long)  # as_tensor would make an empty list float
        picked = self.rows[index if isinstance(index, slice) else torch.as_tensor(index)]
        if picked.ndim == 0:
            return torch.from_numpy(self.read(int(picked)))
        if len(picked) == 0:
            return torch.empty((0, *self._shape), dtype=torch.uint8)
        return torch.from_numpy(np.stack([self.read(int(r)) for r in picked]))


class FolderImages(LazyImages):
    """Image files, converted to `channels` (1: L, 3: RGB) and resized to `size` when they differ
    (with `crop`, shorter side resized and the centre `size`² kept: `core.data.folder.decode`)."""

    def __init__(self, paths: list[Path], channels: int, size: int, crop: bool = False):
        super().__init__(len(paths), (channels, size, size))
        self.paths, self.channels, self.size, self.crop = paths, channels, size, crop

    def read(self, source_row: int) -> np.ndarray:
        arr = decode(self.paths[source_row], self.channels, self.size, self.crop)
        return arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)


class ShardImages(LazyImages):
    """The `key` arrays (uint8, N×C×H×W) of safetensors files, joined in order; each file is opened
    once per process (a DataLoader worker opens its own)."""

    def __init__(self, files: list[Path], key: str):
        counts, shape = [], None
        for f in files:
            with safe_open(f, framework="np") as handle:
                dims = handle.get_slice(key).get_shape()
            counts.append(dims[0])
            shape = shape or tuple(dims[1:])
        if shape is None or len(shape) != 3:
            raise ValueError(f"{key} in {files[:1]}: expected N×C×H×W images")
        super().__init__(sum(counts), shape)
        self.files, self.key = files, key
        self.starts = np.cumsum([0, *counts])
        self._handles: dict[int, object] = {}

    def read(self, source_row: int) -> np.ndarray:
        k = int(np.searchsorted(self.starts, source_row, side="right")) - 1
        if k not in self._handles:
            self._handles[k] = safe_open(self.files[k], framework="np")
        return np.array(self._handles[k].get_slice(self.key)[source_row - int(self.starts[k])], dtype=np.uint8)

    def __getstate__(self) -> dict:  # a DataLoader worker opens the files itself
        return {**self.__dict__, "_handles": {}}


def too_big(count: int, shape: Sequence[int]) -> bool:
    """Whether `count` float32 images of `shape` would take more than `STREAM_ABOVE_BYTES`."""
    return count * int(np.prod(shape)) * 4 > STREAM_ABOVE_BYTES
