"""Images in and out of the service: PNG bytes ↔ tensors in [0, 1], and the perturbation made
visible."""

from __future__ import annotations

import io

import numpy as np
import torch
from PIL import Image


def png_bytes(x: torch.Tensor) -> bytes:
    """A (C, H, W) tensor in [0, 1] as PNG (grey for C = 1, RGB for C = 3)."""
    arr = (x.detach().clamp(0, 1).cpu().numpy() * 255).round().astype(np.uint8)
    img = Image.fromarray(arr[0], "L") if arr.shape[0] == 1 else Image.fromarray(arr.transpose(1, 2, 0), "RGB")
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def tensor_from_png(data: bytes, channels: int) -> torch.Tensor:
    """PNG bytes (already at the model's size) → (C, H, W) float tensor in [0, 1]."""
    with Image.open(io.BytesIO(data)) as img:
        arr = np.asarray(img.convert("L" if channels == 1 else "RGB"), dtype=np.float32) / 255.0
    t = torch.from_numpy(arr.copy())
    return t.unsqueeze(0) if channels == 1 else t.permute(2, 0, 1)


def perturbation_png(delta: torch.Tensor, scale: int = 8) -> bytes:
    """δ mapped to [0, 1] around mid-grey (0.5 ± |δ|max), enlarged `scale`× for the eye."""
    peak = delta.abs().max().clamp_min(1e-12)
    shown = 0.5 + 0.5 * delta / peak
    big = torch.nn.functional.interpolate(shown[None], scale_factor=scale, mode="nearest")[0]
    return png_bytes(big)


def grid_png(images: torch.Tensor, nrow: int | None = None, pad: int = 2) -> bytes:
    """(N, C, H, W) images in [0, 1] tiled into one PNG, `nrow` per row (default ≈ √N)."""
    n, c, h, w = images.shape
    nrow = nrow or max(1, int(round(n**0.5)))
    rows = (n + nrow - 1) // nrow
    canvas = torch.ones(c, rows * (h + pad) + pad, nrow * (w + pad) + pad)
    for i in range(n):
        r, col = divmod(i, nrow)
        canvas[:, pad + r * (h + pad) : pad + r * (h + pad) + h, pad + col * (w + pad) : pad + col * (w + pad) + w] = (
            images[i]
        )
    return png_bytes(canvas)
