"""Uploaded images: bounded, validated and converted to a model's input, with PIL (no torch)."""

from __future__ import annotations

import io
import json
import warnings

from fastapi import HTTPException, UploadFile, status
from PIL import Image

from api.json_guard import json_depth

FORMATS = {"PNG", "JPEG", "WEBP", "BMP"}


def read_bounded(upload: UploadFile, max_bytes: int) -> bytes:
    data = upload.file.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, f"upload larger than {max_bytes} bytes")
    if not data:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "empty upload")
    return data


def to_model_input(data: bytes, *, channels: int, size: int, max_pixels: int) -> bytes:
    """Decode `data`, check it, convert to `channels` and `size`×`size`; PNG bytes back.

    Raises:
        HTTPException: 415 for a format other than PNG/JPEG/WebP/BMP, 413 for too many pixels,
            422 for a truncated or corrupt file.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            fmt = img.format
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as e:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, f"image has too many pixels: {e}") from e
    except Exception as e:  # PIL raises several types for unreadable bytes
        raise HTTPException(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, f"not an image in a supported format ({', '.join(sorted(FORMATS))})"
        ) from e
    if fmt not in FORMATS:
        raise HTTPException(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            f"image format {fmt} not supported; use {', '.join(sorted(FORMATS))}",
        )
    width, height = img.size
    if width * height > max_pixels:
        raise HTTPException(
            status.HTTP_413_CONTENT_TOO_LARGE,
            f"image is {width}×{height} = {width * height} pixels; the limit is {max_pixels}",
        )
    try:
        img.load()
        img = img.convert("L" if channels == 1 else "RGB").resize((size, size), Image.Resampling.BILINEAR)
    except Exception as e:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"image file is truncated or corrupt: {e}") from e
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


SAFETENSORS_DTYPES = {"F64", "F32", "F16", "BF16", "I64", "I32", "I16", "I8", "U8", "BOOL"}
MAX_HEADER_BYTES = 10 * 1024 * 1024
MAX_HEADER_DEPTH = 8  # {"name": {"dtype", "shape": [...], "data_offsets": [...]}}: 3 levels


def check_safetensors(data: bytes) -> int:
    """The number of tensors in a safetensors file, after checking its structure without loading
    it: an 8-byte little-endian header length, a JSON header naming each tensor's dtype, shape and
    byte range, and ranges that tile the data that follows. (The worker loads the tensors.)

    Raises:
        HTTPException: 422 naming what is wrong.
    """

    def bad(why: str) -> HTTPException:
        return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"weights: not a valid safetensors file ({why})")

    if len(data) < 8:
        raise bad("too short")
    size = int.from_bytes(data[:8], "little")
    if size > min(MAX_HEADER_BYTES, len(data) - 8):
        raise bad("header length out of range")
    if json_depth(data[8 : 8 + size], MAX_HEADER_DEPTH) > MAX_HEADER_DEPTH:
        raise bad(f"header nested deeper than {MAX_HEADER_DEPTH} levels")
    try:
        header = json.loads(data[8 : 8 + size])
    except (UnicodeDecodeError, ValueError) as e:
        raise bad("header is not JSON") from e
    if not isinstance(header, dict):
        raise bad("header is not an object")
    body, ranges = len(data) - 8 - size, []
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if not isinstance(info, dict) or info.get("dtype") not in SAFETENSORS_DTYPES:
            raise bad(f"{name}: unknown dtype")
        shape, offsets = info.get("shape"), info.get("data_offsets")
        if not (isinstance(shape, list) and all(isinstance(d, int) and d >= 0 for d in shape)):
            raise bad(f"{name}: bad shape")
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(isinstance(o, int) for o in offsets)):
            raise bad(f"{name}: bad data_offsets")
        if not 0 <= offsets[0] <= offsets[1] <= body:
            raise bad(f"{name}: data outside the file")
        ranges.append(offsets)
    if not ranges:
        raise bad("no tensors")
    ranges.sort()
    if (
        ranges[0][0] != 0
        or ranges[-1][1] != body
        or any(a[1] != b[0] for a, b in zip(ranges, ranges[1:], strict=False))
    ):
        raise bad("tensor byte ranges overlap or leave gaps")
    return len(ranges)
