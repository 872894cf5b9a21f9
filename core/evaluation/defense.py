"""A purification defense's robust accuracy, three ways on the same images (Nie et al. 2022's
DiffPure and the adaptive re-evaluations that followed it):

- `non_adaptive`: the attacks made on the classifier alone, then purified and classified: what a
  careless paper reports;
- `bpda`: the attacks on the defended model with the purifier's gradient taken as the identity
  (Athalye et al. 2018), averaged over the protocol's EOT samples;
- `adaptive`: the attacks with exact gradients through the reverse sampler (checkpointed) and EOT.

The defense's robust accuracy is the lowest of the three, never a choice.
"""

from __future__ import annotations

import time

import torch

from core.attacks.judge import JUDGE_PASSES
from core.contract.attack_specs import ProtocolSpec
from core.contract.progress import Progress, ProgressFn, StopFn, never_stop, no_progress
from core.contract.results import Evaluation
from core.diffusion.purify import Purified
from core.evaluation.curve import wrong_in_expectation
from core.evaluation.in_order import attack_in_order
from core.evaluation.protocol import evaluate

WAYS = ("non_adaptive", "bpda", "adaptive")


def non_adaptive(defended: Purified, x, y, protocol: ProtocolSpec, *, batch_size: int, should_stop: StopFn) -> dict:
    """The protocol's attacks made on the bare classifier, judged on the defended model."""
    devices = [torch.cuda.current_device()] if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(protocol.seed)
        correct = ~wrong_in_expectation(defended, x, y, JUDGE_PASSES, batch_size)
        robust, broken_by = attack_in_order(
            defended.classifier,
            x,
            y,
            [a.model_copy(update={"eot": 1}) for a in protocol.attack_specs()],  # the classifier is deterministic
            correct,
            batch_size=batch_size,
            should_stop=should_stop,
            judge=defended,
            judge_passes=JUDGE_PASSES,  # the purifier is random: judged by its expected outcome
        )
    return {
        "clean_acc": correct.float().mean().item(),
        "robust_acc": robust.float().mean().item(),
        "broken_by": broken_by,
    }


def evaluate_defense(
    defended: Purified,
    x: torch.Tensor,
    y: torch.Tensor,
    protocol: ProtocolSpec,
    *,
    num_classes: int,
    batch_size: int = 256,
    progress: ProgressFn = no_progress,
    should_stop: StopFn = never_stop,
) -> Evaluation:
    """`evaluate`'s result for the adaptive attack (checks and breakdown included), with `defense`:
    `{way: {"clean_acc", "robust_acc", ...} for way in WAYS}`, `robust_acc` the lowest of the three
    and `robust_acc_by` the way that gave it.

    Raises:
        Stopped: `should_stop` asked.
    """
    t0 = time.perf_counter()
    x, y = x[: protocol.images], y[: protocol.images]

    def stage(i: int) -> ProgressFn:
        return lambda p: progress(Progress((i + p.fraction) / 3, f"{WAYS[i]}: {p.message}"))

    ways = {"non_adaptive": non_adaptive(defended, x, y, protocol, batch_size=batch_size, should_stop=should_stop)}
    progress(Progress(1 / 3, "non-adaptive attack done"))
    for i, way in enumerate(("bpda", "adaptive"), start=1):
        result = evaluate(
            defended.with_gradient("bpda" if way == "bpda" else "exact"),
            x,
            y,
            protocol,
            num_classes=num_classes,
            batch_size=batch_size,
            progress=stage(i),
            should_stop=should_stop,
        )
        ways[way] = result.model_dump(mode="json", include={"clean_acc", "robust_acc", "breakdown", "broken_by"})
    lowest = min(WAYS, key=lambda w: ways[w]["robust_acc"])
    return result.model_copy(
        update={
            "robust_acc": ways[lowest]["robust_acc"],
            "robust_acc_by": lowest,
            "defense": {
                "purifier": defended.purifier.model_dump(mode="json"),
                **{w: {k: v for k, v in ways[w].items() if k != "broken_by"} for w in WAYS},
            },
            "seconds": time.perf_counter() - t0,
        }
    )
