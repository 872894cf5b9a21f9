"""Image datasets uploaded as zip archives of class folders, read in memory (never extracted to
disk) and checked against an archive's own dangers before a pixel is decoded: path traversal,
links, zip bombs (a declared size or a compression ratio too large, or bytes beyond what a
member declared), too many files, files that are not images. Torch-free.

Layouts: `train/<class>/<image>` with `test/<class>/<image>`, or `<class>/<image>` alone (then a
fixed fifth of each class, by a seeded draw, is the test split); one enclosing folder is allowed
(but not one named `train` or `test`: `train/` without `test/` is refused, not read as classes).
At least two classes, the same in both splits. Members are stored or deflated only, and each is
inflated here, bounded by the size it declares: one that inflates to more is refused. Every
member's path is checked before the ignored names (`__MACOSX/`, `.DS_Store`) are skipped.
"""

from __future__ import annotations

import io
import stat
import struct
import warnings
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import PurePosixPath

import numpy as np
from PIL import Image

from core.data.folder import IMAGE_SUFFIXES

IGNORED = ("__MACOSX/", ".DS_Store", "Thumbs.db")
TEST_SHARE = 0.2  # of each class, when the archive has no test split


@dataclass(frozen=True)
class ArchiveLimits:
    """What one archive may hold."""

    max_files: int = 50_000
    max_bytes: int = 1 << 30  # uncompressed, all members together
    max_ratio: float = 200.0  # uncompressed / compressed, per member
    max_pixels: int = 4096 * 4096  # per image
    max_decoded: int = 1 << 30  # the decoded arrays, all images together (each at the first's size)


MIN_SIDE, MAX_SIDE = 8, 256  # the image sizes a model can take (ModelSpec.image_size)
FORMATS = ("PNG", "JPEG", "BMP", "WEBP")  # what PIL may decode a member as (the suffixes' formats)


@dataclass(frozen=True)
class Member:
    name: str  # the member's name in the archive
    split: str  # "train", "test", or "" (to be split)
    label: str  # the class folder


class ArchiveError(ValueError):
    """The archive is refused; the message says why (a client's 4xx)."""


def members(data: bytes, limits: ArchiveLimits = ArchiveLimits()) -> list[Member]:
    """The archive's images with their split and class, after every structural check.

    Raises:
        ArchiveError: not a zip, a dangerous or unexpected member, too many or too large files.
    """
    try:
        zf = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError) as e:
        raise ArchiveError("not a zip archive") from e
    everything = zf.infolist()
    files = [i for i in everything if not i.is_dir()]
    if len(files) > limits.max_files:
        raise ArchiveError(f"{len(files)} files; the limit is {limits.max_files}")
    if len(everything) > 2 * limits.max_files:
        raise ArchiveError(f"{len(everything)} entries with the folders; the limit is {2 * limits.max_files}")
    for info in everything:  # every entry, ignored names and folders too, before anything is skipped
        _check_entry(info)
    infos = [i for i in files if not any(m in i.filename for m in IGNORED)]
    total = 0
    for info in infos:
        name = info.filename
        path = PurePosixPath(name)
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise ArchiveError(f"{name!r}: compression method {info.compress_type}; only stored and deflated")
        total += info.file_size
        if total > limits.max_bytes:
            raise ArchiveError(f"more than {limits.max_bytes} bytes uncompressed")
        if info.file_size > limits.max_ratio * max(info.compress_size, 1):
            raise ArchiveError(
                f"{name!r}: compressed {info.file_size / max(info.compress_size, 1):.0f}:1 (a zip bomb?)"
            )
        if path.suffix.lower() not in IMAGE_SUFFIXES:
            raise ArchiveError(f"{name!r} is not an image ({', '.join(sorted(IMAGE_SUFFIXES))})")
    return _layout([i.filename for i in infos])


def _check_entry(info: zipfile.ZipInfo) -> None:
    """Refuse an entry whose path leaves the archive, a link, an encrypted entry."""
    name = info.filename
    path = PurePosixPath(name)
    parts = path.parts or ("",)
    if name.startswith("/") or "\\" in name or ".." in parts or ":" in parts[0] or "\x00" in name:
        raise ArchiveError(f"{name!r}: a path that leaves the archive")
    if stat.S_ISLNK(info.external_attr >> 16):
        raise ArchiveError(f"{name!r}: a link")
    if info.flag_bits & 0x1:
        raise ArchiveError(f"{name!r}: encrypted")


def _layout(names: list[str]) -> list[Member]:
    parts = [PurePosixPath(n).parts for n in names]
    if not parts:
        raise ArchiveError("no images")
    tops = {p[0] for p in parts}
    if len(tops) == 1 and tops.isdisjoint({"train", "test"}) and all(len(p) > 2 for p in parts):
        parts = [p[1:] for p in parts]  # one enclosing folder
    split_layout = {p[0] for p in parts} <= {"train", "test"} and all(len(p) == 3 for p in parts)
    out = []
    for name, p in zip(names, parts, strict=True):
        if split_layout:
            out.append(Member(name, p[0], p[1]))
        elif len(p) == 2:
            out.append(Member(name, "", p[0]))
        else:
            raise ArchiveError(f"{name!r}: expected <class>/<image> or train|test/<class>/<image>")
    if split_layout and {m.split for m in out} != {"train", "test"}:
        missing = ({"train", "test"} - {m.split for m in out}).pop()
        raise ArchiveError(f"no {missing}/ folder: give train/ and test/, or class folders alone")
    classes = sorted({m.label for m in out})
    if len(classes) < 2:
        raise ArchiveError(f"at least two class folders (found {len(classes)})")
    if split_layout and sorted({m.label for m in out if m.split == "test"}) != classes:
        raise ArchiveError("train and test have different class folders")
    return out


def read_archive(data: bytes, limits: ArchiveLimits = ArchiveLimits(), seed: int = 0) -> dict:
    """Decode every image of the archive (all converted to the first image's channels and side,
    at most `MAX_SIDE`: larger ones are scaled down), within `limits.max_decoded` bytes in all.

    Returns:
        `{"x_train", "y_train", "x_test", "y_test", "classes"}`: uint8 N×C×H×W, int64 labels.

    Raises:
        ArchiveError: as `members`, or an image that does not decode, is too large, or whose
            bytes differ from what the archive declared; train and test with different classes.
    """
    found = members(data, limits)
    zf = zipfile.ZipFile(io.BytesIO(data))
    classes = sorted({m.label for m in found})
    splits = {m.split for m in found}
    shape, images, labels, split_of = None, [], [], []
    for m in found:
        raw = inflate(data, zf.getinfo(m.name))
        arr, shape = _decode(m.name, raw, shape, limits.max_pixels)
        if len(images) == 0 and len(found) * arr.size > limits.max_decoded:
            side, _, channels = shape
            raise ArchiveError(
                f"{len(found)} images of {side}×{side}×{channels} (the first image's size, which all take) decode "
                f"to {len(found) * arr.size / 2**20:,.0f} MiB; the limit is {limits.max_decoded / 2**20:,.0f} MiB"
            )
        images.append(arr)
        labels.append(classes.index(m.label))
        split_of.append(m.split)
    x, y = np.stack(images), np.asarray(labels, dtype=np.int64)
    x = x[:, None] if x.ndim == 3 else x.transpose(0, 3, 1, 2)
    test = np.array([s == "test" for s in split_of])
    if "test" not in splits:
        test = _seeded_test_split(y, seed, classes)
    empty = [classes[c] for c in range(len(classes)) if not (y[~test] == c).any()]
    if empty:
        raise ArchiveError(f"class {empty[0]!r} has no training images (train/ lacks its folder)")
    return {"x_train": x[~test], "y_train": y[~test], "x_test": x[test], "y_test": y[test], "classes": classes}


LOCAL_HEADER = struct.Struct("<4s22xHH")  # signature, then the name's and the extra field's lengths


def inflate(data: bytes, info: zipfile.ZipInfo) -> bytes:
    """A member's bytes, inflated by hand from its local header's data, never beyond the size it
    declares: a member that inflates to more, to less, or to bytes whose CRC differs is refused
    (zipfile would stop quietly at the declared size).

    Raises:
        ArchiveError: as above, or a local header that is not where the directory says.
    """
    name, start = info.filename, info.header_offset
    if start + LOCAL_HEADER.size > len(data):
        raise ArchiveError(f"{name!r}: its local header lies outside the archive")
    signature, name_length, extra_length = LOCAL_HEADER.unpack_from(data, start)
    if signature != b"PK\x03\x04":
        raise ArchiveError(f"{name!r}: no local header where the archive's directory says")
    begin = start + LOCAL_HEADER.size + name_length + extra_length
    compressed = data[begin : begin + info.compress_size]
    if info.compress_type == zipfile.ZIP_STORED:
        raw = compressed
    else:
        inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        try:
            raw = inflater.decompress(compressed, info.file_size + 1)
        except zlib.error as e:
            raise ArchiveError(f"{name!r}: not valid deflate data") from e
        if len(raw) > info.file_size or inflater.unconsumed_tail:
            raise ArchiveError(f"{name!r}: inflates to more than the {info.file_size} bytes it declares")
    if len(raw) != info.file_size:
        raise ArchiveError(f"{name!r}: its bytes differ from the size the archive declares")
    if zlib.crc32(raw) != info.CRC:
        raise ArchiveError(f"{name!r}: its bytes do not match the archive's checksum")
    return raw


def _decode(name: str, raw: bytes, shape, max_pixels: int):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(raw), formats=FORMATS)
            if img.width * img.height > max_pixels:
                raise ArchiveError(f"{name!r}: {img.width}×{img.height} pixels; the limit is {max_pixels}")
            img.load()
    except ArchiveError:
        raise
    except Exception as e:  # PIL raises several types for bytes that are not an image
        raise ArchiveError(f"{name!r} is not a readable image") from e
    if shape is None:  # the first image sets the channels and the (square) side of all
        channels = 1 if img.mode in ("L", "1", "I", "I;16") else 3
        side = min(img.height, img.width, MAX_SIDE)
        if side < MIN_SIDE:
            raise ArchiveError(f"{name!r}: {img.width}×{img.height} pixels; images need a side of at least {MIN_SIDE}")
        shape = (side, side, channels)
    img = img.convert("L" if shape[2] == 1 else "RGB")
    if (img.height, img.width) != shape[:2]:
        img = img.resize((shape[1], shape[0]), Image.Resampling.BILINEAR)
    return np.asarray(img, dtype=np.uint8), shape


def _seeded_test_split(y: np.ndarray, seed: int, classes: list[str]) -> np.ndarray:
    """A fifth of each class (at least one image, and at least one left to train on) for testing."""
    test = np.zeros(len(y), dtype=bool)
    rng = np.random.default_rng(seed)
    for label in np.unique(y):
        idx = np.flatnonzero(y == label)
        if len(idx) < 2:
            raise ArchiveError(f"class {classes[label]!r} has one image: two are needed, one per split")
        test[rng.permutation(idx)[: max(1, round(TEST_SHARE * len(idx)))]] = True
    return test
