"""pending removals: jobs to remove once the scheduler lets us

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 04:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "pending_removals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("job_id", sa.String(length=400), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_pending_removals")),
        sa.UniqueConstraint("job_id", name=op.f("uq_pending_removals_job_id")),
    )


def downgrade() -> None:
    op.drop_table("pending_removals")
