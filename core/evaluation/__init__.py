"""Evaluation of classifiers: predictions, attacks in order with a per-point record, robustness
curves with sanity checks, the checks for gradient masking, and `evaluate` under a protocol."""

from core.evaluation.basics import accuracy, predict
from core.evaluation.curve import robustness_curve, sanity_checks
from core.evaluation.in_order import attack_in_order, robust_mask
from core.evaluation.protocol import evaluate

__all__ = ["accuracy", "attack_in_order", "evaluate", "predict", "robust_mask", "robustness_curve", "sanity_checks"]
