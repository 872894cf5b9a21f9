"""`evaluate`: the one evaluation of a finished classifier, under a named protocol. The command
line, the training job's summary, the evaluation job, the studies and the registry all call it,
and every robust accuracy it returns carries its protocol."""

from __future__ import annotations

import time

import torch
from torch import nn

from core.activations import true_gradients
from core.contract.attack_specs import ProtocolSpec
from core.contract.job_specs import MinNormSpec
from core.contract.progress import ProgressFn, StopFn, never_stop, no_progress
from core.contract.results import Evaluation
from core.evaluation.checks import black_box_share, check_warnings, model_checks
from core.evaluation.curve import robustness_curve
from core.evaluation.min_norm import compare_with_ensemble, minimal_norm_curve


def evaluate(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    protocol: ProtocolSpec,
    *,
    num_classes: int,
    eps_grid: list[float] | None = None,
    large_eps: float | None = None,
    min_norm: MinNormSpec | None = None,
    batch_size: int = 256,
    progress: ProgressFn = no_progress,
    should_stop: StopFn = never_stop,
) -> Evaluation:
    """Clean and robust accuracy of `model` on the first `protocol.images` of (x, y).

    The attacks run in the protocol's order, each on the points still standing, with the
    network's true gradients (a smooth-backward probe is a training device and is switched off),
    from a random state fixed by `protocol.seed` (the global one is left as it was).

    Args:
        eps_grid: more radii for a robustness curve under the same attacks.
        large_eps: the sanity check's radius (default 1 for L∞, twice the image's L2 diameter).
        min_norm: also FMN's minimal-norm curve on the same images (`min_norm` in the result:
            `MinimalNormCurve` and, in the protocol's norm, `gaps` against the ensemble at each
            radius, whose disagreements beyond noise are warnings); None for a randomized model,
            with a warning.

    Returns:
        `core.contract.results.Evaluation`. A randomized model (the checks find two passes
        differ), the `rand` protocol or EOT > 1 judges every point by its expected outcome and
        runs every point for all its iterations (`judging`, see `core.attacks.judge`).
        `breakdown` lists, per attack in order, the points it broke and the robust accuracy
        after it; `broken_by` gives per point the attack that broke it (`clean` if the model got
        it wrong unattacked, None if it stood).

    Raises:
        Stopped: `should_stop` asked.
        ValueError: DLR attacks on a model with too few classes.
    """
    if num_classes < protocol.least_classes:
        raise ValueError(
            f"the {protocol.ensemble} protocol's DLR losses need at least {protocol.least_classes} classes; "
            "use 'custom'"
        )
    t0 = time.perf_counter()
    x, y = x[: protocol.images], y[: protocol.images]
    attacks = protocol.attack_specs()
    devices = [torch.cuda.current_device()] if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices), true_gradients(model):
        torch.manual_seed(protocol.seed)
        checks = model_checks(model, x, y)
        randomized = checks["randomized"] or protocol.ensemble == "rand" or any(a.eot > 1 for a in attacks)
        result = robustness_curve(
            model,
            x,
            y,
            attacks,
            eps_grid or [protocol.eps],
            num_classes=num_classes,
            large_eps=large_eps,
            batch_size=batch_size,
            detail_eps=protocol.eps,
            progress=progress,
            should_stop=should_stop,
            randomized=randomized,
        )
        beside = minimal_norm_beside(
            model, (x, y), protocol, min_norm, result["curve"], randomized, batch_size=batch_size, stop=should_stop
        )
    detail = result["detail"]
    checks["black_box_share"] = black_box_share(attacks, detail["broken_by"])
    counts = next(p["broken_by"] for p in result["curve"] if p["eps"] == protocol.eps)
    breakdown = [{**after, "broken": counts[after["attack"]]} for after in detail["after"]]
    return Evaluation(
        protocol=protocol.model_dump(mode="json"),
        protocol_label=protocol.label,
        images=len(x),
        eps=protocol.eps,
        norm=protocol.norm,
        clean_acc=result["clean_acc"],
        robust_acc=next(p["robust_acc"] for p in result["curve"] if p["eps"] == protocol.eps),
        breakdown=breakdown,
        broken_by=detail["broken_by"],
        curve=[{"eps": p["eps"], "robust_acc": p["robust_acc"]} for p in result["curve"]],
        sanity=result["sanity"],
        checks=checks,
        warnings=result["warnings"] + check_warnings(checks) + beside[1],
        judging=result["judging"],
        min_norm=beside[0],
        seconds=time.perf_counter() - t0,
    )


def minimal_norm_beside(
    model: nn.Module,
    data: tuple[torch.Tensor, torch.Tensor],
    protocol: ProtocolSpec,
    spec: MinNormSpec | None,
    curve: list[dict],
    randomized: bool,
    *,
    batch_size: int,
    stop: StopFn,
) -> tuple[dict | None, list[str]]:
    """FMN's curve beside the ensemble's (see `evaluate`): `(its result or None, warnings)`."""
    if spec is None:
        return None, []
    if randomized:
        return None, ["no minimal-norm curve: the model is randomized, and FMN needs a deterministic one"]
    norm = spec.norm or protocol.norm
    grid = spec.eps_grid or [p["eps"] for p in curve]
    found = minimal_norm_curve(
        model, *data, norm=norm, eps_grid=grid, steps=spec.steps, batch_size=batch_size, should_stop=stop
    )
    gaps, warnings = compare_with_ensemble(curve, found) if norm == protocol.norm else ([], [])
    return {**found.model_dump(), "gaps": [g.model_dump() for g in gaps]}, warnings
