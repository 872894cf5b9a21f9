"""The epoch harness every training loop shares (classifiers in `core.training.loop`, DDPMs in
`core.diffusion.ddpm`): per-epoch seeding, each rank's share of the planned batches, the stop
check, the optimizer step with DDP's loss weighting, progress, rank 0's checkpoint every epoch.

A loop says only what differs: which images make each batch (`Epochs.plan`), what a batch
minimises (`Epochs.loss`), what follows each step (`Epochs.after_step`: a weight average), and
what rank 0 measures and keeps at the end of an epoch (`Epochs.end_epoch`). Every draw is fixed by
(seed, epoch, batch), so a run resumed from the checkpoint of epoch k trains epoch k + 1 as an
uninterrupted run does.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

import core.training.distributed as ddp
from core.contract.names import ModelKind
from core.contract.progress import Progress, ProgressFn, StopFn, stop_if_asked
from core.data import Dataset
from core.data.batches import Picked, PlannedBatches, loader_workers, read_batches
from core.training.checkpoint import save_checkpoint

log = logging.getLogger(__name__)

# (epoch, batch number, global step, x, y) -> (loss to minimise, correct predictions or None)
BatchLoss = Callable[[int, int, int, torch.Tensor, torch.Tensor], tuple[torch.Tensor, int | None]]
# epoch -> (this rank's share of each batch kept, {batch number: images in the global batch})
EpochPlan = Callable[[int], tuple[list[Picked], dict[int, int]]]
# (epoch number from 1, metrics so far) -> (metrics to add, checkpoint JSON entries, weight sets)
EpochEnd = Callable[[int, dict], tuple[dict, dict, dict]]


@dataclass
class Epochs:
    """One run for `run_epochs`.

    Args:
        out_dir: the checkpoint folder.
        kind: the checkpoint's kind (`classifier`, `diffusion`).
        spec: the run's spec (its `seed`, `epochs`, and its JSON in every checkpoint).
        device: the training device.
        model: what the checkpoint saves (the bare network).
        opt: its optimizer.
        net: what the update runs through (the DDP wrapper, or `model`).
        data, generated: the datasets the plan's rows index.
        images: training images an epoch shares out (each rank must get some).
        batches: batches per epoch of the global plan (for progress and the global step).
        plan, loss: see `EpochPlan`, `BatchLoss`.
        after_step: called after every optimizer step (a weight average's update), or None.
        end_epoch: rank 0's measurements and checkpoint extras after each epoch, or None.
        start_epoch, history: where a resumed run stands.
    """

    out_dir: Path
    kind: ModelKind
    spec: object
    device: torch.device
    model: nn.Module
    opt: torch.optim.Optimizer
    net: nn.Module
    data: Dataset
    images: int
    batches: int
    plan: EpochPlan
    loss: BatchLoss
    generated: Dataset | None = None
    after_step: Callable[[], None] | None = None
    end_epoch: EpochEnd | None = None
    start_epoch: int = 0
    history: list[dict] | None = None


def run_epochs(run: Epochs, progress: ProgressFn, should_stop: StopFn) -> tuple[list[dict], dict]:
    """Train epochs `run.start_epoch + 1 … spec.epochs`; returns the history and the last
    checkpoint JSON written (or {} when no epoch was left). Followers (ranks > 0) report nothing
    and write nothing. Raises `Stopped` when `should_stop` asks, at the same batch on every rank."""
    spec, device = run.spec, run.device
    rank, ranks = ddp.world()
    history, meta = list(run.history or []), {}
    total_steps = run.batches * spec.epochs
    report_every = max(1, run.batches // 20)
    for epoch in range(run.start_epoch, spec.epochs):
        t0 = time.perf_counter()
        picked, totals = run.plan(epoch)
        if ranks > 1:
            torch.manual_seed(ddp.rank_seed(spec.seed, epoch))
        run.model.train()
        run.net.train()
        loss_sum, correct, seen, counted = 0.0, 0, 0, False
        ddp.check_shared(len(picked), run.images)
        batches = PlannedBatches(picked, run.data, run.generated)
        for b, (x, y) in zip(totals, read_batches(batches, device=device, workers=loader_workers(ranks)), strict=True):
            stop_if_asked(lambda: ddp.any_rank(should_stop(), device))
            step = epoch * run.batches + b
            loss, right = run.loss(epoch, b, step, x, y)
            run.opt.zero_grad(set_to_none=True)
            (loss * ddp.loss_weight(len(y), totals[b])).backward()
            run.opt.step()
            if run.after_step is not None:
                run.after_step()
            loss_sum, seen = loss_sum + loss.item() * len(y), seen + len(y)
            correct, counted = correct + (right or 0), right is not None
            if b % report_every == 0:
                message = f"epoch {epoch + 1}/{spec.epochs} batch {b + 1}/{run.batches}"
                progress(Progress(fraction=step / total_steps, message=message))
        loss_sum, correct, seen = ddp.summed([loss_sum, correct, seen], device)
        if rank:  # rank 0 measures, writes the checkpoint and reports; the others train on
            continue
        metrics = {"train_loss": loss_sum / seen}
        if counted:
            metrics["train_acc"] = correct / seen
        extra_meta, sets = {}, {}
        if run.end_epoch is not None:
            more, extra_meta, sets = run.end_epoch(epoch + 1, metrics)
            metrics.update(more)
        metrics["epoch_seconds"] = time.perf_counter() - t0
        history.append({"epoch": epoch + 1, **metrics})
        meta = {"spec": spec.model_dump(mode="json"), "epoch": epoch + 1, "history": history, **extra_meta}
        if ranks > 1:
            meta["world_size"] = ranks
        save_checkpoint(run.out_dir, run.model, run.opt, meta, kind=run.kind, sets=sets)
        log.info("epoch %d/%d %s", epoch + 1, spec.epochs, " ".join(f"{k}={v:.4g}" for k, v in metrics.items()))
        progress(
            Progress(
                fraction=(epoch + 1) / spec.epochs,
                message=f"epoch {epoch + 1}/{spec.epochs} done",
                metrics=metrics,
                step=epoch + 1,
            )
        )
    return history, meta
