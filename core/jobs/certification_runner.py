"""The certification job's runner: randomized smoothing of a registered classifier
(`core.evaluation.certification`), its report, and its entry among the model's certifications."""

from __future__ import annotations

import json

from core.contract.certify_specs import CertifySpec
from core.evaluation.certification import certified_robustness
from core.jobs.context import JobContext
from core.store.registry import record_evaluation

PER_POINT = ("predictions", "radii", "labels")  # in the report artifact, not in the job's result


def certification_entry(result: dict, job_id: str) -> dict:
    """What the registry lists among a model's certifications."""
    keep = ("label", "images", "clean_acc", "abstain_rate", "curve")
    return {**{k: result[k] for k in keep}, "sigma": result["spec"]["smoothing"]["sigma"], "job_id": job_id}


def run_certification(spec: CertifySpec, ctx: JobContext) -> dict:
    if spec.model_id is None:
        raise ValueError("certification needs model_id")
    model, _ = ctx.registered_model(spec.model_id, "classifier")
    if getattr(model, "purifier", None) is not None:
        raise ValueError("certification smooths a classifier; a purification defense is already randomized")
    ds = ctx.load_data(spec.data)
    stop, classes = ctx.should_stop, ds.num_classes
    found = certified_robustness(
        model, ds.x_test, ds.y_test, spec, num_classes=classes, progress=ctx.progress, should_stop=stop
    )
    result = found.model_dump()
    with ctx.session() as s:
        report = ctx.save_artifact(s, "certification.json", type="report", data=json.dumps(result, indent=1).encode())
        entry = certification_entry(result, ctx.job_id)
        recorded = record_evaluation(s, model_id=spec.model_id, entry=entry, key="certifications")
    summary = {k: v for k, v in result.items() if k not in PER_POINT}
    return {**summary, "model_id": spec.model_id, "report_artifact_id": report.id, "recorded_on_model": recorded}
