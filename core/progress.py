"""The two hooks long work takes from its caller (the CLI, the worker): a progress reporter and a
stop check. Core never knows who is listening."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Progress:
    """One progress report.

    Attributes:
        fraction: share of the whole job done, in [0, 1].
        message: one line for a person.
        metrics: the metrics of a finished epoch (or other milestone), else empty.
        step: the epoch (or step) those metrics belong to, else None.
    """

    fraction: float
    message: str = ""
    metrics: dict[str, float] = field(default_factory=dict)
    step: int | None = None


ProgressFn = Callable[[Progress], None]
StopFn = Callable[[], bool]


def no_progress(_: Progress) -> None:
    """A reporter that discards reports."""


def never_stop() -> bool:
    """A stop check that never asks to stop."""
    return False
