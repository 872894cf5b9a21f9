"""Clean accuracy, robustness curves and the sanity checks that flag gradient masking.

Attacks at one ε run in order, each only on the points every earlier attack failed to break
(auto-attack's scheme), so a point counts as robust only if it survives them all: the
per-sample worst case.
"""

from __future__ import annotations

import logging

import torch
from torch import nn

from core.attacks import build_attack
from core.contract.progress import Progress, ProgressFn, StopFn, never_stop, no_progress, stop_if_asked
from core.contract.specs import AttackSpec
from core.modes import eval_mode

log = logging.getLogger(__name__)
MONOTONE_TOLERANCE = 0.005  # accuracy may rise this much between ε's before it is flagged


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """Predicted labels for `x`, in eval mode."""
    device = next(model.parameters()).device
    with eval_mode(model):
        return torch.cat(
            [model(x[i : i + batch_size].to(device)).argmax(1).cpu() for i in range(0, len(x), batch_size)]
        )


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 512) -> float:
    return (predict(model, x, batch_size) == y).float().mean().item()


def robust_mask(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    attack: AttackSpec,
    eps: float,
    candidates: torch.Tensor,
    batch_size: int = 256,
) -> torch.Tensor:
    """Which of the `candidates` (a boolean mask) `attack` at radius `eps` fails to break.

    The attack runs with early stopping: a point counts as broken once any iterate fools the model.
    """
    robust = candidates.clone()
    if eps == 0:
        return robust
    device = next(model.parameters()).device
    run = build_attack(attack.model_copy(update={"eps": eps, "early_stop": True}))
    idx = robust.nonzero().flatten()
    for start in range(0, len(idx), batch_size):
        b = idx[start : start + batch_size]
        xb, yb = x[b].to(device), y[b].to(device)
        x_adv = run(model, xb, yb)
        with torch.no_grad(), eval_mode(model):
            robust[b] = (model(x_adv).argmax(1) == yb).cpu()
    return robust


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
    progress: ProgressFn = no_progress,
    should_stop: StopFn = never_stop,
) -> dict:
    """Accuracy at each ε of `eps_grid` (0 added) under the worst case of `attacks`, with checks.

    Returns:
        `{"clean_acc", "curve": [{"eps", "robust_acc", "per_attack": {label: acc}}], "sanity",
        "warnings"}`. `per_attack` is each attack's accuracy on its own; `robust_acc` counts a
        point only if it survives every attack (the per-sample worst case).

    Raises:
        Stopped: `should_stop` asked, between two radii.
    """
    if not attacks:
        raise ValueError("robustness_curve needs at least one attack")
    grid = sorted({0.0, *eps_grid})
    large = large_eps or (1.0 if attacks[0].norm == "linf" else 2.0 * x[0].numel() ** 0.5)
    clean = predict(model, x, batch_size) == y
    clean_acc = clean.float().mean().item()
    curve = []
    for i, eps in enumerate(grid):
        stop_if_asked(should_stop)
        masks = {a.label: robust_mask(model, x, y, a, eps, clean, batch_size) for a in attacks}
        worst = torch.stack(list(masks.values())).all(0).float().mean().item()
        per_attack = {label: m.float().mean().item() for label, m in masks.items()}
        curve.append({"eps": eps, "robust_acc": worst, "per_attack": per_attack})
        progress(
            Progress(
                fraction=(i + 1) / (len(grid) + 1),
                step=i,
                message=f"eps={eps:g}: robust accuracy {worst:.3f}",
                metrics={"eps": eps, "robust_acc": worst},
            )
        )
    survivors = clean
    for a in attacks:  # at the sanity radius only the survivors of earlier attacks are attacked
        survivors = robust_mask(model, x, y, a, large, survivors, batch_size)
    sanity, warnings = sanity_checks(clean_acc, curve, large, survivors.float().mean().item(), num_classes)
    for w in warnings:
        log.warning(w)
    return {"clean_acc": clean_acc, "curve": curve, "sanity": sanity, "warnings": warnings}


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
