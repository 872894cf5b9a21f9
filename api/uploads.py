"""Uploaded images: bounded, validated and converted to a model's input, with PIL (no torch)."""

from __future__ import annotations

import io
import warnings

from fastapi import HTTPException, UploadFile, status
from PIL import Image

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
