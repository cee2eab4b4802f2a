"""log archive: the last part of each output stream of instances that ended

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 21:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "log_archive",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.String(length=400), nullable=False),
        sa.Column("instance", sa.Integer(), nullable=False),
        sa.Column("origin", sa.String(length=100), nullable=False),
        sa.Column("stream", sa.String(length=8), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_log_archive")),
        sa.UniqueConstraint("origin", "stream", name="uq_log_archive_origin_stream"),
    )
    with op.batch_alter_table("log_archive", schema=None) as batch_op:
        batch_op.create_index("ix_log_archive_job_id_instance", ["job_id", "instance"])


def downgrade() -> None:
    with op.batch_alter_table("log_archive", schema=None) as batch_op:
        batch_op.drop_index("ix_log_archive_job_id_instance")
    op.drop_table("log_archive")
