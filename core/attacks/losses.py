"""Per-sample losses the attacks ascend (or, for Square's margin, descend), all on logits z.

- `cross_entropy`: −log softmax(z)_y.
- `dlr` (Croce & Hein 2020, Eq. 6): −(z_y − max_{i≠y} z_i) / (z_π1 − z_π3), the Difference of
  Logits Ratio, invariant to shifting and scaling the logits (so it does not saturate the way CE
  does on over-confident models).
- `dlr_targeted` (Eq. 7): −(z_y − z_t) / (z_π1 − (z_π3 + z_π4)/2), toward target class t.
- `margin`: z_y − max_{i≠y} z_i, negative exactly when the point is misclassified (Square's).

π sorts the logits in decreasing order. DLR needs 3 classes, its targeted form 4.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

DLR_EPS = 1e-12  # keeps the ratio finite when the top logits tie


def cross_entropy(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(logits, y, reduction="none")


def _top_other(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """max_{i≠y} z_i."""
    return logits.scatter(1, y[:, None], float("-inf")).amax(1)


def margin(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return logits.gather(1, y[:, None])[:, 0] - _top_other(logits, y)


def dlr(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    if logits.shape[1] < 3:
        raise ValueError("the DLR loss needs at least 3 classes")
    z = logits.sort(1, descending=True).values
    return -margin(logits, y) / (z[:, 0] - z[:, 2] + DLR_EPS)


def dlr_targeted(logits: torch.Tensor, y: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    if logits.shape[1] < 4:
        raise ValueError("the targeted DLR loss needs at least 4 classes")
    z = logits.sort(1, descending=True).values
    gap = logits.gather(1, y[:, None])[:, 0] - logits.gather(1, target[:, None])[:, 0]
    return -gap / (z[:, 0] - 0.5 * (z[:, 2] + z[:, 3]) + DLR_EPS)
