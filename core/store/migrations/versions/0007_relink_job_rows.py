"""relink artifacts and models to their jobs: the SQLite batch migrations 0002 and 0005 ran with
foreign keys on, so rebuilding `jobs` set `job_id` to NULL on every artifact, model and dataset (and deleted
the metric points, which cannot be brought back). A job's files live under `jobs/<job id>/`, so the
link is recovered from the uri wherever that job still exists.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

LINKS = (("artifacts", "uri"), ("models", "checkpoint_uri"), ("datasets", "uri"))


def upgrade() -> None:
    bind = op.get_bind()
    jobs = {row[0] for row in bind.execute(sa.text("SELECT id FROM jobs"))}
    for table, column in LINKS:
        rows = bind.execute(
            sa.text(f"SELECT id, {column} FROM {table} WHERE job_id IS NULL AND {column} LIKE 'jobs/%'")
        ).fetchall()
        for row_id, uri in rows:
            job_id = uri.split("/", 2)[1]
            if job_id in jobs:
                bind.execute(sa.text(f"UPDATE {table} SET job_id = :job WHERE id = :id"), {"job": job_id, "id": row_id})


def downgrade() -> None:
    pass  # the links are right at every revision
