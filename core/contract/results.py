"""What the interactive jobs answer, as models: the runners build them, the API declares them as
its routes' response models, and the dashboard's test fake is checked against them. Torch-free.

Each `*_artifact_id(s)` field has a `*_url(s)` field beside it that the API fills in
(`api.waiting.with_urls`); a runner leaves it empty.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class Result(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Prediction(Result):
    prediction: int
    probabilities: list[float]


class ImageAttackResult(Result):
    """One image attacked: the predictions before and after and the perturbation's size."""

    model_id: str
    label: int = Field(description="the label attacked: the given one, else the clean prediction")
    attack: dict[str, Any] = Field(description="the AttackSpec that ran")
    clean: Prediction
    adversarial: Prediction
    linf: float
    l2: float
    input_artifact_id: str | None = Field(description="the uploaded image, converted to the model's input")
    test_index: int | None
    classes: list[str]
    adversarial_artifact_id: str
    perturbation_artifact_id: str
    input_url: str | None = None
    adversarial_url: str | None = None
    perturbation_url: str | None = None


class SamplesResult(Result):
    """Samples of a diffusion model: the grid, each image and the trajectory's frames."""

    model_id: str
    sampler: str
    steps: int
    n: int
    seconds: float
    grid_artifact_id: str
    sample_artifact_ids: list[str]
    trajectory_artifact_ids: list[str] = Field(description="empty unless the spec asked for the trajectory")
    grid_url: str | None = None
    sample_urls: list[str] | None = None
    trajectory_urls: list[str] | None = None


class ForwardResult(Result):
    """The forward process of one test image: x_t and the model's x̂_0 at each t."""

    model_id: str
    test_index: int
    label: int
    timesteps: list[int]
    alpha_bars: list[float]
    image_artifact_id: str
    x_t_artifact_ids: list[str]
    x0_pred_artifact_ids: list[str]
    image_url: str | None = None
    x_t_urls: list[str] | None = None
    x0_pred_urls: list[str] | None = None
