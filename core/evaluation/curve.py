"""Robustness curves: clean accuracy and the robust accuracy at each radius under attacks run in
order (each on the points still standing), with the sanity checks that flag an unreliable attack.
"""

from __future__ import annotations

import logging

import torch
from torch import nn

from core.attacks.judge import JUDGE_PASSES, counted_wrong
from core.contract.attack_specs import AttackSpec
from core.contract.progress import Progress, ProgressFn, StopFn, never_stop, no_progress, stop_if_asked
from core.evaluation.basics import device_of
from core.evaluation.in_order import attack_in_order
from core.modes import eval_mode

log = logging.getLogger(__name__)
MONOTONE_TOLERANCE = 0.005  # accuracy may rise this much between ε's before it is flagged


def robustness_curve(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    attacks: list[AttackSpec],
    eps_grid: list[float],
    *,
    num_classes: int,
    large_eps: float | None = None,
    batch_size: int = 256,
    detail_eps: float | None = None,
    progress: ProgressFn = no_progress,
    should_stop: StopFn = never_stop,
    randomized: bool = False,
) -> dict:
    """Accuracy at each ε of `eps_grid` (0 added) under `attacks` in order, with checks.

    Args:
        attacks: run at every radius (their own `eps` is replaced), each on the survivors of the
            ones before.
        detail_eps: the radius whose per-point record and per-attack breakdown are returned.
        randomized: judge every point by its expected outcome and by one pass (clean and
            attacked: wrong in the majority of `JUDGE_PASSES` forward passes or in the first,
            `core.attacks.judge.counted_wrong`) and run the gradient attacks for all their
            iterations on every point.

    Returns:
        `{"clean_acc", "curve": [{"eps", "robust_acc", "broken_by": {label: points}}], "sanity",
        "warnings", "detail", "judging"}`; `judging` says how points were judged (every iteration,
        forward passes per judgement); `detail` (at `detail_eps`, else None) holds `broken_by`, per point
        the attack that broke it (`clean` when the model got it wrong unattacked, None if robust),
        and `after`: the robust accuracy after each attack in turn.

    Raises:
        Stopped: `should_stop` asked.
    """
    if not attacks:
        raise ValueError("robustness_curve needs at least one attack")
    grid = sorted({0.0, *eps_grid, *([detail_eps] if detail_eps is not None else [])})
    large = large_eps or (1.0 if attacks[0].norm == "linf" else 2.0 * x[0].numel() ** 0.5)
    passes = JUDGE_PASSES if randomized else 1
    clean = ~wrong_in_expectation(model, x, y, passes, batch_size)
    judging = {"every_iteration": randomized, "judge_passes": passes}
    clean_acc = clean.float().mean().item()
    curve, detail, n = [], None, len(x)
    for i, eps in enumerate(grid):
        stop_if_asked(should_stop)
        after: list[dict] = []

        def record(_: int, label: str, robust: torch.Tensor, after=after) -> None:
            after.append({"attack": label, "robust_acc": robust.float().mean().item()})

        specs = [a.model_copy(update={"eps": eps, "early_stop": True}) for a in attacks]
        if eps == 0:
            robust, broken_by = clean.clone(), [None] * n
        else:
            robust, broken_by = attack_in_order(
                model,
                x,
                y,
                specs,
                clean,
                batch_size=batch_size,
                should_stop=should_stop,
                on_attack_done=record,
                **judging,
            )
        counts = {a.label: broken_by.count(a.label) for a in specs}
        worst = robust.float().mean().item()
        curve.append({"eps": eps, "robust_acc": worst, "broken_by": counts})
        if eps == detail_eps:
            detail = {
                "eps": eps,
                "after": after,
                "broken_by": ["clean" if not c else b for c, b in zip(clean.tolist(), broken_by, strict=True)],
            }
        progress(
            Progress(
                fraction=(i + 1) / (len(grid) + 1),
                step=i,
                message=f"eps={eps:g}: robust accuracy {worst:.3f}",
                metrics={"eps": eps, "robust_acc": worst},
            )
        )
    # at the sanity radius, the attacks in order on the clean-correct points
    survivors, _ = attack_in_order(
        model,
        x,
        y,
        [a.model_copy(update={"eps": large, "early_stop": True}) for a in attacks],
        clean,
        batch_size=batch_size,
        should_stop=should_stop,
        **judging,
    )
    sanity, warnings = sanity_checks(clean_acc, curve, large, survivors.float().mean().item(), num_classes)
    for w in warnings:
        log.warning(w)
    return {
        "clean_acc": clean_acc,
        "curve": curve,
        "sanity": sanity,
        "warnings": warnings,
        "detail": detail,
        "judging": {**judging, "one_pass_counts": randomized},
    }


def wrong_in_expectation(model: nn.Module, x, y, passes: int, batch_size: int) -> torch.Tensor:
    """Per point (on the CPU): misclassified in more than half of `passes` passes or in the first
    (`counted_wrong`), in eval mode."""
    device = device_of(model)
    with eval_mode(model):
        parts = [
            counted_wrong(model, x[i : i + batch_size].to(device), y[i : i + batch_size].to(device), passes).cpu()
            for i in range(0, len(x), batch_size)
        ]
    return torch.cat(parts)


def sanity_checks(
    clean_acc: float, curve: list[dict], large_eps: float, large_acc: float, num_classes: int
) -> tuple[dict, list[str]]:
    """The three checks reported with every evaluation, and a warning for each that fails.

    - ε = 0 gives exactly the clean accuracy.
    - accuracy does not rise with ε (beyond MONOTONE_TOLERANCE).
    - at a very large ε accuracy falls to about chance (≤ 1/classes + 0.05); if not, the attack
      is not finding the loss's ascent direction: possible gradient masking.
    """
    zero = next(p["robust_acc"] for p in curve if p["eps"] == 0)
    accs = [p["robust_acc"] for p in curve]
    rises = [
        (curve[i]["eps"], curve[i + 1]["eps"])
        for i in range(len(accs) - 1)
        if accs[i + 1] > accs[i] + MONOTONE_TOLERANCE
    ]
    chance = 1.0 / num_classes
    sanity = {
        "eps0_equals_clean": abs(zero - clean_acc) < 1e-9,
        "monotone_in_eps": not rises,
        "large_eps": large_eps,
        "large_eps_acc": large_acc,
        "large_eps_near_chance": large_acc <= chance + 0.05,
    }
    warnings = []
    if not sanity["eps0_equals_clean"]:
        warnings.append(f"accuracy at eps=0 ({zero:.4f}) differs from clean accuracy ({clean_acc:.4f})")
    if rises:
        warnings.append(f"accuracy rises with eps between {rises}: the attack is unreliable")
    if not sanity["large_eps_near_chance"]:
        warnings.append(
            f"accuracy {large_acc:.3f} at eps={large_eps:g} is above chance ({chance:.2f}): possible gradient masking"
        )
    return sanity, warnings
