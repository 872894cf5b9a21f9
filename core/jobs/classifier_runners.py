"""The classifier job kinds' runners (`runner(spec, ctx) -> result`): adversarial training,
attack evaluation and the attack on one image. They call core and record what a user will look
for: metrics, artifacts, registered models. A stop request ends them with `Stopped`."""

from __future__ import annotations

import json

import torch
from safetensors.torch import save as save_safetensors
from sqlalchemy import select

from core.attacks import build_attack
from core.contract.checkpoint import META_FILE, MODEL_FILE
from core.contract.job_specs import EvalSpec, ImageAttackSpec, ModelUploadSpec
from core.contract.results import EvaluationJobResult, ImageAttackResult, Prediction
from core.contract.specs import TrainSpec
from core.data import class_names
from core.evaluation import evaluate
from core.evaluation.summary import classifier_summary, evaluation_entry
from core.images import perturbation_png, png_bytes, tensor_from_png
from core.jobs.context import JobContext
from core.jobs.outage import PASSING, while_store_away
from core.models import load_model
from core.models.bring_your_own import check_fits_dataset, checked_classifier, clean_accuracy
from core.models.state_dicts import imported_weights
from core.store.orm import Artifact, RegisteredModel
from core.store.registry import record_evaluation, register_model
from core.training import train


def run_adversarial_training(spec: TrainSpec, ctx: JobContext) -> dict:
    """Train, evaluate under the spec's protocol, register. The registered weights are those the
    recipe hands on (`chosen` in the result: the best epoch's on held-out training images, or the
    weight average; None for the last epoch's)."""
    folder = ctx.checkpoint_folder()
    ds = ctx.load_data(spec.data)
    report = ctx.training_reporter(folder, 0.0, 0.8)
    generated = ctx.load_data(spec.generated.data) if spec.generated else None
    result = train(spec, folder, dataset=ds, generated=generated, progress=report, should_stop=ctx.should_stop)
    ctx.publish_checkpoint(folder)
    model = load_model(folder, device=ctx.device)
    summary = classifier_summary(
        model,
        ds.x_test,
        ds.y_test,
        spec.protocol,
        num_classes=ds.num_classes,
        curve_images=spec.eval_subset,
        job_id=ctx.job_id,
        progress=ctx.scaled(0.8, 1.0, metrics=False),
        should_stop=ctx.should_stop,
    )
    summary["monitor"] = monitor_label(spec)
    summary["history"] = result.history
    summary["chosen"] = result.chosen
    return while_store_away(  # a blip of the store here does not cost the evaluation again
        ctx.outage_seconds, f"job {ctx.job_id}'s registration", lambda: _register(spec, ctx, folder, summary, result)
    )


def _register(spec: TrainSpec, ctx: JobContext, folder, summary: dict, result) -> dict:
    with ctx.session() as s:
        weights = ctx.save_artifact(
            s, f"checkpoint/{MODEL_FILE}", type="checkpoint", data=(folder / MODEL_FILE).read_bytes()
        )
        registered = register_model(
            s,
            owner_id=ctx.owner_id,
            kind="classifier",
            job_id=ctx.job_id,
            dataset=spec.data.label,
            architecture=spec.model.arch,
            activation=spec.model.activation.label,
            checkpoint_uri=ctx.checkpoint_prefix,
            summary=summary,
            name=f"{spec.data.label}-{spec.method}-{spec.model.activation.label}-seed{spec.seed}",
            recipe={
                "method": spec.method,
                "attack": spec.attack.model_dump(),
                **({"trades_beta": spec.trades_beta} if spec.method == "trades" else {}),
                "epochs": spec.epochs,
                "optim": spec.optim.model_dump(),
                "seed": spec.seed,
                "model": spec.model.model_dump(),
                **({"generated": spec.generated.model_dump(mode="json")} if spec.generated else {}),
                "recipe": spec.recipe.model_dump(mode="json"),
                **({"chosen": result.chosen} if result.chosen else {}),
            },
        )
        return {
            "model_id": registered.id,
            "checkpoint_artifact_id": weights.id,
            "final": result.final,
            "clean_acc": summary["clean_acc"],
            "robust_acc": summary["robust_acc"],
            "eps": summary["eps"],
            "protocol_label": summary["protocol_label"],
            "chosen": result.chosen,
        }


def monitor_label(spec: TrainSpec) -> str:
    """What the per-epoch numbers of the history measured."""
    if spec.recipe.holdout:
        where = f"{spec.recipe.holdout} training images held out from training"
    else:
        where = f"the first {spec.eval_subset} test images"
    weights = " (the weight average)" if spec.recipe.averaged else ""
    return f"{spec.eval_attack.label} on {where} per epoch{weights} (a cheap check)"


def run_attack_evaluation(spec: EvalSpec, ctx: JobContext) -> EvaluationJobResult:
    if spec.model_id is None:
        raise ValueError("attack_evaluation needs model_id")
    model, _ = ctx.registered_model(spec.model_id, "classifier")
    ds = ctx.load_data(spec.data)
    measure, extra = evaluate, {"eps_grid": spec.eps_grid, "large_eps": spec.large_eps, "min_norm": spec.min_norm}
    if getattr(model, "purifier", None) is not None:  # a defended model: its three numbers
        if spec.min_norm is not None:
            raise ValueError("min_norm needs a deterministic classifier; a purification defense is randomized")
        from core.evaluation.defense import evaluate_defense  # diffusers is heavy: only when needed

        measure, extra = evaluate_defense, {}
    result = measure(
        model,
        ds.x_test,
        ds.y_test,
        spec.protocol,
        num_classes=ds.num_classes,
        batch_size=spec.batch_size,
        progress=ctx.progress,
        should_stop=ctx.should_stop,
        **extra,
    )

    def record() -> EvaluationJobResult:
        with ctx.session() as s:
            data = result.model_dump_json(indent=1).encode()
            report = ctx.save_artifact(s, "evaluation.json", type="report", data=data)
            recorded = record_evaluation(s, model_id=spec.model_id, entry=evaluation_entry(result, ctx.job_id))
        return EvaluationJobResult(
            **result.model_dump(), model_id=spec.model_id, report_artifact_id=report.id, recorded_on_model=recorded
        )

    return while_store_away(ctx.outage_seconds, f"job {ctx.job_id}'s evaluation record", record)


def _attack_input(spec: ImageAttackSpec, ctx: JobContext, model, dataset: str) -> tuple[torch.Tensor, int | None, str]:
    """The image to attack (1×C×H×W), its known label, and the id of its artifact."""
    if spec.test_index is None:
        with ctx.session() as s:
            upload = s.get(Artifact, spec.input_artifact_id)
            if upload is None:
                raise ValueError(f"no artifact with id {spec.input_artifact_id}")
            key = upload.uri
        x = tensor_from_png(ctx.store.get_bytes(key), model.spec.in_channels)[None]
        return x, spec.label, spec.input_artifact_id
    x, y = ctx.test_image(dataset, spec.test_index)
    with ctx.session() as s:
        art = ctx.save_artifact(s, "input.png", type="image", data=png_bytes(x))
        ident = art.id
    return x[None], spec.label if spec.label is not None else y, ident


def run_image_attack(spec: ImageAttackSpec, ctx: JobContext) -> ImageAttackResult:
    model, dataset = ctx.registered_model(spec.model_id, "classifier")
    x, known_label, input_id = _attack_input(spec, ctx, model, dataset)
    x = x.to(ctx.device)
    with torch.no_grad():
        p_clean = torch.softmax(model(x), 1)[0]
    label = known_label if known_label is not None else int(p_clean.argmax())
    if label >= model.spec.num_classes:
        raise ValueError(f"label {label} out of range for a {model.spec.num_classes}-class model")
    with ctx.stops_in(model):
        x_adv = build_attack(spec.attack)(model, x, torch.tensor([label], device=ctx.device))
    with torch.no_grad():
        p_adv = torch.softmax(model(x_adv), 1)[0]
    delta = (x_adv - x)[0]
    with ctx.session() as s:
        adv = ctx.save_artifact(s, "adversarial.png", type="image", data=png_bytes(x_adv[0]))
        pert = ctx.save_artifact(s, "perturbation.png", type="image", data=perturbation_png(delta))
    return ImageAttackResult(
        model_id=spec.model_id,
        label=label,
        attack=spec.attack.model_dump(mode="json"),
        clean=Prediction(prediction=int(p_clean.argmax()), probabilities=p_clean.tolist()),
        adversarial=Prediction(prediction=int(p_adv.argmax()), probabilities=p_adv.tolist()),
        linf=float(delta.abs().max()),
        l2=float(delta.norm()),
        input_artifact_id=input_id,
        test_index=spec.test_index,
        classes=class_names(dataset, model.spec.num_classes),
        adversarial_artifact_id=adv.id,
        perturbation_artifact_id=pert.id,
    )


def run_model_upload(spec: ModelUploadSpec, ctx: JobContext) -> dict:
    """Check an uploaded classifier (safetensors, or a PyTorch state dict read with
    `torch.load(weights_only=True)`) and register it with its clean accuracy, its weights as
    safetensors. A failed check leaves nothing behind: the upload is deleted and no model is
    registered."""
    with ctx.session() as s:
        done = s.scalar(select(RegisteredModel).where(RegisteredModel.job_id == ctx.job_id))
        if done is not None:  # registered by an attempt that crashed before the job's final write
            return {
                "model_id": done.id,
                "clean_acc": done.summary["clean_acc"],
                "clean_images": done.summary["clean_images"],
            }
        key = ctx.upload_to_consume(s, spec.weights_artifact_id)
    try:
        model = checked_classifier(spec.model, imported_weights(ctx.store.get_bytes(key), spec.weights_format))
        ds = ctx.load_data(spec.data)
        check_fits_dataset(spec.model, ds)
        with ctx.stops_in(model):
            clean_acc, images = clean_accuracy(model, ds)
        data = save_safetensors(model.state_dict())  # what the registry keeps, whatever came in
    except PASSING:  # not the upload's fault: kept for the next attempt (or the job's deletion)
        raise
    except Exception:  # the upload is refused: it goes
        with ctx.session() as s:
            ctx.consume_upload(s, spec.weights_artifact_id)
        raise
    meta = {
        "kind": "classifier",
        "uploaded": True,
        "spec": {"model": spec.model.model_dump(mode="json"), "data": spec.data.model_dump(mode="json")},
    }
    with ctx.session() as s:
        weights = ctx.save_artifact(s, f"checkpoint/{MODEL_FILE}", type="checkpoint", data=data)
        ctx.store.put_bytes(f"{ctx.checkpoint_prefix}/{META_FILE}", json.dumps(meta, indent=1).encode())
        registered = register_model(
            s,
            owner_id=ctx.owner_id,
            kind="classifier",
            job_id=ctx.job_id,
            dataset=spec.data.label,
            architecture=spec.model.arch,
            activation=spec.model.activation.label,
            checkpoint_uri=ctx.checkpoint_prefix,
            name=spec.name or f"{spec.data.label}-upload-{spec.model.arch}",
            summary={"clean_acc": clean_acc, "clean_images": images, "uploaded": True, "evaluations": []},
            recipe={"method": "uploaded", "model": spec.model.model_dump(mode="json")},
        )
        ctx.consume_upload(s, spec.weights_artifact_id)
        return {
            "model_id": registered.id,
            "checkpoint_artifact_id": weights.id,
            "clean_acc": clean_acc,
            "clean_images": images,
        }
