"""A follower rank's error, left for the supervisor. In a multi-process (`gpus`) job only rank 0
writes the job's end; a rank beyond it that fails alone (a bad image in its share, its GPU out of
memory) writes `Type: message` into the job's work folder before it exits, and the supervisor
fails the job with that error instead of taking torchrun's non-zero exit for a crash to retry."""

from __future__ import annotations

from pathlib import Path

PREFIX = ".rank-error-"  # a dot: never uploaded with the checkpoint


def record(folder: Path, rank: int, error: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{PREFIX}{rank}").write_text(error)


def first(folder: Path) -> str | None:
    """`rank R: Type: message` of the lowest rank that left an error, or None."""
    found = sorted(folder.glob(f"{PREFIX}*"), key=lambda p: int(p.name[len(PREFIX) :] or 0))
    for path in found:
        try:
            return f"rank {path.name[len(PREFIX) :]}: {path.read_text().strip()}"
        except OSError:
            continue
    return None


def clear(folder: Path) -> None:
    for path in folder.glob(f"{PREFIX}*"):
        path.unlink(missing_ok=True)
