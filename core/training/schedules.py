"""Learning-rate schedules as pure functions of training progress, so resuming needs no
scheduler object: the rate at global step s of S is `lr_at(spec, s / S)`."""

from __future__ import annotations

import math

from core.contract.specs import OptimSpec


def lr_at(spec: OptimSpec, progress: float) -> float:
    """Learning rate at `progress` ∈ [0, 1] of the whole run.

    - constant: `lr` throughout.
    - cosine: lr·(1 + cos(π·p))/2 (Loshchilov & Hutter, no restarts).
    - piecewise: lr, ×0.1 from each of `milestones` (default 50 % and 75 %: Madry et al.'s decay
      points, scaled).
    - cyclic: one triangle, 0 → lr at 40 % → 0 (Wong et al. 2020, Fast-AT).
    """
    p = min(max(progress, 0.0), 1.0)
    match spec.schedule:
        case "constant":
            return spec.lr
        case "cosine":
            return spec.lr * 0.5 * (1.0 + math.cos(math.pi * p))
        case "piecewise":
            return spec.lr * 0.1 ** sum(p >= m for m in spec.milestones)
        case "cyclic":
            return spec.lr * (p / 0.4 if p < 0.4 else (1.0 - p) / 0.6)
    raise ValueError(f"unknown schedule {spec.schedule!r}")
