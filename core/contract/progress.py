"""The hooks long work takes from its caller (the command line, a worker, a notebook): a progress
reporter and a stop check, and the one way work says it stopped early (`Stopped`). Core never
knows who is listening. Torch-free."""

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


class Stopped(Exception):
    """Long work ended early because its stop check asked it to (a cancel, a lost lease). What it
    had checkpointed stays; running it again resumes from there."""


def stop_if_asked(should_stop: StopFn) -> None:
    """Raise `Stopped` when `should_stop()` says so: the one stop point of every long loop."""
    if should_stop():
        raise Stopped


def no_progress(_: Progress) -> None:
    """A reporter that discards reports."""


def never_stop() -> bool:
    """A stop check that never asks to stop."""
    return False


BAR_METRICS = ("clean_acc", "robust_acc", "train_loss")  # shown beside the bar when reported


def progress_bar(desc: str, leave: bool = True) -> ProgressFn:
    """A reporter drawing a tqdm bar (a widget in Jupyter, stderr in a terminal): percent done,
    elapsed and remaining time, the last message and the main metrics."""
    from tqdm.auto import tqdm

    bar = tqdm(
        total=100,
        desc=desc,
        leave=leave,
        unit="%",
        bar_format="{l_bar}{bar}| {n:.0f}% [{elapsed}<{remaining}]{postfix}",
    )

    def report(p: Progress) -> None:
        bar.n = round(100 * p.fraction, 1)
        shown = {k: f"{v:.3f}" for k, v in p.metrics.items() if k in BAR_METRICS}
        bar.set_postfix_str(", ".join([p.message[:50], *(f"{k}={v}" for k, v in shown.items())]), refresh=False)
        bar.refresh()
        if p.fraction >= 1:
            bar.close()

    return report
