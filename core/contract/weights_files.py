"""Which format an uploaded weights file is in, and the structure of a PyTorch file checked without
unpickling anything. Torch-free: the API refuses a malformed file before a worker sees it; the
worker then reads the tensors with `torch.load(weights_only=True)` (core/models/state_dicts.py).

`torch.save` writes a zip archive, its records stored uncompressed, with one `<name>/data.pkl`
(the pickled structure) beside the tensors' bytes (PyTorch ≥ 1.6), or, in its legacy format,
a protocol-2 pickle that opens with torch's magic number (TRADES' and older RobustBench files).
Anything else is taken for safetensors and checked as such.
"""

from __future__ import annotations

import io
import struct
import zipfile

from core.contract.legacy_torch import check_legacy_file
from core.contract.names import WeightsFormat

ZIP_MAGIC = b"PK\x03\x04"
# pickle protocol 2 (\x80\x02), LONG1 of 10 bytes (\x8a\x0a): torch's magic number 0x1950a86a20f9469cfc6c
LEGACY_MAGIC = b"\x80\x02\x8a\x0a" + (0x1950A86A20F9469CFC6C).to_bytes(10, "little")


def weights_format(data: bytes) -> WeightsFormat:
    """`pytorch` for what opens like a file `torch.save` wrote, else `safetensors`."""
    return "pytorch" if data.startswith((ZIP_MAGIC, LEGACY_MAGIC)) else "safetensors"


def check_pytorch_file(data: bytes) -> None:
    """The bytes have `torch.save`'s structure: its legacy format with every storage's bytes in the
    file (core/contract/legacy_torch.py), or a zip archive with one
    `<name>/data.pkl` and every record stored uncompressed, within the file's size (so nothing
    inflates when read).

    Raises:
        ValueError: naming what is wrong.
    """
    if data.startswith(LEGACY_MAGIC):
        check_legacy_file(data)
        return
    if not data.startswith(ZIP_MAGIC):
        raise ValueError("weights: not a PyTorch file (neither torch.save's zip archive nor its legacy format)")
    try:
        infos = zipfile.ZipFile(io.BytesIO(data)).infolist()
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, NotImplementedError, struct.error) as e:
        raise ValueError(f"weights: not a PyTorch file (a broken zip archive: {e})") from e
    pickles = [i.filename for i in infos if i.filename.count("/") == 1 and i.filename.endswith("/data.pkl")]
    if len(pickles) != 1:
        raise ValueError(
            f"weights: a zip archive, but not one torch.save wrote (it holds {len(pickles)} <name>/data.pkl, not 1)"
        )
    compressed = [i.filename for i in infos if i.compress_type != zipfile.ZIP_STORED]
    if compressed:
        raise ValueError(f"weights: torch.save stores its records uncompressed, but {compressed[0]} is compressed")
    if sum(i.file_size for i in infos) > len(data):
        raise ValueError("weights: the zip archive declares more bytes than the file holds")
