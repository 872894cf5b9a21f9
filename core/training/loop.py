"""Training: standard, PGD adversarial training (Madry et al. 2018), Fast-AT (Wong et al. 2020) and
TRADES (Zhang et al. 2019).

Adversarial training solves min_θ E[max_{δ∈S} L(θ, x+δ, y)]: each batch, the attack makes the
inner maximiser x_adv (in the `attack` gradient phase), then one optimizer step on the method's
loss (in the `update` phase; see `objectives`). A checkpoint is written after every epoch; `train` resumes from the one
in `out_dir`, and a resumed CPU run ends with the same weights as an uninterrupted one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import torch

import core.training.distributed as ddp
from core.activations import true_gradients
from core.contract.attack_specs import AttackSpec
from core.contract.datasets import dataset_info
from core.contract.progress import ProgressFn, StopFn, never_stop, no_progress
from core.contract.specs import ModelSpec, Spec, TrainSpec
from core.data import Dataset, load_dataset
from core.data.batches import Picked
from core.device import autocast, prepare, resolve_device, to_input
from core.evaluation import predict, robust_mask
from core.models import Classifier, build_model
from core.training.augment import augment, batch_generator
from core.training.averaging import WeightAverage
from core.training.checkpoint import drop_previous, resume_state, save_checkpoint
from core.training.harness import Epochs, run_epochs
from core.training.mixing import BatchPlan, batch_indices, batch_plan, check_mixable, epoch_orders
from core.training.objectives import batch_objective
from core.training.schedules import lr_at
from core.training.selection import Best, chosen_source, holdout_split

log = logging.getLogger(__name__)


@dataclass
class TrainResult:
    """What a finished training run leaves (classifier or DDPM): the checkpoint folder, the
    per-epoch metrics and the spec it ran."""

    out_dir: Path
    epochs_done: int
    history: list[dict] = field(default_factory=list)
    spec: Spec | None = None
    chosen: dict | None = None  # which weights the model file holds, when not the last (`hand_on`)

    @property
    def final(self) -> dict:
        return self.history[-1] if self.history else {}


def resolve_spec(spec: TrainSpec, ds: Dataset) -> TrainSpec:
    """`spec` with the model's shape checked against the data and its normalisation filled in.

    Raises:
        ValueError: the model's channels, image size or classes do not match the dataset.
    """
    m = spec.model
    got = (ds.in_channels, ds.image_size, ds.num_classes)
    if (m.in_channels, m.image_size, m.num_classes) != got:
        raise ValueError(
            f"model expects (channels, size, classes) = {(m.in_channels, m.image_size, m.num_classes)} "
            f"but dataset {ds.name!r} has {got}"
        )
    if m.mean is None or m.std is None:
        info = dataset_info(ds.name)  # unknown statistics (a folder, an upload): 0.5, 0.5
        mean, std = (list(info.mean), list(info.std)) if info and info.mean else ([0.5] * ds.in_channels,) * 2
        m = m.model_copy(update={"mean": mean, "std": std})
    return spec.model_copy(update={"model": ModelSpec.model_validate(m.model_dump())})


def make_optimizer(spec: TrainSpec, model: Classifier) -> torch.optim.Optimizer:
    o = spec.optim
    if o.name == "adam":
        return torch.optim.Adam(model.parameters(), lr=o.lr, weight_decay=o.weight_decay)
    return torch.optim.SGD(model.parameters(), lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay)


def train(
    spec: TrainSpec,
    out_dir: str | Path,
    *,
    dataset: Dataset | None = None,
    generated: Dataset | None = None,
    progress: ProgressFn = no_progress,
    should_stop: StopFn = never_stop,
    resume: bool = True,
) -> TrainResult:
    """Train the model `spec` describes, checkpointing into `out_dir` every epoch.

    Args:
        spec: the run.
        out_dir: checkpoint folder; if it holds a checkpoint and `resume` is True, training
            continues from it.
        dataset: the data, if already loaded (else `spec.data` is loaded).
        generated: the generated data `spec.generated` names, if already loaded.
        progress: called every few batches and with each epoch's metrics.
        should_stop: checked every batch; when True the run raises `Stopped`, keeping the last
            epoch's checkpoint (a later call resumes from it).
        resume: continue from a checkpoint in `out_dir` (default True).

    In a torch.distributed process group (a `gpus: G` job under torchrun) each rank trains on its
    share of every batch (see `core.training.distributed`); rank 0 writes the checkpoints and
    reports progress; the other ranks end with `FollowerDone` after the last epoch.
    """
    out_dir = Path(out_dir)
    device = resolve_device(spec.device)
    ds = dataset or load_dataset(spec.data)
    spec = resolve_spec(spec, ds)
    recipe = spec.recipe
    torch.manual_seed(spec.seed)
    model = prepare(build_model(spec.model), device, spec.channels_last)
    opt = make_optimizer(spec, model)
    rank, ranks = ddp.world()
    ddp.warn_if_alone(spec.gpus)
    ema = WeightAverage(model, recipe.ema_decay) if recipe.ema_decay is not None else None
    meta, sets = resume_state(out_dir, model, opt, spec) if resume else ({"epoch": 0, "history": []}, {})
    start_epoch, history = meta["epoch"], meta["history"]
    if start_epoch:
        log.info("resuming %s from epoch %d", out_dir, start_epoch)
    if ema is not None and "ema" in sets:
        ema.load_state_dict(sets["ema"])
    best = Best.restored(meta.get("best"), sets.get("best"))
    monitored = ema.model if recipe.averaged else model  # the model the monitor measures and selection keeps
    net = ddp.wrap(model, device)  # what the update runs through (`model` itself in one process)
    if rank:
        progress = no_progress

    if spec.generated is not None:
        generated = generated or load_dataset(spec.generated.data)
        check_mixable(ds, generated)
    train_rows, held_rows = holdout_split(len(ds.x_train), recipe.holdout, spec.data.seed)
    plan = batch_plan(spec.batch_size, len(train_rows), spec.generated, len(generated.x_train) if generated else 0)
    batches_per_epoch = plan.batches
    total_steps = batches_per_epoch * spec.epochs
    if recipe.holdout:  # held-out training images (Rice et al.); never the test images
        x_eval, y_eval = ds.x_train[held_rows], ds.y_train[held_rows]
    else:
        x_eval, y_eval = ds.x_test[: spec.eval_subset], ds.y_test[: spec.eval_subset]
    objective = batch_objective(spec)
    warmup_steps = recipe.eps_warmup_epochs * batches_per_epoch

    def plan_of(epoch: int) -> tuple[list[Picked], dict[int, int]]:
        real_order, generated_order = epoch_orders(plan, spec.seed, epoch)
        return epoch_plan(plan, (train_rows[real_order], generated_order), ranks)

    def batch_loss(epoch: int, b: int, step: int, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, int]:
        nonlocal objective
        for group in opt.param_groups:
            group["lr"] = lr_at(spec.optim, step / total_steps)
        if step < warmup_steps:  # ε grows linearly to attack.eps over the warm-up's batches
            objective = batch_objective(spec, eps=spec.attack.eps * (step + 1) / warmup_steps)
        elif step == warmup_steps > 0:
            objective = batch_objective(spec)
        x, y = to_input(x, device, spec.channels_last), y.to(device, non_blocking=True)
        if recipe.augments:
            x = augment(x, recipe, batch_generator(spec.seed, epoch, b, rank))
        with autocast(device, spec.amp):
            loss, logits = objective(net, x, y)
        return loss, (logits.argmax(1) == y).sum().item()

    def end_epoch(epoch: int, metrics: dict) -> tuple[dict, dict, dict]:
        measured = {"lr": opt.param_groups[0]["lr"], **held_out_metrics(monitored, x_eval, y_eval, spec.eval_attack)}
        if recipe.select == "best":
            best.offer(epoch, measured, monitored.state_dict())
        return measured, {"best": best.record} if best.epoch else {}, weight_sets(ema, best)

    run = Epochs(
        out_dir=out_dir,
        kind="classifier",
        spec=spec,
        device=device,
        model=model,
        opt=opt,
        net=net,
        data=ds,
        generated=generated,
        images=len(train_rows),
        batches=batches_per_epoch,
        plan=plan_of,
        loss=batch_loss,
        after_step=(lambda: ema.update(model)) if ema is not None else None,
        end_epoch=end_epoch,
        start_epoch=start_epoch,
        history=history,
    )
    history, last = run_epochs(run, progress, should_stop)
    meta = last or meta
    chosen = meta.get("chosen")
    if not rank:
        if chosen is None and chosen_source(recipe) is not None:
            chosen = hand_on(out_dir, spec, model, opt, meta, ema, best)
        drop_previous(out_dir)
    ddp.follower_done(net)
    return TrainResult(out_dir, spec.epochs, history, spec, chosen)


def weight_sets(ema: WeightAverage | None, best: Best) -> dict[str, dict[str, torch.Tensor]]:
    """The checkpoint's weight sets besides the model's: the average and the best epoch's."""
    sets = {"ema": ema.state_dict()} if ema is not None else {}
    if best.epoch:
        sets["best"] = best.weights
    return sets


def hand_on(out_dir: Path, spec: TrainSpec, model, opt, meta: dict, ema: WeightAverage | None, best: Best) -> dict:
    """Make the finished checkpoint's model file the weights the recipe chooses (the best epoch's
    or the average), the last weights kept beside them as the `last` set; returns the choice.
    Written once, as one checkpoint: a finished folder is what gets evaluated and registered."""
    source = chosen_source(spec.recipe)
    if source == "best":
        weights, epoch = best.weights, best.epoch
    else:
        weights, epoch = ema.state_dict(), spec.epochs
    chosen = {"weights": source, "averaged": spec.recipe.averaged, "epoch": epoch}
    if best.epoch:
        chosen["held_out"] = best.record
    sets = {**weight_sets(ema, best), "last": model.state_dict()}
    save_checkpoint(out_dir, model, opt, {**meta, "chosen": chosen}, kind="classifier", weights=weights, sets=sets)
    log.info("%s: hands on the %s weights of epoch %d", out_dir, source, epoch)
    return chosen


def epoch_plan(plan: BatchPlan, orders, ranks: int) -> tuple[list[Picked], dict[int, int]]:
    """This rank's share of each batch of the epoch, and {batch number: images in the global batch}.
    A batch (real images, then generated ones) is split as one list, so shares differ by at most
    one image; a last batch smaller than the world is skipped by every rank alike."""
    picked, totals = [], {}
    for b in range(plan.batches):
        real, gen = batch_indices(plan, orders, b)
        total = len(real) + (len(gen) if gen is not None else 0)
        if total < ranks:
            continue
        mine = ddp.share(torch.arange(total))
        real_part = real[mine[mine < len(real)]]
        gen_part = gen[mine[mine >= len(real)] - len(real)] if gen is not None else None
        picked.append(Picked(real_part, gen_part))
        totals[b] = total
    return picked, totals


def held_out_metrics(model: Classifier, x: torch.Tensor, y: torch.Tensor, attack: AttackSpec) -> dict[str, float]:
    """The per-epoch monitor: clean accuracy and robust accuracy under `attack` (a cheap PGD, with
    the network's true gradients) on held-out images. Not the model's reported robustness: that
    is measured at the end under the spec's protocol."""
    correct = predict(model, x) == y
    with true_gradients(model):
        robust = robust_mask(model, x, y, attack, attack.eps, correct)
    return {"clean_acc": correct.float().mean().item(), "robust_acc": robust.float().mean().item()}
