"""private jobs and models: what reads or makes a member's private data is private too

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for table in ("jobs", "models"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("private", sa.Boolean(), nullable=False, server_default=sa.false()))
    # jobs made before this revision: those that made a dataset or read an upload are private
    op.execute("UPDATE jobs SET private = TRUE WHERE kind IN ('dataset_upload', 'dataset_generation', 'image_attack')")


def downgrade() -> None:
    for table in ("jobs", "models"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("private")
