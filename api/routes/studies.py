"""Studies: the SAT activation comparison as a group of training jobs, and its live table."""

from __future__ import annotations

from functools import partial
from typing import Annotated

from fastapi import APIRouter, Query, Response, status
from sqlalchemy import select

from api.access import delete_audited, job_visible, require_owner
from api.deps import MAX_OFFSET, Caller, KeyDep, QueueDep, SessionDep, SettingsDep, not_found
from api.schemas import StudyIn, StudyOut, StudySummary
from api.submission import add_job, check_job, check_quota, enqueue
from core.contract.presets import train_preset
from core.contract.specs import ActivationSpec
from core.store.db import write_lock
from core.store.deletion import delete_study
from core.store.orm import Job, Study
from core.study import sat_variants, summarise

router = APIRouter(prefix="/v1/studies", tags=["studies"])


def _out(session, study: Study, caller: Caller) -> dict:
    """The study with the counts and the table of the jobs the caller may see (another member's
    unfinished ones are not: `job_visible`)."""
    everyone = session.scalars(select(Job).where(Job.study_id == study.id)).all()
    jobs = [j for j in everyone if job_visible(caller, j)]
    counts: dict[str, int] = {}
    for j in jobs:
        counts[j.status] = counts.get(j.status, 0) + 1
    done = [j for j in sorted(jobs, key=lambda j: j.created_at) if j.status == "succeeded" and j.result]
    rows = [
        {
            "variant": ActivationSpec.model_validate(j.spec["model"]["activation"]).label,
            "seed": j.spec["seed"],
            "clean_acc": j.result["clean_acc"],
            "robust_acc": j.result["robust_acc"],
        }
        for j in done
    ]
    return {
        "id": study.id,
        "name": study.name,
        "preset": study.preset,
        "spec": study.spec,
        "created_at": study.created_at,
        "jobs": counts,
        "table": summarise(rows),
        "protocols": sorted({j.result.get("protocol_label", "FGSM + PGD (before protocols)") for j in done}),
    }


@router.post("", status_code=status.HTTP_202_ACCEPTED, response_model=StudyOut)
def create_study(body: StudyIn, session: SessionDep, queue: QueueDep, settings: SettingsDep, caller: KeyDep) -> dict:
    """Queue one PGD-AT job per (activation or probe, seed), all with the same recipe; 429 when the
    whole study would pass the caller's queued-job limit (nothing is queued then)."""
    specs = _variant_specs(body)
    named = [check_job(session, settings, caller, "adversarial_training", spec) for spec in specs]
    with write_lock(settings.database_url):  # the study and all its jobs in one transaction
        check_quota(session, settings, caller, new_jobs=len(specs))
        study = Study(
            name=body.name,
            preset=body.preset,
            spec=body.model_dump(mode="json"),
            owner=caller.name,
            owner_id=caller.user_id,
        )
        session.add(study)
        session.flush()
        jobs = [
            add_job(
                session, settings, kind="adversarial_training", spec=spec, caller=caller, named=refs, study_id=study.id
            )
            for spec, refs in zip(specs, named, strict=True)
        ]
        session.commit()
    enqueue(queue, jobs)
    return _out(session, study, caller)


def _variant_specs(body: StudyIn) -> list:
    specs = []
    for seed in range(body.seeds):
        for variant in sat_variants(body.activations, body.probes):
            spec = train_preset(body.train_preset, variant.activation, seed=seed)
            if body.epochs:  # validated again: the spec's own bounds and checks hold for the variant
                spec = type(spec).model_validate({**spec.model_dump(), "epochs": body.epochs})
            specs.append(spec)
    return specs


@router.get("", response_model=list[StudySummary])
def list_studies(
    session: SessionDep,
    _: KeyDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> list[Study]:
    """The newest studies first, `limit` of them after the first `offset`."""
    newest = select(Study).order_by(Study.created_at.desc(), Study.id)
    return session.scalars(newest.offset(offset).limit(limit)).all()


@router.get("/{study_id}", response_model=StudyOut)
def read_study(study_id: str, session: SessionDep, caller: KeyDep) -> dict:
    """A study and its table (studies are shared across the lab)."""
    return _out(session, _study(session, study_id), caller)


def _study(session, study_id: str) -> Study:
    study = session.get(Study, study_id)
    if study is None:
        raise not_found("study", study_id)
    return study


@router.delete("/{study_id}", status_code=status.HTTP_204_NO_CONTENT, response_class=Response)
def remove_study(study_id: str, session: SessionDep, settings: SettingsDep, caller: KeyDep) -> Response:
    """Delete a study with its jobs and what they made (its owner or an admin); 409 while one of
    its jobs has not finished."""
    require_owner(caller, _study(session, study_id).owner_id, "study")
    return delete_audited(session, settings, caller, "study", study_id, partial(delete_study, study_id=study_id))
