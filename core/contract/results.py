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


class AttackStep(Result):
    """One attack of an ensemble: the points it broke and the robust accuracy after it."""

    attack: str
    robust_acc: float
    broken: int


class EpsPoint(Result):
    eps: float
    robust_acc: float


class Sanity(Result):
    """The checks reported with every evaluation (`core.evaluation.curve.sanity_checks`)."""

    eps0_equals_clean: bool
    monotone_in_eps: bool
    large_eps: float
    large_eps_acc: float
    large_eps_near_chance: bool


class ModelChecks(Result):
    """The gradient-masking checks (`core.evaluation.checks`)."""

    randomized: bool
    outputs_probabilities: bool
    zero_gradient_share: float
    black_box_share: float | None = Field(description="None when no black-box attack ran after a white-box one")


class Judging(Result):
    every_iteration: bool = Field(description="every point ran all its iterations (a randomized model)")
    judge_passes: int = Field(description="forward passes whose expected outcome judges a point")
    one_pass_counts: bool = Field(
        False, description="a point wrong in the first of its passes counts as wrong too (the reference's judgement)"
    )


class Evaluation(Result):
    """What `core.evaluation.evaluate` returns: clean and robust accuracy under a protocol, with the
    attacks' breakdown, the robustness curve, the sanity and masking checks and their warnings."""

    protocol: dict[str, Any]
    protocol_label: str
    images: int
    eps: float
    norm: str
    clean_acc: float
    robust_acc: float = Field(description="under the protocol at ε (a defense's: the lowest of its three ways)")
    breakdown: list[AttackStep]
    broken_by: list[str | None] = Field(description="per point: the attack that broke it, `clean`, or None")
    curve: list[EpsPoint]
    sanity: Sanity
    checks: ModelChecks
    warnings: list[str]
    judging: Judging
    min_norm: dict[str, Any] | None = Field(default=None, description="FMN's minimal-norm curve, when asked")
    robust_acc_by: str | None = Field(default=None, description="a defense's: the way that gave `robust_acc`")
    defense: dict[str, Any] | None = Field(default=None, description="a defense's: its purifier and three ways")
    seconds: float


class EvaluationJobResult(Evaluation):
    """An `attack_evaluation` job's result: the evaluation, its report and whether the model's
    summary took it (a private job's evaluation of a shared model does not)."""

    model_id: str
    report_artifact_id: str
    recorded_on_model: bool
    report_url: str | None = None
