"""The defended-model job kind's runner: a registered classifier behind a registered diffusion
model's purifier, registered as a classifier of its own (the registry row names its parts; no
weights are copied). Its clean accuracy after purification is measured on registration."""

from __future__ import annotations

import torch
from sqlalchemy import select

from core.contract.diffusion_specs import DefendedModelSpec
from core.contract.specs import DataSpec
from core.diffusion.purify import Purified
from core.evaluation.basics import accuracy
from core.jobs.context import JobContext
from core.store.orm import RegisteredModel
from core.store.registry import get_model, register_model

CLEAN_IMAGES = 500  # test images for the clean accuracy after purification


def _result(row: RegisteredModel) -> dict:
    return {"model_id": row.id, "name": row.name, **row.summary}


def run_defended_model(spec: DefendedModelSpec, ctx: JobContext) -> dict:
    with ctx.session() as s:
        done = s.scalar(select(RegisteredModel).where(RegisteredModel.job_id == ctx.job_id))
        if done is not None:
            return _result(done)
    classifier, dataset = ctx.registered_model(spec.classifier_id, "classifier")
    if isinstance(classifier, Purified):
        raise ValueError(f"classifier {spec.classifier_id} is already a defended model")
    diffusion, diffusion_data = ctx.registered_model(spec.diffusion_id, "diffusion")
    if diffusion_data != dataset:
        raise ValueError(f"the classifier is of {dataset}, the diffusion model of {diffusion_data}")
    defended = Purified(classifier, diffusion, spec.purifier)
    test = ctx.load_data(DataSpec.from_label(dataset))
    n = min(CLEAN_IMAGES, len(test.x_test))
    with torch.random.fork_rng(devices=[]), ctx.stops_in(defended):
        torch.manual_seed(0)
        clean = accuracy(defended, test.x_test[:n], test.y_test[:n], batch_size=128)
    with ctx.session() as s:
        base = get_model(s, model_id=spec.classifier_id)
        row = register_model(
            s,
            owner_id=ctx.owner_id,
            kind="classifier",
            job_id=ctx.job_id,
            dataset=dataset,
            architecture="purified",
            activation=base.activation,
            checkpoint_uri=f"jobs/{ctx.job_id}/defense",  # nothing stored: the parts hold the weights
            summary={
                "clean_acc": clean,
                "clean_images": n,
                "clean_acc_undefended": base.summary.get("clean_acc"),
                "randomized": True,
            },
            name=spec.name or f"{base.name}+purify-t{spec.purifier.t_star}",
            recipe={"model": base.recipe.get("model"), "defense": spec.model_dump(mode="json", exclude={"name"})},
        )
        return _result(row)
