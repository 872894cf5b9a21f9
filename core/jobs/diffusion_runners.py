"""The diffusion job kinds' runners: training (with sample quality at the end), sampling and the
forward-process explorer. A stop request ends them with `Stopped`."""

from __future__ import annotations

import time

from sqlalchemy import select

from core.contract.checkpoint import MODEL_FILE
from core.contract.diffusion_specs import DDPMForwardSpec, DDPMSampleSpec, DDPMTrainSpec
from core.contract.progress import Progress
from core.contract.results import ForwardResult, SamplesResult
from core.diffusion.ddpm import load_diffusion, train_ddpm
from core.diffusion.quality import sample_quality
from core.diffusion.sampling import forward_explorer, sample
from core.images import grid_png, png_bytes
from core.jobs.context import JobContext
from core.store.orm import RegisteredModel
from core.store.registry import register_model

QUALITY_SAMPLES = 500  # generated images for the Fréchet distance (DDIM-50)


def quality_classifier(ctx: JobContext, dataset: str):
    """`(id, model)` of the public, undefended registered classifier of `dataset` with the best
    clean accuracy, whose penultimate layer is the feature space of the Fréchet distance; `(None,
    None)` if none. Public only: its id goes into the job's result, which others may read; a
    defended model has no weights of its own to take features from."""
    with ctx.session() as s:
        rows = s.scalars(
            select(RegisteredModel).where(
                RegisteredModel.kind == "classifier",
                RegisteredModel.dataset == dataset,
                RegisteredModel.private.is_(False),
            )
        ).all()
        plain = [r for r in rows if "defense" not in (r.recipe or {})]
        best = max(plain, key=lambda r: r.summary.get("clean_acc", 0), default=None)
        if best is None:
            return None, None
        ident, uri = best.id, best.checkpoint_uri
    return ident, ctx.models.get(ident, uri, ctx.store, ctx.device)


def run_ddpm_training(spec: DDPMTrainSpec, ctx: JobContext) -> dict:
    folder = ctx.checkpoint_folder()
    ds = ctx.load_data(spec.data)
    t0 = time.perf_counter()
    report = ctx.training_reporter(folder, 0.0, 0.85)
    result = train_ddpm(spec, folder, dataset=ds, progress=report, should_stop=ctx.should_stop)
    ctx.publish_checkpoint(folder)
    train_seconds = time.perf_counter() - t0
    model = load_diffusion(folder, device=ctx.device)
    classifier_id, classifier = quality_classifier(ctx, spec.data.label)
    summary = {"history": result.history, "train_seconds": train_seconds, "quality": None}
    if classifier is not None and classifier.spec.image_size == model.data_size:
        n = min(QUALITY_SAMPLES, len(ds.x_test))
        gen = sample(
            model,
            DDPMSampleSpec(n=n, sampler="ddim", steps=50),
            progress=ctx.scaled(0.85, 1.0),
            should_stop=ctx.should_stop,
        )
        summary["quality"] = {
            **sample_quality(classifier, gen["images"], ds.x_test[:n], ds.classes),
            "classifier_id": classifier_id,
            "sampler": "ddim-50",
        }
    with ctx.session() as s:
        weights = ctx.save_artifact(
            s, f"checkpoint/{MODEL_FILE}", type="checkpoint", data=(folder / MODEL_FILE).read_bytes()
        )
        row = register_model(
            s,
            owner_id=ctx.owner_id,
            kind="diffusion",
            job_id=ctx.job_id,
            dataset=spec.data.label,
            architecture="unet2d",
            activation="silu",
            checkpoint_uri=ctx.checkpoint_prefix,
            summary=summary,
            name=f"{spec.data.label}-ddpm-seed{spec.seed}",
            recipe={**spec.model_dump(mode="json"), "facts": model.facts()},
        )
        return {
            "model_id": row.id,
            "checkpoint_artifact_id": weights.id,
            "train_seconds": train_seconds,
            "final": result.final,
            "quality": summary["quality"],
        }


def run_ddpm_sampling(spec: DDPMSampleSpec, ctx: JobContext) -> SamplesResult:
    if spec.model_id is None:
        raise ValueError("ddpm_sampling needs model_id")
    model, _ = ctx.registered_model(spec.model_id, "diffusion")
    t0 = time.perf_counter()
    out = sample(model, spec, progress=ctx.progress, should_stop=ctx.should_stop)
    seconds = time.perf_counter() - t0
    with ctx.session() as s:
        grid = ctx.save_artifact(s, "grid.png", type="image", data=grid_png(out["images"]))
        singles = [
            ctx.save_artifact(s, f"sample_{i:03d}.png", type="image", data=png_bytes(img)).id
            for i, img in enumerate(out["images"])
        ]
        frames = [
            ctx.save_artifact(s, f"trajectory_{i:02d}.png", type="image", data=grid_png(frame)).id
            for i, frame in enumerate(out["trajectory"])
        ]
    return SamplesResult(
        model_id=spec.model_id,
        sampler=spec.sampler,
        steps=spec.num_steps,
        n=spec.n,
        seconds=seconds,
        grid_artifact_id=grid.id,
        sample_artifact_ids=singles,
        trajectory_artifact_ids=frames,
    )


def run_ddpm_forward(spec: DDPMForwardSpec, ctx: JobContext) -> ForwardResult:
    """x_t and the model's x̂_0 at each t for one test image: the explorer's frames."""
    model, dataset = ctx.registered_model(spec.model_id, "diffusion")
    big_t = model.spec.num_train_timesteps
    timesteps = spec.timesteps or [round(i * (big_t - 1) / 9) for i in range(10)]
    x0, label = ctx.test_image(dataset, spec.test_index)
    frames = []
    for i, t in enumerate(timesteps):
        out = forward_explorer(model, x0[None], t, seed=spec.seed)
        frames.append({"t": t, "alpha_bar": out["alpha_bar"], "x_t": out["x_t"][0], "x0_pred": out["x0_pred"][0]})
        ctx.progress(Progress((i + 1) / len(timesteps), f"t = {t}"))
    with ctx.session() as s:
        image_id = ctx.save_artifact(s, "x0.png", type="image", data=png_bytes(x0)).id
        x_t = [ctx.save_artifact(s, f"x_t_{f['t']:04d}.png", type="image", data=png_bytes(f["x_t"])).id for f in frames]
        x0_pred = [
            ctx.save_artifact(s, f"x0_pred_{f['t']:04d}.png", type="image", data=png_bytes(f["x0_pred"])).id
            for f in frames
        ]
    return ForwardResult(
        model_id=spec.model_id,
        test_index=spec.test_index,
        label=label,
        timesteps=timesteps,
        alpha_bars=[f["alpha_bar"] for f in frames],
        image_artifact_id=image_id,
        x_t_artifact_ids=x_t,
        x0_pred_artifact_ids=x0_pred,
    )
