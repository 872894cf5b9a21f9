"""Class-per-subfolder image datasets (`root/<split>/<class>/*.png|jpg`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp"}
UNREADABLE = "not a readable image"
DECODE_ERRORS = (OSError, SyntaxError, ValueError, Image.DecompressionBombError)  # what PIL raises for a bad file


class UnreadableImage(ValueError):
    """An image file that does not decode (cut short, not an image, too big to open); the message
    starts with its path."""


CROP_SHARE = 0.875  # ImageNet's evaluation transform keeps the centre 224 of 256 (224 / 256)


def decode(path: Path, channels: int, size: int | None, crop: bool = False) -> np.ndarray:
    """The image at `path` as (H, W) or (H, W, 3) uint8: converted to `channels` (1: L, 3: RGB),
    resized to `size` when given and different; with `crop`, its shorter side resized to
    `size / CROP_SHARE` and its centre `size`² kept instead (ImageNet's resize and centre crop).

    Raises:
        UnreadableImage: the file does not decode.
    """
    try:
        with Image.open(path) as img:
            img = img.convert("L" if channels == 1 else "RGB")
            if crop and size is not None:
                return np.array(centre_crop(img, size), dtype=np.uint8)
            if size is not None and img.size != (size, size):
                img = img.resize((size, size), Image.Resampling.BILINEAR)
            return np.array(img, dtype=np.uint8)  # a writable copy
    except DECODE_ERRORS as e:
        raise UnreadableImage(f"{path}: {UNREADABLE} ({e})") from None


def centre_crop(img: Image.Image, size: int) -> Image.Image:
    """`img` with its shorter side resized to round(size / CROP_SHARE), then its centre size × size."""
    short = max(size, round(size / CROP_SHARE))
    scale = short / min(img.size)
    width, height = max(size, round(img.width * scale)), max(size, round(img.height * scale))
    img = img.resize((width, height), Image.Resampling.BILINEAR)
    left, top = (width - size) // 2, (height - size) // 2
    return img.crop((left, top, left + size, top + size))


def read_folder(
    folder: Path, *, channels: int | None = None, size: int | None = None, crop: bool = False
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Read every image under `folder/<class>/` into (N, C, H, W) uint8, labels and class names.

    Args:
        folder: folder with one sub-folder per class (sorted names give the label order).
        channels: 1 or 3; `None` takes the mode of the first image (L → 1, else 3).
        size: square side to resize to; `None` requires every image to share the first's size.
        crop: resize the shorter side and keep the centre `size`² instead of resizing whole.

    Raises:
        ValueError: no class folders, no images, or mixed sizes without `size`.
    """
    paths, labels, classes = list_folder(folder)
    images = []
    for path in paths:
        if channels is None:
            channels = first_image_shape(path)[0]
        arr = decode(path, channels, size, crop)
        if images and arr.shape != images[0].shape:
            raise ValueError(f"{path}: size {arr.shape} differs from {images[0].shape}; set size")
        images.append(arr)
    x = np.stack(images)
    x = x[:, None] if x.ndim == 3 else x.transpose(0, 3, 1, 2)
    return x, labels, classes


def list_folder(folder: Path) -> tuple[list[Path], np.ndarray, list[str]]:
    """The image files under `folder/<class>/` (nothing decoded), their labels and the class names.

    Raises:
        ValueError: no class folders or no images.
    """
    classes = sorted(p.name for p in folder.iterdir() if p.is_dir())
    if not classes:
        raise ValueError(f"{folder}: no class sub-folders")
    paths, labels = [], []
    for label, name in enumerate(classes):
        for path in sorted((folder / name).iterdir()):
            if path.suffix.lower() in IMAGE_SUFFIXES:
                paths.append(path)
                labels.append(label)
    if not paths:
        raise ValueError(f"{folder}: no images ({', '.join(sorted(IMAGE_SUFFIXES))})")
    return paths, np.asarray(labels, dtype=np.int64), classes


def first_image_shape(path: Path) -> tuple[int, int, int]:
    """(channels, height, width) of the image at `path`, as `read_folder` takes them (L → 1, else 3)."""
    try:
        with Image.open(path) as img:
            return (1 if img.mode in ("L", "1", "I", "I;16") else 3), img.size[1], img.size[0]
    except DECODE_ERRORS as e:
        raise UnreadableImage(f"{path}: {UNREADABLE} ({e})") from None
