"""The classifier job kinds' runners (`runner(spec, ctx) -> result`): adversarial training,
attack evaluation and the attack on one image. They call core and record what a user will look
for: metrics, artifacts, registered models. A stop request ends them with `Stopped`."""

from __future__ import annotations

import json

import torch

from core.attacks import build_attack
from core.contract.checkpoint import MODEL_FILE
from core.contract.specs import AttackSpec, EvalSpec, ImageAttackSpec, TrainSpec
from core.data import class_names, load_dataset, test_image
from core.evaluation import robustness_curve
from core.images import perturbation_png, png_bytes, tensor_from_png
from core.jobs.context import JobContext
from core.models import load_model
from core.store.orm import Artifact
from core.store.registry import register_model
from core.training import train


def curve_grid(eps: float) -> list[float]:
    """The robustness curve stored with every trained model: 0 to 3ε."""
    return [0.0, eps / 2, eps, 1.5 * eps, 2 * eps, 3 * eps]


def run_adversarial_training(spec: TrainSpec, ctx: JobContext) -> dict:
    folder = ctx.checkpoint_folder()
    ds = load_dataset(spec.data)
    report = ctx.training_reporter(folder, 0.0, 0.9)
    result = train(spec, folder, dataset=ds, progress=report, should_stop=ctx.should_stop)
    model = load_model(folder, device=ctx.device)
    eps = spec.eval_attack.eps
    attacks = [AttackSpec(name="fgsm", norm=spec.eval_attack.norm, eps=eps, random_start=False), spec.eval_attack]
    n = spec.eval_subset
    evaluation = robustness_curve(
        model,
        ds.x_test[:n],
        ds.y_test[:n],
        attacks,
        curve_grid(eps),
        num_classes=ds.num_classes,
        progress=ctx.scaled(0.9, 1.0, metrics=False),
        should_stop=ctx.should_stop,
    )
    at_eps = next(p for p in evaluation["curve"] if p["eps"] == eps)
    summary = {
        "clean_acc": evaluation["clean_acc"],
        "robust_acc": at_eps["robust_acc"],
        "eps": eps,
        "norm": spec.eval_attack.norm,
        "curve": evaluation["curve"],
        "sanity": evaluation["sanity"],
        "warnings": evaluation["warnings"],
        "eval_images": n,
        "history": result.history,
    }
    with ctx.session() as s:
        weights = ctx.save_artifact(
            s, f"checkpoint/{MODEL_FILE}", type="checkpoint", data=(folder / MODEL_FILE).read_bytes()
        )
        registered = register_model(
            s,
            kind="classifier",
            job_id=ctx.job_id,
            dataset=spec.data.name,
            architecture=spec.model.arch,
            activation=spec.model.activation.label,
            checkpoint_uri=ctx.checkpoint_prefix,
            summary=summary,
            name=f"{spec.data.name}-{spec.method}-{spec.model.activation.label}-seed{spec.seed}",
            recipe={
                "method": spec.method,
                "attack": spec.attack.model_dump(),
                "epochs": spec.epochs,
                "optim": spec.optim.model_dump(),
                "seed": spec.seed,
                "model": spec.model.model_dump(),
            },
        )
        return {
            "model_id": registered.id,
            "checkpoint_artifact_id": weights.id,
            "final": result.final,
            "clean_acc": summary["clean_acc"],
            "robust_acc": summary["robust_acc"],
            "eps": eps,
        }


def run_attack_evaluation(spec: EvalSpec, ctx: JobContext) -> dict:
    if spec.model_id is None:
        raise ValueError("attack_evaluation needs model_id")
    model, _ = ctx.registered_model(spec.model_id, "classifier")
    ds = load_dataset(spec.data)
    result = robustness_curve(
        model,
        ds.x_test,
        ds.y_test,
        spec.attacks,
        spec.eps_grid,
        num_classes=ds.num_classes,
        large_eps=spec.large_eps,
        batch_size=spec.batch_size,
        progress=ctx.progress,
        should_stop=ctx.should_stop,
    )
    with ctx.session() as s:
        report = ctx.save_artifact(s, "evaluation.json", type="report", data=json.dumps(result, indent=1).encode())
        return {**result, "model_id": spec.model_id, "report_artifact_id": report.id}


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
    x, y = test_image(dataset, spec.test_index)
    with ctx.session() as s:
        art = ctx.save_artifact(s, "input.png", type="image", data=png_bytes(x))
        ident = art.id
    return x[None], spec.label if spec.label is not None else y, ident


def run_image_attack(spec: ImageAttackSpec, ctx: JobContext) -> dict:
    model, dataset = ctx.registered_model(spec.model_id, "classifier")
    x, known_label, input_id = _attack_input(spec, ctx, model, dataset)
    x = x.to(ctx.device)
    with torch.no_grad():
        p_clean = torch.softmax(model(x), 1)[0]
    label = known_label if known_label is not None else int(p_clean.argmax())
    if label >= model.spec.num_classes:
        raise ValueError(f"label {label} out of range for a {model.spec.num_classes}-class model")
    x_adv = build_attack(spec.attack)(model, x, torch.tensor([label], device=ctx.device))
    with torch.no_grad():
        p_adv = torch.softmax(model(x_adv), 1)[0]
    delta = (x_adv - x)[0]
    with ctx.session() as s:
        adv = ctx.save_artifact(s, "adversarial.png", type="image", data=png_bytes(x_adv[0]))
        pert = ctx.save_artifact(s, "perturbation.png", type="image", data=perturbation_png(delta))
        ids = {"adversarial_artifact_id": adv.id, "perturbation_artifact_id": pert.id}
    return {
        "model_id": spec.model_id,
        "label": label,
        "attack": spec.attack.model_dump(),
        "clean": {"prediction": int(p_clean.argmax()), "probabilities": p_clean.tolist()},
        "adversarial": {"prediction": int(p_adv.argmax()), "probabilities": p_adv.tolist()},
        "linf": float(delta.abs().max()),
        "l2": float(delta.norm()),
        "input_artifact_id": input_id,
        "test_index": spec.test_index,
        "classes": class_names(dataset, model.spec.num_classes),
        **ids,
    }
