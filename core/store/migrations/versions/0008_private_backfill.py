"""private backfill: 0005 marked private only the jobs of kinds that make or read private data by
themselves; a job of before it that trained or evaluated on an uploaded dataset, the model it
registered and whatever read such a model stayed shared, and with them that dataset's images
(a shared model's test images are anyone's to attack). Marked private now, to a fixed point.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04
"""

import json

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def _reads_uploaded_data(spec) -> bool:
    """Whether a spec (JSON) names an uploaded dataset anywhere (`{"name": "uploaded", ...}`)."""
    if isinstance(spec, dict):
        return spec.get("name") == "uploaded" or any(_reads_uploaded_data(v) for v in spec.values())
    if isinstance(spec, list):
        return any(_reads_uploaded_data(v) for v in spec)
    return False


def _strings(spec) -> set[str]:
    if isinstance(spec, dict):
        return set().union(*(_strings(v) for v in spec.values())) if spec else set()
    if isinstance(spec, list):
        return set().union(*(_strings(v) for v in spec)) if spec else set()
    return {spec} if isinstance(spec, str) else set()


def upgrade() -> None:
    bind = op.get_bind()
    jobs = {}
    for job_id, spec, private in bind.execute(sa.text("SELECT id, spec, private FROM jobs")):
        jobs[job_id] = (json.loads(spec) if isinstance(spec, str) else spec or {}, bool(private))
    models = {
        model_id: (dataset, job_id, bool(private))
        for model_id, dataset, job_id, private in bind.execute(
            sa.text("SELECT id, dataset, job_id, private FROM models")
        )
    }
    private_jobs = {j for j, (spec, private) in jobs.items() if private or _reads_uploaded_data(spec)}
    while True:
        private_models = {
            m
            for m, (dataset, job_id, private) in models.items()
            if private or (dataset or "").startswith("uploaded:") or job_id in private_jobs
        }
        reading = {j for j, (spec, _) in jobs.items() if _strings(spec) & private_models}
        if reading <= private_jobs:
            break
        private_jobs |= reading
    for job_id in private_jobs - {j for j, (_, private) in jobs.items() if private}:
        bind.execute(sa.text("UPDATE jobs SET private = :yes WHERE id = :id"), {"yes": True, "id": job_id})
    for model_id in private_models - {m for m, (_, _, private) in models.items() if private}:
        bind.execute(sa.text("UPDATE models SET private = :yes WHERE id = :id"), {"yes": True, "id": model_id})


def downgrade() -> None:
    pass  # what was private stays so
