"""users and roles, key expiry and revocation time, owners, the audit log, a job's latest claim,
uploaded datasets

Keys made before users existed become admin keys of a user named after the key (they could do
everything before; an operator demotes them by revoking and issuing member keys). Jobs and
studies get the owner whose name they recorded.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

import uuid
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

OWNED = ("jobs", "studies", "models", "artifacts")


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("user_id", sa.String(length=32), nullable=True),
        sa.Column("user_name", sa.String(length=100), nullable=False),
        sa.Column("action", sa.String(length=50), nullable=False),
        sa.Column("object_type", sa.String(length=50), nullable=False),
        sa.Column("object_id", sa.String(length=64), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "datasets",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("owner_id", sa.String(length=32), nullable=True),
        sa.Column("classes", sa.JSON(), nullable=False),
        sa.Column("channels", sa.Integer(), nullable=False),
        sa.Column("image_size", sa.Integer(), nullable=False),
        sa.Column("uri", sa.String(length=1000), nullable=False),
        sa.Column("job_id", sa.String(length=32), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["owner_id"], ["users.id"]),
        sa.ForeignKeyConstraint(["job_id"], ["jobs.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_datasets_owner_id", "datasets", ["owner_id"])
    op.create_index("ix_datasets_job_id", "datasets", ["job_id"])
    op.create_index("ix_audit_log_at", "audit_log", ["at"])
    op.create_index("ix_audit_log_user_id", "audit_log", ["user_id"])
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("user_id", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True))
        batch.create_index("ix_api_keys_user_id", ["user_id"])
        batch.create_foreign_key("fk_api_keys_user_id", "users", ["user_id"], ["id"])
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True))
    for table in OWNED:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("owner_id", sa.String(length=32), nullable=True))
            batch.create_index(f"ix_{table}_owner_id", ["owner_id"])
            batch.create_foreign_key(f"fk_{table}_owner_id", "users", ["owner_id"], ["id"])
    _backfill()


def _backfill() -> None:
    conn = op.get_bind()
    users = {}
    for key_id, name in conn.execute(sa.text("SELECT id, name FROM api_keys")).all():
        if name not in users:
            users[name] = uuid.uuid4().hex
            insert = sa.text("INSERT INTO users (id, name, role, created_at) VALUES (:i, :n, 'admin', :t)")
            conn.execute(insert, {"i": users[name], "n": name, "t": datetime.now(UTC)})
        conn.execute(sa.text("UPDATE api_keys SET user_id = :u WHERE id = :k"), {"u": users[name], "k": key_id})
    for name, user_id in users.items():
        for table in ("jobs", "studies"):
            conn.execute(sa.text(f"UPDATE {table} SET owner_id = :u WHERE owner = :n"), {"u": user_id, "n": name})


def downgrade() -> None:
    for table in OWNED:
        with op.batch_alter_table(table) as batch:
            batch.drop_constraint(f"fk_{table}_owner_id", type_="foreignkey")
            batch.drop_index(f"ix_{table}_owner_id")
            batch.drop_column("owner_id")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("claimed_at")
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_constraint("fk_api_keys_user_id", type_="foreignkey")
        batch.drop_index("ix_api_keys_user_id")
        for column in ("revoked_at", "expires_at", "user_id"):
            batch.drop_column(column)
    op.drop_index("ix_datasets_job_id", table_name="datasets")
    op.drop_index("ix_datasets_owner_id", table_name="datasets")
    op.drop_table("datasets")
    op.drop_index("ix_audit_log_user_id", table_name="audit_log")
    op.drop_index("ix_audit_log_at", table_name="audit_log")
    op.drop_table("audit_log")
    op.drop_table("users")
