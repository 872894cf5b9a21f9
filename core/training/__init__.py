"""Training loops, checkpoints and schedules."""

from core.training.loop import TrainResult, train

__all__ = ["TrainResult", "train"]
