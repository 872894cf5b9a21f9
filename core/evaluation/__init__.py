"""Evaluation of classifiers: predictions, attacks in order with a per-point record, robustness
curves with sanity checks, the checks for gradient masking, `evaluate` under a protocol, and the
robustness curve of one minimum-norm run (`minimal_norm_curve`)."""

from core.evaluation.basics import accuracy, predict
from core.evaluation.curve import robustness_curve, sanity_checks
from core.evaluation.in_order import attack_in_order, robust_mask
from core.evaluation.min_norm import MinimalNormCurve, minimal_norm_curve
from core.evaluation.protocol import evaluate

__all__ = [
    "MinimalNormCurve",
    "accuracy",
    "attack_in_order",
    "evaluate",
    "minimal_norm_curve",
    "predict",
    "robust_mask",
    "robustness_curve",
    "sanity_checks",
]
