"""Download with checksum verification, for machines that have a network.

Nothing downloads unless asked (`download=True`): robustlab never fetches data at run time
on its own.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
import urllib.request
from pathlib import Path

log = logging.getLogger(__name__)


def file_digest(path: Path, algorithm: str) -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def fetch(url: str, dest: Path, *, md5: str | None = None, sha256: str | None = None) -> Path:
    """Download `url` to `dest` atomically, verifying its checksum; reuse a verified `dest`.

    Raises:
        ValueError: the downloaded bytes do not match the checksum (nothing is left at `dest`).
        OSError: the download failed.
    """
    expected = [(a, d) for a, d in (("md5", md5), ("sha256", sha256)) if d]
    if dest.is_file() and all(file_digest(dest, a) == d for a, d in expected):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    log.info("downloading %s", url)
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".part-")
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=60) as resp:
            shutil.copyfileobj(resp, out)
        for algorithm, digest in expected:
            got = file_digest(Path(tmp), algorithm)
            if got != digest:
                raise ValueError(f"{url}: {algorithm} {got} does not match expected {digest}")
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return dest
